#include "diffusion/inception.h"

#include <cmath>
#include <set>

#include "data/safetensors.h"
#include "framework/iris.h"
#include "framework/nn/tensor_problems.h"
#include "framework/ops/pool.h"

namespace iris::diffusion {

namespace {

// One BasicConv2d of the network: its module name (tensors "<name>.conv.weight", "<name>.bn.*") and shape.
struct ConvSpec {
  std::string name;
  int64_t cin, cout, kh, kw, sh = 1, sw = 1, ph = 0, pw = 0;
};

// Every convolution, in network order, with torchvision's names, channels, kernels, strides and paddings.
const std::vector<ConvSpec>& conv_specs() {
  static const std::vector<ConvSpec> specs = [] {
    std::vector<ConvSpec> s;
    auto add = [&](const std::string& name, int64_t cin, int64_t cout, int64_t kh, int64_t kw,
                   int64_t stride = 1, int64_t ph = 0, int64_t pw = 0) {
      s.push_back({name, cin, cout, kh, kw, stride, stride, ph, pw});
    };
    add("Conv2d_1a_3x3", 3, 32, 3, 3, 2);
    add("Conv2d_2a_3x3", 32, 32, 3, 3);
    add("Conv2d_2b_3x3", 32, 64, 3, 3, 1, 1, 1);
    add("Conv2d_3b_1x1", 64, 80, 1, 1);
    add("Conv2d_4a_3x3", 80, 192, 3, 3);
    auto a = [&](const std::string& p, int64_t cin, int64_t pool) {  // InceptionA
      add(p + ".branch1x1", cin, 64, 1, 1);
      add(p + ".branch5x5_1", cin, 48, 1, 1);
      add(p + ".branch5x5_2", 48, 64, 5, 5, 1, 2, 2);
      add(p + ".branch3x3dbl_1", cin, 64, 1, 1);
      add(p + ".branch3x3dbl_2", 64, 96, 3, 3, 1, 1, 1);
      add(p + ".branch3x3dbl_3", 96, 96, 3, 3, 1, 1, 1);
      add(p + ".branch_pool", cin, pool, 1, 1);
    };
    a("Mixed_5b", 192, 32);
    a("Mixed_5c", 256, 64);
    a("Mixed_5d", 288, 64);
    add("Mixed_6a.branch3x3", 288, 384, 3, 3, 2);  // InceptionB
    add("Mixed_6a.branch3x3dbl_1", 288, 64, 1, 1);
    add("Mixed_6a.branch3x3dbl_2", 64, 96, 3, 3, 1, 1, 1);
    add("Mixed_6a.branch3x3dbl_3", 96, 96, 3, 3, 2);
    auto c = [&](const std::string& p, int64_t c7) {  // InceptionC: 1x7 and 7x1 kernels
      add(p + ".branch1x1", 768, 192, 1, 1);
      add(p + ".branch7x7_1", 768, c7, 1, 1);
      add(p + ".branch7x7_2", c7, c7, 1, 7, 1, 0, 3);
      add(p + ".branch7x7_3", c7, 192, 7, 1, 1, 3, 0);
      add(p + ".branch7x7dbl_1", 768, c7, 1, 1);
      add(p + ".branch7x7dbl_2", c7, c7, 7, 1, 1, 3, 0);
      add(p + ".branch7x7dbl_3", c7, c7, 1, 7, 1, 0, 3);
      add(p + ".branch7x7dbl_4", c7, c7, 7, 1, 1, 3, 0);
      add(p + ".branch7x7dbl_5", c7, 192, 1, 7, 1, 0, 3);
      add(p + ".branch_pool", 768, 192, 1, 1);
    };
    c("Mixed_6b", 128);
    c("Mixed_6c", 160);
    c("Mixed_6d", 160);
    c("Mixed_6e", 192);
    add("Mixed_7a.branch3x3_1", 768, 192, 1, 1);  // InceptionD
    add("Mixed_7a.branch3x3_2", 192, 320, 3, 3, 2);
    add("Mixed_7a.branch7x7x3_1", 768, 192, 1, 1);
    add("Mixed_7a.branch7x7x3_2", 192, 192, 1, 7, 1, 0, 3);
    add("Mixed_7a.branch7x7x3_3", 192, 192, 7, 1, 1, 3, 0);
    add("Mixed_7a.branch7x7x3_4", 192, 192, 3, 3, 2);
    auto e = [&](const std::string& p, int64_t cin) {  // InceptionE: 1x3 and 3x1 kernels
      add(p + ".branch1x1", cin, 320, 1, 1);
      add(p + ".branch3x3_1", cin, 384, 1, 1);
      add(p + ".branch3x3_2a", 384, 384, 1, 3, 1, 0, 1);
      add(p + ".branch3x3_2b", 384, 384, 3, 1, 1, 1, 0);
      add(p + ".branch3x3dbl_1", cin, 448, 1, 1);
      add(p + ".branch3x3dbl_2", 448, 384, 3, 3, 1, 1, 1);
      add(p + ".branch3x3dbl_3a", 384, 384, 1, 3, 1, 0, 1);
      add(p + ".branch3x3dbl_3b", 384, 384, 3, 1, 1, 1, 0);
      add(p + ".branch_pool", cin, 192, 1, 1);
    };
    e("Mixed_7b", 1280);
    e("Mixed_7c", 2048);
    return s;
  }();
  return specs;
}

const char* const kBnParts[] = {"bn.weight", "bn.bias", "bn.running_mean", "bn.running_var"};

}  // namespace

std::vector<std::pair<std::string, Shape>> FidInception::expected_tensors() {
  std::vector<std::pair<std::string, Shape>> out;
  for (const ConvSpec& s : conv_specs()) {
    out.push_back({s.name + ".conv.weight", {s.cout, s.cin, s.kh, s.kw}});
    for (const char* part : kBnParts) out.push_back({s.name + "." + part, {s.cout}});
  }
  return out;
}

FidInception FidInception::from_torch_state(const std::map<std::string, Tensor>& state,
                                            const std::string& source) {
  nn::TensorProblems problems;
  std::set<std::string> known;
  for (const auto& [name, shape] : expected_tensors()) {
    known.insert(name);
    const auto it = state.find(name);
    if (it == state.end())
      problems.missing.push_back(name);
    else if (it->second.shape() != shape)
      problems.misshaped.push_back("'" + name + "': " + shape_str(it->second.shape()) + ", expected " +
                                   shape_str(shape));
    else if (it->second.dtype() != DType::f32)
      problems.wrong_dtype.push_back("'" + name + "' is " + dtype_name(it->second.dtype()) +
                                     ", expected f32");
  }
  for (const auto& [name, t] : state)
    if (!known.count(name) && name.rfind("fc.", 0) != 0 && !name.ends_with("num_batches_tracked"))
      problems.unexpected.push_back(name);
  IRIS_CHECK(!problems.any(), "'", source, "' is not FID's Inception-v3 in pytorch-fid's naming (made by ",
             "tools/scripts/convert_fid_inception.py?)", problems.describe());
  FidInception net;
  NoGradGuard no_grad;
  for (const ConvSpec& s : conv_specs()) {
    // Fold the batch norm: per output channel k = g / sqrt(v + eps); w' = w k, b' = beta - mean k (f64).
    const Tensor w = state.at(s.name + ".conv.weight").to(DType::f64);
    const Tensor g = state.at(s.name + ".bn.weight").to(DType::f64),
                 beta = state.at(s.name + ".bn.bias").to(DType::f64);
    const Tensor mu = state.at(s.name + ".bn.running_mean").to(DType::f64),
                 var = state.at(s.name + ".bn.running_var").to(DType::f64);
    const auto vv = var.to_vector<double>();
    for (size_t i = 0; i < vv.size(); ++i)
      IRIS_CHECK(std::isfinite(vv[i]) && vv[i] + kBatchNormEps > 0, "'", source, "': ", s.name,
                 ".bn.running_var[", i, "] is ", vv[i], " (batch norm needs variance + eps > 0)");
    const Tensor k = div(g, sqrt(add(var, kBatchNormEps)));  // [Cout]
    Conv c;
    // [Cout, Cin, kh, kw] -> Iris's [Cout, kh, kw, Cin], scaled per output channel.
    c.w = mul(w.permute({0, 2, 3, 1}), k.reshape({s.cout, 1, 1, 1})).contiguous().to(DType::f32);
    c.b = sub(beta, mul(mu, k)).to(DType::f32);
    c.sh = s.sh, c.sw = s.sw, c.ph = s.ph, c.pw = s.pw;
    for (const Tensor* t : {&c.w, &c.b}) {
      const auto v = t->to_vector<float>();
      for (float x : v)
        IRIS_CHECK(std::isfinite(x), "'", source, "': ", s.name,
                   " holds NaN or infinite values once batch norm is folded");
    }
    net.convs_[s.name] = std::move(c);
  }
  return net;
}

FidInception FidInception::load(const std::string& path) {
  const data::SafetensorsFile f = data::read_safetensors(path);  // names the file and tensor at fault
  return from_torch_state(f.tensors, path);
}

void FidInception::to(Device device) {
  for (auto& [name, c] : convs_) {
    c.w = c.w.to(device);
    c.b = c.b.to(device);
  }
  device_ = device;
}

Tensor FidInception::conv(const std::string& name, const Tensor& x) const {
  const Conv& c = convs_.at(name);
  return relu(conv2d(x, c.w, c.b, {c.sh, c.sw}, {c.ph, c.pw}));
}

Tensor FidInception::mixed_a(const std::string& p, const Tensor& x) const {
  const Tensor b1 = conv(p + ".branch1x1", x);
  const Tensor b5 = conv(p + ".branch5x5_2", conv(p + ".branch5x5_1", x));
  const Tensor b3 = conv(p + ".branch3x3dbl_3", conv(p + ".branch3x3dbl_2", conv(p + ".branch3x3dbl_1", x)));
  const Tensor bp =
      conv(p + ".branch_pool", avg_pool2d(x, {3, 3}, {1, 1}, {1, 1}, /*count_include_pad=*/false));
  return cat({b1, b5, b3, bp}, 3);
}

Tensor FidInception::mixed_b(const std::string& p, const Tensor& x) const {
  const Tensor b3 = conv(p + ".branch3x3", x);
  const Tensor bd = conv(p + ".branch3x3dbl_3", conv(p + ".branch3x3dbl_2", conv(p + ".branch3x3dbl_1", x)));
  return cat({b3, bd, max_pool2d(x, {3, 3}, {2, 2})}, 3);
}

Tensor FidInception::mixed_c(const std::string& p, const Tensor& x) const {
  const Tensor b1 = conv(p + ".branch1x1", x);
  Tensor b7 = conv(p + ".branch7x7_1", x);
  b7 = conv(p + ".branch7x7_3", conv(p + ".branch7x7_2", b7));
  Tensor bd = conv(p + ".branch7x7dbl_1", x);
  for (const char* k : {".branch7x7dbl_2", ".branch7x7dbl_3", ".branch7x7dbl_4", ".branch7x7dbl_5"})
    bd = conv(p + k, bd);
  const Tensor bp =
      conv(p + ".branch_pool", avg_pool2d(x, {3, 3}, {1, 1}, {1, 1}, /*count_include_pad=*/false));
  return cat({b1, b7, bd, bp}, 3);
}

Tensor FidInception::mixed_d(const std::string& p, const Tensor& x) const {
  const Tensor b3 = conv(p + ".branch3x3_2", conv(p + ".branch3x3_1", x));
  Tensor b7 = conv(p + ".branch7x7x3_1", x);
  for (const char* k : {".branch7x7x3_2", ".branch7x7x3_3", ".branch7x7x3_4"}) b7 = conv(p + k, b7);
  return cat({b3, b7, max_pool2d(x, {3, 3}, {2, 2})}, 3);
}

Tensor FidInception::mixed_e(const std::string& p, const Tensor& x, bool max_pool) const {
  const Tensor b1 = conv(p + ".branch1x1", x);
  const Tensor t = conv(p + ".branch3x3_1", x);
  const Tensor b3 = cat({conv(p + ".branch3x3_2a", t), conv(p + ".branch3x3_2b", t)}, 3);
  const Tensor d = conv(p + ".branch3x3dbl_2", conv(p + ".branch3x3dbl_1", x));
  const Tensor bd = cat({conv(p + ".branch3x3dbl_3a", d), conv(p + ".branch3x3dbl_3b", d)}, 3);
  const Tensor pooled = max_pool ? max_pool2d(x, {3, 3}, {1, 1}, {1, 1})
                                 : avg_pool2d(x, {3, 3}, {1, 1}, {1, 1}, /*count_include_pad=*/false);
  return cat({b1, b3, bd, conv(p + ".branch_pool", pooled)}, 3);
}

std::vector<Tensor> FidInception::blocks(const Tensor& images) const {
  IRIS_CHECK(!convs_.empty(), "FidInception: no weights loaded");
  IRIS_CHECK(images.defined() && images.dim() == 4 && (images.size(3) == 1 || images.size(3) == 3),
             "FidInception: expected images [N, H, W, 1 or 3] in [0, 1], got ",
             images.defined() ? images.summary() : std::string("none"));
  NoGradGuard no_grad;
  Tensor x = images.to(device_).to(DType::f32);
  if (x.size(3) == 1) x = cat({x, x, x}, 3);  // grey to RGB, as PIL's convert("RGB")
  // pytorch-fid's order: resize, then scale to [-1, 1].
  x = sub(mul(resize_bilinear(x, 299, 299), 2.0), 1.0);
  std::vector<Tensor> out;
  x = conv("Conv2d_2b_3x3", conv("Conv2d_2a_3x3", conv("Conv2d_1a_3x3", x)));
  out.push_back(x = max_pool2d(x, {3, 3}, {2, 2}));
  x = conv("Conv2d_4a_3x3", conv("Conv2d_3b_1x1", x));
  out.push_back(x = max_pool2d(x, {3, 3}, {2, 2}));
  for (const char* m : {"Mixed_5b", "Mixed_5c", "Mixed_5d"}) x = mixed_a(m, x);
  x = mixed_b("Mixed_6a", x);
  for (const char* m : {"Mixed_6b", "Mixed_6c", "Mixed_6d", "Mixed_6e"}) x = mixed_c(m, x);
  out.push_back(x);
  x = mixed_e("Mixed_7c", mixed_e("Mixed_7b", mixed_d("Mixed_7a", x), false), true);
  out.push_back(mean(x, {1, 2}));  // global average pool: [N, 2048]
  return out;
}

Tensor FidInception::features(const Tensor& images) const {
  return blocks(images).back();
}

}  // namespace iris::diffusion
