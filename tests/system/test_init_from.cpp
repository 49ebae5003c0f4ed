// `iris train --init-from WEIGHTS` (fine-tuning from imported weights), run as processes: from a
// checkpoint, from an HDF5 export, from safetensors in Iris's and PyTorch's layouts (with and without the
// layout recorded); new tensors with --init-allow-new; a resumed run does not import again; bad files are
// refused naming the file and every tensor at fault.
#include <filesystem>
#include <fstream>
#include <set>

#include "data/safetensors.h"
#include "diffusion/checkpoint.h"
#include "diffusion/stage.h"
#include "tests/common/test_util.h"
#include "tests/system/system_util.h"
#include "tests/system/trained_fixture.h"

using namespace iris;
using namespace iris::test;
namespace fs = std::filesystem;

namespace {

// A source run (2 steps of the tiny SR3) and helpers to start others from its weights.
struct InitFixture {
  std::string root, data, config, ckpt;

  explicit InitFixture(const std::string& tag) {
    root = fresh_dir(tag);
    data = root + "/data";
    write_tiny_shards(data, 16);
    config = write_tiny_config(root, data);
    const RunResult r = train("source", "--set train.steps=2");
    REQUIRE_MESSAGE(r.exit_code == 0, r.output);
    ckpt = root + "/source/checkpoints/" + diffusion::checkpoint_name(2);
  }
  ~InitFixture() {
    std::error_code ec;
    fs::remove_all(root, ec);
  }
  RunResult train(const std::string& run, const std::string& args) const {
    return run_iris("train --config " + config + " --threads 1 --device cpu --run " + root + "/" + run +
                    " --set train.checkpoint_every=0 " + args);
  }
  // Starts run `run` from `weights` and stops before the first step: its step-0 checkpoint holds exactly
  // what was imported.
  diffusion::TrainingCheckpoint imported(const std::string& run, const std::string& weights,
                                         const std::string& extra = "") const {
    const RunResult r = train(run, "--set train.steps=2 --stop-after 0 --init-from " + weights + " " + extra);
    REQUIRE_MESSAGE(r.exit_code == 0, r.output);
    check_contains(r, "initialised from " + weights);
    return diffusion::load_checkpoint(root + "/" + run + "/checkpoints/" + diffusion::checkpoint_name(0));
  }
  std::string export_to(const std::string& name, const std::string& options) const {
    const std::string out = root + "/" + name;
    const RunResult r = run_iris("ckpt export " + ckpt + " --out " + out + " " + options);
    REQUIRE_MESSAGE(r.exit_code == 0, r.output);
    return out;
  }
};

void check_same(const nn::StateDict& got, const nn::StateDict& want) {
  REQUIRE(got.size() == want.size());
  for (const auto& [name, t] : want) {
    CAPTURE(name);
    REQUIRE(got.count(name) == 1);
    CHECK(same_bytes(got.at(name), t));
  }
}

// A step-0 state: nothing of the source run's optimizer, EMA counters, schedule or data position.
void check_fresh_state(const diffusion::TrainingCheckpoint& c) {
  CHECK(c.step == 0);
  CHECK(c.schedule_step == 0);
  CHECK(c.samples_seen == 0);
  CHECK(c.optimizer.tensors.empty());  // AdamW's moments appear with the first update
  for (const auto& [key, v] : c.optimizer.ints) CHECK(v == 0);
  CHECK(c.ema_state.ints.at("num_updates") == 0);
}

// The tensor names of the model a config (with --set style overrides) builds.
std::set<std::string> model_names(const std::string& config, const std::vector<std::string>& sets) {
  Config c = Config::load(config);
  for (const auto& s : sets) c.set(s);
  Generator init(0, 0);
  const diffusion::Stage stage(c, init);
  std::set<std::string> names;
  for (const auto& [name, t] : stage.net().state_dict()) names.insert(name);
  return names;
}

}  // namespace

