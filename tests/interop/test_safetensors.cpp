// iris ckpt export --format safetensors, checked by the safetensors library itself: every weight loads with
// its name, shape, dtype and values (in Iris's layout and in PyTorch's, --layout torch), with the config in
// the metadata; and a file written by the library is read back by Iris (data::read_safetensors) bit for bit.
#include <cmath>
#include <filesystem>

#include "data/safetensors.h"
#include "diffusion/checkpoint.h"
#include "tests/interop/interop_util.h"

using namespace iris;
using namespace iris::test;
namespace fs = std::filesystem;

TEST_CASE("safetensors loads iris ckpt export in both layouts, and Iris reads the library's own files") {
  IRIS_INTEROP_BEGIN();
  const std::string root = fresh_dir("interop-st");
  const std::string ckpt = train_tiny_run(root).checkpoint;
  const nn::StateDict ema = diffusion::load_checkpoint_weights(ckpt, /*ema=*/true);

  for (const std::string layout : {"iris", "torch"}) {
    CAPTURE(layout);
    const std::string out = root + "/" + layout + ".safetensors",
                      back = root + "/" + layout + ".back.safetensors";
    const RunResult exported =
        run_iris("ckpt export " + ckpt + " --out " + out + " --format safetensors --layout " + layout);
    REQUIRE_MESSAGE(exported.exit_code == 0, exported.output);
    const nlohmann::json got = run_python_json("safetensors_roundtrip.py", out + " " + back);
    CHECK(got["metadata"]["format"] == "iris-weights");
    CHECK(got["metadata"]["weights"] == "ema");
    CHECK(got["metadata"]["config"].get<std::string>().find("[model]") != std::string::npos);
    REQUIRE(got["tensors"].size() == ema.size());
    for (const auto& [name, t] : ema) {
      CAPTURE(name);
      REQUIRE(got["tensors"].contains(name));
      const auto& e = got["tensors"][name];
      Shape want = t.shape();
      if (layout == "torch" && want.size() == 4) want = {want[0], want[3], want[1], want[2]};
      CHECK(e["shape"].get<Shape>() == want);
      CHECK(e["dtype"] == "float32");
      double sum = 0;
      for (double v : t.to_vector<double>()) sum += static_cast<float>(v);
      CHECK(std::abs(e["sum"].get<double>() - sum) <= 1e-9 * (1 + std::abs(sum)));
    }
    // The library's own file, read by Iris: the same tensors, bit for bit, and the same metadata.
    const data::SafetensorsFile mine = data::read_safetensors(out), theirs = data::read_safetensors(back);
    CHECK(theirs.metadata == mine.metadata);
    REQUIRE(theirs.tensors.size() == mine.tensors.size());
    for (const auto& [name, t] : mine.tensors) {
      CAPTURE(name);
      REQUIRE(theirs.tensors.count(name) == 1);
      const Tensor& u = theirs.tensors.at(name);
      REQUIRE(u.shape() == t.shape());
      CHECK(std::memcmp(u.data_ptr(), t.data_ptr(), t.nbytes()) == 0);
    }
  }
  fs::remove_all(root);
}
