#include "diffusion/sampling_stage.h"

#include <filesystem>

#include "framework/core/error.h"
#include "framework/io/hdf5.h"

namespace iris::diffusion {

namespace fs = std::filesystem;

namespace {

// Checks the checksums of one weights group before its tensors are used: sampling from a damaged file
// should fail loudly, not produce noise.
void verify_weights(const std::string& ckpt, bool ema) {
  const h5::File f = h5::File::open(ckpt);
  const h5::Group g = f.root().open_group(ema ? "ema" : "model");
  for (const auto& name : g.children()) g.open_dataset(name).verify_checksum();
}

}  // namespace

LoadedStage load_stage(const std::string& ckpt, bool raw, const std::vector<std::string>& sets,
                       Device device) {
  LoadedStage L;
  L.path = ckpt;
  L.ema = !raw;
  L.info = read_checkpoint_info(ckpt);  // names the file: missing, not HDF5, not a checkpoint
  L.config = Config::from_toml(L.info.config_toml, ckpt + " (saved config)");
  for (const auto& s : sets) L.config.set(s);
  const char* with_sets = sets.empty() ? "" : " (with the --set overrides)";
  Generator init(0, 0);  // the weights are replaced below
  try {
    L.stage = std::make_shared<Stage>(L.config, init);
  } catch (const Error& e) {
    IRIS_THROW("checkpoint '", ckpt, "': cannot build the model of its config", with_sets, ": ", e.message());
  }
  verify_weights(ckpt, !raw);
  const nn::StateDict weights = load_checkpoint_weights(ckpt, !raw);
  try {
    L.stage->net().load_state_dict(weights);
  } catch (const Error& e) {
    IRIS_THROW("checkpoint '", ckpt, "': its ", raw ? "raw" : "EMA",
               " weights do not fit the model its config", with_sets, " describes: ", e.message());
  }
  L.stage->net().to(device);
  L.stage->net().eval();
  return L;
}

std::vector<LoadedStage> load_stages(const std::vector<std::string>& paths, bool raw, Device device) {
  std::vector<LoadedStage> stages;
  for (const std::string& path : paths) stages.push_back(load_stage(path, raw, {}, device));
  return stages;
}

nlohmann::json stage_identity(const LoadedStage& stage, const SampleSettings& s) {
  const std::string toml = stage.config.to_toml();
  nlohmann::json id = {{"checkpoint", fs::absolute(stage.path).lexically_normal().string()},
                       {"step", stage.info.step},
                       {"weights", stage.ema ? "ema" : "raw"},
                       {"config_crc32c", h5::crc32c(toml.data(), toml.size())},
                       {"sampler", s.sampler},
                       {"schedule", s.schedule},
                       {"steps", s.steps},
                       {"eta", s.eta},
                       {"guidance", s.guidance},
                       {"aug_level", s.aug_level},
                       {"renoise_condition", s.renoise_condition},
                       {"stop_gamma", s.stop_gamma},
                       {"clip_x0", s.clip_x0}};
  // Only when tiled, so that the records of untiled runs stay as they were (and resume).
  if (s.tile > 0) {
    id["tile"] = s.tile;
    id["tile_overlap"] = s.tile_overlap;
  }
  return id;
}

}  // namespace iris::diffusion
