// Starting a run from imported weights (`iris train --init-from WEIGHTS`): fine-tuning a pretrained model,
// or growing one (adding class or augmentation embeddings to a pretrained SR model).
//
// WEIGHTS may be
//   - an Iris training checkpoint (HDF5, diffusion/checkpoint.h): the model takes /model, the EMA /ema;
//   - an Iris weights export (`iris ckpt export`, HDF5 /params/<name> or safetensors): the model and the EMA
//     both take its one set of weights;
//   - any safetensors file whose tensors carry Iris's parameter names (e.g. written by PyTorch or numpy).
// Convolution weights (the only 4-d tensors of Iris's models) are stored as Iris's [Cout, kh, kw, Cin] or
// PyTorch's [Cout, Cin, kh, kw] (`iris ckpt export --layout torch`); importing is export's inverse: a torch
// layout file's 4-d tensors are permuted with axes (0, 2, 3, 1). The layout is the file's `layout` entry
// (Iris's exports write it), or `layout` given explicitly, or, for files that do not say, inferred from the
// model's shapes (refused when no convolution tells the two apart, e.g. every kernel 1x1 over one channel).
//
// Floating tensors of any floating dtype are converted to the model's (f32); integer tensors where the model
// has floating ones, NaN or infinite values, missing, unexpected and mis-shaped tensors are all errors,
// every one named in one message that names the file. With `allow_new`, the model's tensors that the file
// lacks keep their fresh initialisation (in the model and the EMA) and are listed in the report.
// Only the weights are imported: the optimizer, the EMA's counters, the schedule and the data position start
// fresh (the trainer's step 0).
#pragma once

#include <string>
#include <vector>

#include "diffusion/config.h"
#include "framework/nn/module.h"
#include "framework/optim/ema.h"

namespace iris::diffusion {

// A weights file as read, before it is fitted to a model. Tensors are on the CPU, as stored (file layout).
struct WeightsFile {
  std::string path;
  std::string kind;         // "Iris checkpoint", "Iris weights export (HDF5)", "safetensors"
  std::string layout;       // "iris", "torch", or "" when the file does not say
  nn::StateDict model;      // the weights the model takes
  nn::StateDict ema;        // a checkpoint's EMA; empty otherwise (the EMA then takes `model`)
  std::string config_toml;  // the config of the run that made the weights ("" when the file has none)
};

// Reads an Iris checkpoint, an Iris weights export (HDF5) or a safetensors file. Throws iris::Error naming
// the file when it does not exist, is damaged or truncated, or is none of these.
WeightsFile read_weights_file(const std::string& path);

struct InitOptions {
  std::string layout = "auto";  // auto | iris | torch: how the file stores convolution weights
  bool allow_new = false;       // the model's tensors the file lacks start fresh instead of being an error
};

struct InitReport {
  std::string kind, layout;        // of the file; layout as used ("iris" or "torch")
  bool layout_inferred = false;    // from the shapes (the file did not say)
  int64_t imported = 0;            // tensors taken from the file
  std::vector<std::string> fresh;  // with allow_new: tensors that kept their fresh initialisation
  std::string model_difference;    // the first [model] key that differs from the file's config ("": none)
};

// Copies the weights of `file` into `net` and `ema` (the EMA of `net`'s parameters), converting layout and
// dtype. `config` is the run's, compared with the file's own config only to explain a misfit. Checks
// everything first and changes nothing when it throws.
InitReport init_from_weights(const WeightsFile& file, nn::Module& net, optim::EMA& ema, const Config& config,
                             const InitOptions& options);

}  // namespace iris::diffusion
