// iris train --init-from a file written by the safetensors library from numpy arrays in PyTorch's layout:
// export -> numpy (convolutions transposed to [Cout, Cin, kh, kw]) -> import, and the imported model's
// forward output equals the original's bit for bit.
#include <cstring>
#include <filesystem>

#include "diffusion/checkpoint.h"
#include "diffusion/stage.h"
#include "tests/interop/interop_util.h"

using namespace iris;
using namespace iris::test;
namespace fs = std::filesystem;

namespace {

bool same_bytes(const Tensor& a, const Tensor& b) {
  if (a.shape() != b.shape() || a.dtype() != b.dtype()) return false;
  const Tensor ca = a.contiguous(), cb = b.contiguous();
  return std::memcmp(ca.data_ptr(), cb.data_ptr(), ca.nbytes()) == 0;
}

// The U-Net of `config` with `weights`, in eval mode, on a fixed input: [2, 16, 16, 1].
Tensor forward(const std::string& config, const nn::StateDict& weights) {
  Generator init(0, 0);
  diffusion::Stage stage(Config::load(config), init);
  stage.net().load_state_dict(weights);
  stage.net().eval();
  Generator g(5, 6);
  const Tensor x = randn({2, 16, 16, 2}, g);
  const Tensor level = Tensor::from_vector<float>({0.3f, 0.9f}, {2});
  NoGradGuard no_grad;
  return stage.net().forward(x, level);
}

}  // namespace

TEST_CASE("iris train --init-from a numpy-written torch-layout safetensors file reproduces the model") {
  IRIS_INTEROP_BEGIN();
  const std::string root = fresh_dir("interop-init");
  const TinyRun tiny = train_tiny_run(root);
  const std::string& cfg = tiny.config;
  const std::string& ckpt = tiny.checkpoint;
  const RunResult exported =
      run_iris("ckpt export " + ckpt + " --out " + root + "/iris.safetensors --format safetensors");
  REQUIRE_MESSAGE(exported.exit_code == 0, exported.output);
  const std::string numpy_file = root + "/numpy.safetensors";
  const nlohmann::json got =
      run_python_json("torch_layout_numpy.py", root + "/iris.safetensors " + numpy_file);
  const nn::StateDict ema = diffusion::load_checkpoint_weights(ckpt, /*ema=*/true);
  CHECK(got["tensors"].get<size_t>() == ema.size());
  CHECK(!got["conv"].empty());

  // As a PyTorch user would say it, and as Iris infers it from the shapes.
  for (const std::string layout : {"--init-layout torch", ""}) {
    CAPTURE(layout);
    const std::string run = root + (layout.empty() ? "/inferred" : "/explicit");
    const RunResult r =
        run_iris("train --config " + cfg + " --threads 1 --device cpu --run " + run +
                 " --set train.steps=2 --stop-after 0 --init-from " + numpy_file + " " + layout);
    REQUIRE_MESSAGE(r.exit_code == 0, r.output);
    check_contains(r, "safetensors, torch layout");
    const diffusion::TrainingCheckpoint c =
        diffusion::load_checkpoint(run + "/checkpoints/" + diffusion::checkpoint_name(0));
    for (const auto& [name, t] : ema) {
      CAPTURE(name);
      CHECK(same_bytes(c.model.at(name), t));
      CHECK(same_bytes(c.ema.at(name), t));
    }
    const Tensor want = forward(cfg, ema), have = forward(cfg, c.model);
    CHECK(same_bytes(have, want));
  }
  fs::remove_all(root);
}
