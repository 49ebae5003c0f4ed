// A small training checkpoint built in memory (three parameters, optimizer moments, counters that fit the
// default config), for tests of checkpoint files that need no trained model.
#pragma once

#include "diffusion/checkpoint.h"
#include "diffusion/config.h"

namespace iris::test {

inline diffusion::TrainingCheckpoint small_checkpoint(int64_t step = 12) {
  diffusion::TrainingCheckpoint c;
  c.step = step;
  c.config_toml = Config().to_toml();
  for (const char* p : {"conv.weight", "conv.bias", "norm.weight"}) {
    c.model[p] = Tensor::arange(96, DType::f32);
    c.ema[p] = Tensor::arange(96, DType::f32);
    c.optimizer.tensors[std::string(p) + ".m"] = Tensor::arange(96, DType::f32);
    c.optimizer.tensors[std::string(p) + ".step"] = Tensor::arange(1, DType::i64);
  }
  c.optimizer.floats["lr"] = 1e-3;
  c.ema_state.ints["updates"] = 12;
  c.ema_state.floats["decay"] = 0.999;
  c.cursor = {1, 8};
  c.samples_seen = 104;
  c.data_samples = 96;
  return c;
}

}  // namespace iris::test
