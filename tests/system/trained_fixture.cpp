#include "tests/system/trained_fixture.h"

#include <cstring>
#include <filesystem>
#include <fstream>

#include "framework/io/hdf5.h"
#include "tests/common/test_util.h"
#include "tests/system/system_util.h"

namespace iris::test {

namespace fs = std::filesystem;

namespace {

// A class-conditional base stage generating the shards' 4x4 low-res images (3 classes).
std::string write_tiny_base_config(const std::string& dir, const std::string& data_dir) {
  const std::string path = (fs::path(dir) / "tiny_base.toml").string();
  std::ofstream f(path);
  f << "[model]\ntask = \"base\"\nresolution = 4\nin_channels = 1\nout_channels = 1\nbase_channels = 8\n"
       "channel_mults = [1, 2]\nnum_res_blocks = 1\nattention_resolutions = [2]\nnorm_groups = "
       "4\nnum_classes = 3\n"
       "[diffusion]\ntimesteps = 200\nsampler = \"ddim\"\nsample_steps = 4\nsample_schedule = \"cosine\"\n"
       "cond_drop_prob = 0.2\n"
       "[data]\ndir = \""
    << data_dir
    << "\"\nimage_size = 4\nlowres_size = 4\nchannels = 1\n"
       "[train]\nsteps = 2\nbatch_size = 8\nlr = 1e-3\nwarmup_steps = 1\nlog_every = 1\ncheckpoint_every = "
       "0\n"
       "sample_every = 0\nsample_count = 2\nema_decay = 0.9\n";
  return path;
}

std::string train(const std::string& config, const std::string& run, const std::string& sets = "") {
  const RunResult r = run_iris("train --config " + config + " --threads 2 --device cpu --run " + run +
                               " --set train.steps=2 --set train.checkpoint_every=0 " + sets);
  REQUIRE_MESSAGE(r.exit_code == 0, r.output);
  const std::string ckpt = (fs::path(run) / "checkpoints" / "step_000000002.h5").string();
  REQUIRE_MESSAGE(fs::exists(ckpt), r.output);
  return ckpt;
}

}  // namespace

TrainedFixture::TrainedFixture(const std::string& tag, TrainedStages stages) {
  root = fresh_dir(tag);
  data = path("data");
  write_tiny_shards(data, 24);
  const std::string sr3 = write_tiny_config(root, data), base = write_tiny_base_config(root, data);
  if (stages.sr3) sr3_ckpt = train(sr3, path("run_sr3"));
  if (stages.sr3_aug)
    sr3_aug_ckpt = train(sr3, path("run_sr3_aug"), "--set augment.noise=true --set model.aug_embedding=true");
  if (stages.base) base_ckpt = train(base, path("run_base"));
  if (stages.regression)
    regression_ckpt = train(sr3, path("run_regression"), "--set model.task=regression --set model.in_channels=1");
  if (stages.base_uncond)
    base_uncond_ckpt = train(base, path("run_base_uncond"), "--set model.num_classes=0");
}

TrainedFixture::~TrainedFixture() {
  std::error_code ec;
  fs::remove_all(root, ec);
}

std::string TrainedFixture::path(const std::string& name) const {
  return (fs::path(root) / name).string();
}

Tensor read_h5(const std::string& file, const std::string& dataset) {
  const h5::File f = h5::File::open(file);
  return f.root().read_tensor(dataset);
}

bool same_bytes(const Tensor& a, const Tensor& b) {
  if (a.shape() != b.shape() || a.dtype() != b.dtype()) return false;
  const Tensor ca = a.contiguous(), cb = b.contiguous();
  return std::memcmp(ca.data_ptr(), cb.data_ptr(), ca.nbytes()) == 0;
}

int count_pngs(const std::string& dir) {
  int n = 0;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.path().extension() == ".png" && e.path().filename() != "grid.png") ++n;
  return n;
}

}  // namespace iris::test