TEST_CASE("iris train --init-from a checkpoint takes its model and EMA, with a fresh optimizer at step 0") {
  InitFixture fx("init-ckpt");
  const diffusion::TrainingCheckpoint source = diffusion::load_checkpoint(fx.ckpt);
  const diffusion::TrainingCheckpoint c = fx.imported("b", fx.ckpt);
  check_same(c.model, source.model);
  check_same(c.ema, source.ema);
  check_fresh_state(c);
  CHECK(c.init_from == fx.ckpt);

  // A requeued job (--resume auto with the same --init-from) resumes from its own checkpoint and does not
  // import again; it then trains exactly as a run that never stopped.
  const RunResult resumed = fx.train("b", "--set train.steps=2 --resume auto --init-from " + fx.ckpt);
  REQUIRE_MESSAGE(resumed.exit_code == 0, resumed.output);
  check_contains(resumed,
                 "--init-from " + fx.ckpt + " is not applied: the run resumes from its own checkpoint");
  CHECK(resumed.output.find("initialised from") == std::string::npos);
  const RunResult straight = fx.train("straight", "--set train.steps=2 --init-from " + fx.ckpt);
  REQUIRE_MESSAGE(straight.exit_code == 0, straight.output);
  const std::string name = diffusion::checkpoint_name(2);
  const RunResult diff = run_iris("ckpt diff " + fx.root + "/b/checkpoints/" + name + " " + fx.root +
                                  "/straight/checkpoints/" + name);
  CHECK_MESSAGE(diff.exit_code == 0, diff.output);
  // The provenance survives the resume.
  CHECK(diffusion::load_checkpoint(fx.root + "/b/checkpoints/" + name).init_from == fx.ckpt);

  // --resume PATH names the starting weights itself: both together are refused.
  const RunResult both = fx.train("c", "--resume " + fx.ckpt + " --init-from " + fx.ckpt);
  expect_error(both, {"--resume " + fx.ckpt, "--init-from " + fx.ckpt, "pass one"});
}

TEST_CASE("iris train --init-from an HDF5 export or safetensors in either layout imports them exactly") {
  InitFixture fx("init-export");
  const nn::StateDict ema = diffusion::load_checkpoint_weights(fx.ckpt, /*ema=*/true);
  const nn::StateDict raw = diffusion::load_checkpoint_weights(fx.ckpt, /*ema=*/false);
  struct Source {
    std::string file, extra;
    const nn::StateDict* weights;
    std::string says;  // in the log line
  };
  const std::vector<Source> sources = {
      {fx.export_to("ema.h5", ""), "", &ema, "Iris weights export (HDF5), iris layout"},
      {fx.export_to("raw.h5", "--raw --layout torch"), "", &raw, "Iris weights export (HDF5), torch layout"},
      {fx.export_to("iris.safetensors", "--format safetensors"), "", &ema, "safetensors, iris layout"},
      {fx.export_to("torch.safetensors", "--format safetensors --layout torch"), "--init-layout torch", &ema,
       "safetensors, torch layout"},
  };
  int k = 0;
  for (const Source& s : sources) {
    CAPTURE(s.file);
    const std::string run = "run" + std::to_string(k++);
    const RunResult r =
        fx.train(run, "--set train.steps=2 --stop-after 0 --init-from " + s.file + " " + s.extra);
    REQUIRE_MESSAGE(r.exit_code == 0, r.output);
    check_contains(r, s.says);
    const auto c =
        diffusion::load_checkpoint(fx.root + "/" + run + "/checkpoints/" + diffusion::checkpoint_name(0));
    check_same(c.model, *s.weights);  // an export's one set of weights goes to the model and the EMA
    check_same(c.ema, *s.weights);
    check_fresh_state(c);
  }

  // A safetensors file that does not say its layout (as PyTorch code would write it): the shapes tell.
  for (const std::string layout : {"iris", "torch"}) {
    CAPTURE(layout);
    data::SafetensorsFile f;
    for (const auto& [name, t] : ema)
      f.tensors[name] = layout == "torch" && t.dim() == 4 ? t.permute({0, 3, 1, 2}).contiguous() : t;
    const std::string file = fx.root + "/bare_" + layout + ".safetensors";
    data::write_safetensors(file, f);
    const RunResult r = fx.train("bare_" + layout, "--set train.steps=2 --stop-after 0 --init-from " + file);
    REQUIRE_MESSAGE(r.exit_code == 0, r.output);
    check_contains(r, "safetensors, " + layout + " layout inferred from the shapes");
    const auto c = diffusion::load_checkpoint(fx.root + "/bare_" + layout + "/checkpoints/" +
                                              diffusion::checkpoint_name(0));
    check_same(c.model, ema);
  }
  // An explicit layout that contradicts the file's own record is refused.
  const RunResult contra =
      fx.train("contra", "--stop-after 0 --init-layout iris --init-from " + sources[3].file);
  expect_error(contra, {sources[3].file, "torch layout, but --init-layout is iris"});
}

