// FID's feature network, computed by Iris: the Inception-v3 of pytorch-fid (TensorFlow's 2015-12-05
// Inception ported to PyTorch, whose pool3 features every published FID uses), with the weights the user
// provides. Iris does not ship or download them: tools/scripts/convert_fid_inception.py turns the
// pt_inception-2015-12-05 .pth file that pytorch-fid uses into a safetensors file this class reads.
//
// Architecture (torchvision's Inception-v3 with pytorch-fid's FIDInception blocks; names are torchvision's,
// as in the .pth file; every convolution is BasicConv2d: conv without bias, batch norm eps 0.001, ReLU):
//   input [N, H, W, C] in [0, 1] (C = 1 is repeated to RGB, as PIL's convert("RGB") does), resized to
//   299x299 (bilinear, align_corners = False, no antialiasing), scaled to 2x - 1;
//   block 0: Conv2d_1a_3x3 (stride 2), Conv2d_2a_3x3, Conv2d_2b_3x3 (pad 1), max pool 3x3 stride 2 -> 64
//   block 1: Conv2d_3b_1x1, Conv2d_4a_3x3, max pool 3x3 stride 2                                    -> 192
//   block 2: Mixed_5b/5c/5d (A), Mixed_6a (B), Mixed_6b..6e (C, 1x7 and 7x1 kernels)                 -> 768
//   block 3: Mixed_7a (D), Mixed_7b (E_1), Mixed_7c (E_2), global average pool                   -> 2048
// pytorch-fid's patches: the average pools of A, C and E_1 exclude padding (count_include_pad = False,
// TensorFlow's), and E_2 (Mixed_7c) pools with a 3x3 max pool (stride 1, pad 1) instead.
//
// Batch norm (inference: running statistics) is folded into each convolution when the weights are loaded:
// w' = w * g / sqrt(v + eps) per output channel, b' = beta - mean * g / sqrt(v + eps), computed in f64 and
// stored f32. The network then runs as convolutions with bias + ReLU, in f32 on any device.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "framework/core/tensor.h"

namespace iris::diffusion {

class FidInception {
 public:
  static constexpr int64_t kFeatures = 2048;
  static constexpr double kBatchNormEps = 0.001;

  // Reads a file made by tools/scripts/convert_fid_inception.py (safetensors; PyTorch's names and
  // [Cout, Cin, kh, kw] layout, batch norm unfolded). Throws iris::Error naming the file and every missing,
  // unexpected, mis-shaped or non-f32 tensor.
  static FidInception load(const std::string& path);
  // The same from tensors already read (name -> CPU tensor, as in the .pth state dict); `source` names them
  // in errors. Tensors the features do not use (fc.*, num_batches_tracked) are ignored.
  static FidInception from_torch_state(const std::map<std::string, Tensor>& state, const std::string& source);
  // The tensors a state must hold and their shapes (PyTorch's layout), in network order.
  static std::vector<std::pair<std::string, Shape>> expected_tensors();

  void to(Device device);
  Device device() const { return device_; }

  // images [N, H, W, C] (C = 1 or 3) in [0, 1], any floating dtype and device -> pool3 features [N, 2048] f32
  // on the network's device.
  Tensor features(const Tensor& images) const;
  // The outputs of pytorch-fid's four blocks ([N, 73, 73, 64], [N, 35, 35, 192], [N, 17, 17, 768],
  // [N, 2048]), for tests.
  std::vector<Tensor> blocks(const Tensor& images) const;

 private:
  struct Conv {
    Tensor w, b;  // [Cout, kh, kw, Cin] and [Cout], batch norm folded in
    int64_t sh = 1, sw = 1, ph = 0, pw = 0;
  };
  Tensor conv(const std::string& name, const Tensor& x) const;  // conv + bias + ReLU
  Tensor mixed_a(const std::string& p, const Tensor& x) const;
  Tensor mixed_b(const std::string& p, const Tensor& x) const;
  Tensor mixed_c(const std::string& p, const Tensor& x) const;
  Tensor mixed_d(const std::string& p, const Tensor& x) const;
  Tensor mixed_e(const std::string& p, const Tensor& x, bool max_pool) const;

  std::map<std::string, Conv> convs_;
  Device device_ = Device::cpu();
};

}  // namespace iris::diffusion
