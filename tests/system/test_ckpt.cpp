// `iris ckpt inspect | verify | export` run as processes on a checkpoint trained by `iris train`.
#include <filesystem>
#include <fstream>

#include "diffusion/checkpoint.h"
#include "framework/io/hdf5.h"
#include "tests/common/test_util.h"
#include "tests/system/system_util.h"
#include "tests/system/trained_fixture.h"

using namespace iris;
using namespace iris::test;
namespace fs = std::filesystem;

namespace {

// A copy of `src` with one byte flipped inside the data of dataset `dataset` ("group/name"); returns the
// copy's path.
std::string damaged_copy(const std::string& src, const std::string& dst, const std::string& dataset) {
  fs::copy_file(src, dst, fs::copy_options::overwrite_existing);
  int64_t offset = -1;
  {
    const h5::File f = h5::File::open(dst);
    offset = f.root().open_dataset(dataset).file_offset();
  }
  REQUIRE(offset > 0);
  std::fstream io(dst, std::ios::in | std::ios::out | std::ios::binary);
  io.seekg(offset + 2);
  char c = 0;
  io.read(&c, 1);
  c = static_cast<char>(c ^ 0x10);
  io.seekp(offset + 2);
  io.write(&c, 1);
  REQUIRE(io.good());
  return dst;
}

// Some parameter that both /model and /ema hold.
std::string some_parameter(const std::string& ckpt) {
  const auto w = diffusion::load_checkpoint_weights(ckpt, true);
  REQUIRE(w.size() > 3);
  return std::next(w.begin(), 3)->first;
}

}  // namespace

TEST_CASE("iris ckpt inspect prints the groups, every dataset, the step and the config") {
  TrainedFixture fx("ckpt-inspect", {.sr3 = true});
  const RunResult r = run_iris("ckpt inspect " + fx.sr3_ckpt);
  REQUIRE_MESSAGE(r.exit_code == 0, r.output);
  check_contains(r, "step 2,");
  check_contains(r, "world size 1");
  for (const char* g : {"/model  (", "/ema  (", "/optimizer  (", "/ema_state  (", "/train  ("})
    check_contains(r, g);
  const std::string p = some_parameter(fx.sr3_ckpt);
  const Tensor t = diffusion::load_checkpoint_weights(fx.sr3_ckpt, false).at(p);
  check_contains(r, p);
  check_contains(r, "f32");
  std::string shape = "[";
  for (int64_t i = 0; i < t.dim(); ++i) shape += (i ? ", " : "") + std::to_string(t.size(i));
  check_contains(r, shape + "]");
  check_contains(r, "@schedule_step = 2");
  check_contains(r, "task = 'sr3'");
  check_contains(r, "total: ");
  // --summary leaves the per-dataset lines out.
  const RunResult s = run_iris("ckpt inspect --summary --no-config " + fx.sr3_ckpt);
  REQUIRE(s.exit_code == 0);
  CHECK(s.output.find(p + " ") == std::string::npos);
  CHECK(s.output.find("task = ") == std::string::npos);
}

TEST_CASE("iris ckpt verify passes a good checkpoint and names the damaged dataset of a bad one") {
  TrainedFixture fx("ckpt-verify", {.sr3 = true});
  const RunResult good = run_iris("ckpt verify " + fx.sr3_ckpt);
  REQUIRE_MESSAGE(good.exit_code == 0, good.output);
  check_contains(good, "OK");
  const std::string p = some_parameter(fx.sr3_ckpt);
  const std::string bad = damaged_copy(fx.sr3_ckpt, fx.path("bad.h5"), "model/" + p);
  const RunResult r = run_iris("ckpt verify " + fx.sr3_ckpt + " " + bad);
  CHECK(r.exit_code != 0);
  check_contains(r, "FAILED  " + bad);
  check_contains(r, "checksum mismatch in '" + bad + "' dataset '/model/" + p + "'");
  check_contains(r, "1 of 2 checkpoint(s) failed verification");
  // A truncated file is reported too, naming it.
  const std::string cut = fx.path("cut.h5");
  fs::copy_file(fx.sr3_ckpt, cut);
  fs::resize_file(cut, fs::file_size(cut) / 2);
  const RunResult t = run_iris("ckpt verify " + cut);
  CHECK(t.exit_code != 0);
  check_contains(t, "FAILED  " + cut);
  // Sampling from damaged EMA weights fails, naming the dataset, instead of producing garbage.
  const std::string bad_ema = damaged_copy(fx.sr3_ckpt, fx.path("bad_ema.h5"), "ema/" + p);
  const RunResult s = run_iris("sample --ckpt " + bad_ema + " --device cpu --shard " + fx.data +
                               " --count 1 --steps 1 --out " + fx.path("s"));
  CHECK(s.exit_code != 0);
  check_contains(s, "dataset '/ema/" + p + "'");
}

TEST_CASE("iris ckpt export writes float32 datasets equal to the EMA, or the raw weights with --raw") {
  TrainedFixture fx("ckpt-export", {.sr3 = true});
  for (const bool raw : {false, true}) {
    CAPTURE(raw);
    const std::string out = fx.path(raw ? "raw.h5" : "ema.h5");
    const RunResult r = run_iris("ckpt export " + fx.sr3_ckpt + " --out " + out + (raw ? " --raw" : ""));
    REQUIRE_MESSAGE(r.exit_code == 0, r.output);
    const auto expected = diffusion::load_checkpoint_weights(fx.sr3_ckpt, !raw);
    const h5::File f = h5::File::open(out);
    const h5::Group root = f.root();
    CHECK(root.string_attr("format") == "iris-weights");
    CHECK(root.string_attr("source_checkpoint") == fx.sr3_ckpt);
    CHECK(root.int_attr("step") == 2);
    CHECK(root.string_attr("weights") == (raw ? "raw" : "ema"));
    CHECK(root.string_attr("layout").find("conv weights [Cout, kh, kw, Cin]") != std::string::npos);
    CHECK(root.string_attr("config").find("[model]") != std::string::npos);
    const h5::Group params = root.open_group("params");
    CHECK(params.children().size() == expected.size());
    for (const auto& [name, t] : expected) {
      CAPTURE(name);
      REQUIRE(params.has(name));
      const h5::Dataset d = params.open_dataset(name);
      CHECK(d.dtype() == DType::f32);
      CHECK_FALSE(d.has_checksum());
      CHECK(same_bytes(d.read(), t.to(DType::f32)));
    }
  }
  // EMA and raw weights differ after training with decay 0.9, so the two exports are not the same file.
  int differing = 0;
  for (const auto& [name, t] : diffusion::load_checkpoint_weights(fx.sr3_ckpt, true))
    differing += !same_bytes(read_h5(fx.path("ema.h5"), "params/" + name),
                             read_h5(fx.path("raw.h5"), "params/" + name));
  CHECK(differing > 0);
  const RunResult self = run_iris("ckpt export " + fx.sr3_ckpt + " --out " + fx.sr3_ckpt);
  CHECK(self.exit_code != 0);
  check_contains(self, "is the checkpoint itself");
  CHECK_NOTHROW(diffusion::verify_checkpoint(fx.sr3_ckpt));
  const RunResult missing = run_iris("ckpt export " + fx.path("nope.h5") + " --out " + fx.path("x.h5"));
  CHECK(missing.exit_code != 0);
  check_contains(missing, "does not exist");
}