TEST_CASE("iris train --init-from names every missing, unexpected and mis-shaped tensor of another model") {
  InitFixture fx("init-other");
  const std::vector<std::string> sets = {"model.num_res_blocks=2", "model.base_channels=12",
                                         "model.norm_groups=4"};
  std::string args = "--stop-after 0 --init-from " + fx.ckpt;
  for (const auto& s : sets) args += " --set " + s;
  const RunResult r = fx.train("other", args);
  expect_error(
      r, {"weights file '" + fx.ckpt + "' (Iris checkpoint, iris layout) does not fit this model",
          "missing: ", "unexpected: ", "mis-shaped: ",
          "The file's model differs from this config: model.base_channels is 8 in the checkpoint, 12 now"});
  // Every name that differs is in the one message.
  const std::set<std::string> now = model_names(fx.config, sets), before = model_names(fx.config, {});
  int named = 0;
  for (const auto& n : now)
    if (!before.count(n)) {
      CHECK_MESSAGE(r.output.find(n) != std::string::npos, n);
      ++named;
    }
  for (const auto& n : before)
    if (!now.count(n)) {
      CHECK_MESSAGE(r.output.find(n) != std::string::npos, n);
      ++named;
    }
  CHECK(named > 0);
  check_contains(r, "'stem.weight': [8, 3, 3, 2] in the file, [12, 3, 3, 2] in the model");
  CHECK(!fs::exists(fx.root + "/other/checkpoints/" + diffusion::checkpoint_name(0)));
}

TEST_CASE("iris train --init-from refuses truncated files, wrong dtypes, NaN weights and non-weights files") {
  InitFixture fx("init-bad");
  const nn::StateDict ema = diffusion::load_checkpoint_weights(fx.ckpt, /*ema=*/true);
  auto refused = [&](const std::string& file, const std::vector<std::string>& parts,
                     const std::string& extra = "") {
    CAPTURE(file);
    std::vector<std::string> all = parts;
    all.push_back(file);
    expect_error(fx.train("bad", "--stop-after 0 --init-from " + file + " " + extra), all);
  };
  // Truncated: safetensors and HDF5 (export and checkpoint).
  for (const std::string name : {"cut.safetensors", "cut.h5"}) {
    const std::string file = fx.export_to(name, name.ends_with(".safetensors") ? "--format safetensors" : "");
    fs::resize_file(file, fs::file_size(file) * 2 / 3);
    refused(file, {"truncated"});
  }
  const std::string cut_ckpt = fx.root + "/cut_ckpt.h5";
  fs::copy_file(fx.ckpt, cut_ckpt);
  fs::resize_file(cut_ckpt, fs::file_size(cut_ckpt) - 100);
  refused(cut_ckpt, {"truncated"});

  // An integer tensor where the model has floating weights; NaN weights. f64 weights are converted.
  const std::string victim = std::next(ema.begin(), 2)->first;
  auto write_with = [&](const std::string& name, const Tensor& replacement) {
    data::SafetensorsFile f{.tensors = ema};
    f.tensors[victim] = replacement;
    const std::string file = fx.root + "/" + name;
    data::write_safetensors(file, f);
    return file;
  };
  refused(write_with("i32.safetensors", ema.at(victim).to(DType::i32)),
          {"1 of a wrong dtype: '" + victim + "' is i32, the model's f32"});
  Tensor nan = ema.at(victim).clone();
  nan.fill_(std::numeric_limits<double>::quiet_NaN());
  refused(write_with("nan.safetensors", nan), {"1 with NaN or infinite values: '" + victim + "'"});
  const std::string f64 = write_with("f64.safetensors", ema.at(victim).to(DType::f64));
  CHECK(same_bytes(fx.imported("f64", f64).model.at(victim), ema.at(victim)));  // f32 -> f64 -> f32 is exact

  // Not a weights file at all; an HDF5 file of another kind (a shard); no file.
  refused(fx.config, {"is neither HDF5 nor a readable safetensors file"});
  std::string shard;
  for (const auto& e : fs::recursive_directory_iterator(fx.data))
    if (e.path().extension() == ".h5") shard = e.path().string();
  REQUIRE(!shard.empty());
  refused(shard, {"is an HDF5 file but neither an Iris checkpoint nor an Iris weights export"});
  refused(fx.root + "/nothing.safetensors", {"does not exist"});
  // --init-layout torch for a checkpoint, which is always in Iris's layout.
  refused(fx.ckpt, {"stores convolution weights in iris layout, but --init-layout is torch"},
          "--init-layout torch");
}

TEST_CASE("iris train --init-from --init-allow-new adds an augmentation embedding to a pretrained SR model") {
  InitFixture fx("init-new");
  const std::string grow = "--set model.aug_embedding=true --set augment.noise=true";
  const std::set<std::string> added = [&] {
    std::set<std::string> now = model_names(fx.config, {"model.aug_embedding=true", "augment.noise=true"}),
                          out;
    for (const auto& n : now)
      if (!model_names(fx.config, {}).count(n)) out.insert(n);
    return out;
  }();
  REQUIRE(added.size() == 4);  // aug1, aug2: weight and bias

  // Without the option: an error naming each new tensor and the option.
  const RunResult r = fx.train("grown", "--stop-after 0 --init-from " + fx.ckpt + " " + grow);
  std::vector<std::string> parts = {"4 missing: ", "--init-allow-new starts the missing tensors fresh",
                                    "model.aug_embedding is false in the checkpoint, true now"};
  for (const auto& n : added) parts.push_back(n);
  expect_error(r, parts);

  // With it: the old tensors imported, the new ones listed and as a fresh run of this config draws them.
  const diffusion::TrainingCheckpoint c = fx.imported("grown", fx.ckpt, grow + " --init-allow-new");
  const RunResult fresh = fx.train("fresh", "--set train.steps=2 --stop-after 0 " + grow);
  REQUIRE_MESSAGE(fresh.exit_code == 0, fresh.output);
  const auto f = diffusion::load_checkpoint(fx.root + "/fresh/checkpoints/" + diffusion::checkpoint_name(0));
  const diffusion::TrainingCheckpoint source = diffusion::load_checkpoint(fx.ckpt);
  REQUIRE(c.model.size() == source.model.size() + 4);
  for (const auto& [name, t] : c.model) {
    CAPTURE(name);
    const bool is_new = added.count(name) > 0;
    CHECK(same_bytes(t, is_new ? f.model.at(name) : source.model.at(name)));
    CHECK(same_bytes(c.ema.at(name), is_new ? f.ema.at(name) : source.ema.at(name)));
  }
  // The log lists them.
  const RunResult again =
      fx.train("grown2", "--stop-after 0 --init-allow-new --init-from " + fx.ckpt + " " + grow);
  check_contains(again, "4 new tensor(s) initialised fresh (--init-allow-new):");
  for (const auto& n : added) check_contains(again, n);
  // The option without --init-from means nothing: refused.
  expect_error(fx.train("lonely", "--stop-after 0 --init-allow-new"), {"--init-allow-new needs --init-from"});
}
