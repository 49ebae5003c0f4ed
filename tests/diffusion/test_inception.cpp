// FID's Inception-v3 (diffusion/inception.h) against pytorch-fid's, on RANDOM weights: the weights and the
// input are a hash of (tensor name, element index) that tools/scripts/inception_reference.py computes the
// same way; that script ran pytorch-fid's InceptionV3 (its FIDInception blocks over torchvision's
// Inception-v3) in float64 once and stored the outputs in tests/diffusion/inception_random.json: the 2048
// pool3 features of one 21x17 image (resized to 299x299) and each block's mean.
#include <cmath>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>

#include "data/safetensors.h"
#include "diffusion/inception.h"
#include "framework/iris.h"
#include "tests/common/test_util.h"

using namespace iris;
using namespace iris::test;

namespace {

uint64_t fnv1a64(const std::string& s) {
  uint64_t h = 0xCBF29CE484222325ull;
  for (unsigned char c : s) h = (h ^ c) * 0x100000001B3ull;
  return h;
}

// The script's hash_uniform: splitmix64(fnv1a64(name) + i), top 53 bits, in [0, 1).
double hash_uniform(uint64_t h, uint64_t i) {
  uint64_t z = h + i + 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  return static_cast<double>(z >> 11) * 0x1.0p-53;
}

// The script's hash_values: f32 tensors in PyTorch's layout.
std::map<std::string, Tensor> random_state() {
  std::map<std::string, Tensor> state;
  for (const auto& [name, shape] : diffusion::FidInception::expected_tensors()) {
    const uint64_t h = fnv1a64(name);
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    std::vector<float> v(static_cast<size_t>(n));
    const auto ends = [&](const char* s) { return name.ends_with(s); };
    for (int64_t i = 0; i < n; ++i) {
      const double u = hash_uniform(h, static_cast<uint64_t>(i));
      double x;
      if (ends("conv.weight")) {
        const double bound = std::sqrt(6.0 / static_cast<double>(shape[1] * shape[2] * shape[3]));
        x = -bound + 2.0 * bound * u;
      } else if (ends("bn.weight") || ends("bn.running_var")) {
        x = 0.8 + 0.4 * u;
      } else {
        x = -0.1 + 0.2 * u;
      }
      v[static_cast<size_t>(i)] = static_cast<float>(x);
    }
    state[name] = Tensor::from_vector<float>(v, shape);
  }
  return state;
}

nlohmann::json reference() {
  std::ifstream f("tests/diffusion/inception_random.json");
  REQUIRE_MESSAGE(f.good(), "tests/diffusion/inception_random.json (run from the repository root)");
  return nlohmann::json::parse(f);
}

std::vector<float> decode_f32(const std::string& b64) {
  static const std::string chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string bytes;
  uint32_t acc = 0;
  int bits = 0;
  for (char c : b64) {
    if (c == '=') break;
    acc = (acc << 6) | static_cast<uint32_t>(chars.find(c));
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      bytes.push_back(static_cast<char>((acc >> bits) & 0xFF));
    }
  }
  std::vector<float> out(bytes.size() / 4);
  std::memcpy(out.data(), bytes.data(), out.size() * 4);
  return out;
}

}  // namespace

TEST_CASE("FID Inception-v3 on random weights matches pytorch-fid's float64 outputs") {
  const nlohmann::json ref = reference();
  const diffusion::FidInception net =
      diffusion::FidInception::from_torch_state(random_state(), "random weights");
  // The script's input: hash "input" over [1, 3, 21, 17] (NCHW), given to Iris as NHWC.
  const auto s = ref["input_shape_nchw"].get<std::vector<int64_t>>();
  std::vector<double> v(static_cast<size_t>(s[0] * s[1] * s[2] * s[3]));
  for (size_t i = 0; i < v.size(); ++i) v[i] = hash_uniform(fnv1a64("input"), i);
  const Tensor image =
      Tensor::from_vector<double>(v, {s[0], s[1], s[2], s[3]}).permute({0, 2, 3, 1}).contiguous();
  const std::vector<Tensor> blocks = net.blocks(image);
  REQUIRE(blocks.size() == 4);
  for (int k = 0; k < 4; ++k) {
    CAPTURE(k);
    const auto& r = ref["blocks"][k];
    const auto shape = r["shape_nchw"].get<std::vector<int64_t>>();
    const double m = mean(blocks[k].to(DType::f64)).item();
    CHECK(blocks[k].numel() == shape[1] * shape[2] * shape[3]);
    CHECK(std::abs(m - r["mean"].get<double>()) <= 1e-5 * std::abs(r["mean"].get<double>()));
  }
  const std::vector<float> want = decode_f32(ref["pool3_f32_base64"].get<std::string>());
  const std::vector<double> got = blocks[3].to(DType::f64).to_vector<double>();
  REQUIRE(want.size() == 2048);
  REQUIRE(got.size() == 2048);
  // Features near 0 (ReLU outputs averaged) make a plain relative error meaningless: relative errors are
  // reported for features of magnitude >= 0.1, and the L2 error relative to the whole vector's.
  double max_abs = 0, max_rel = 0, max_ref = 0, err2 = 0, ref2 = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const double w = want[i], d = std::abs(got[i] - w);
    max_abs = std::max(max_abs, d);
    if (std::abs(w) >= 0.1) max_rel = std::max(max_rel, d / std::abs(w));
    max_ref = std::max(max_ref, std::abs(w));
    err2 += d * d;
    ref2 += w * w;
  }
  const double rel_l2_err = std::sqrt(err2 / ref2);
  MESSAGE("pool3 features vs pytorch-fid (float64) on random weights: max |diff| ", max_abs,
          ", max relative (features >= 0.1) ", max_rel, ", relative L2 ", rel_l2_err, " (features up to ",
          max_ref, "; PyTorch's own float32 run: max |diff| ",
          ref["blocks"][3]["torch_f32_max_abs_err"].get<double>(), ")");
  CHECK(max_abs <= 2e-5);
  CHECK(max_rel <= 1e-4);
  CHECK(rel_l2_err <= 1e-5);
}

TEST_CASE("FID Inception weights: missing, mis-shaped and wrong-dtype tensors are named") {
  std::map<std::string, Tensor> state = random_state();
  state.erase("Mixed_6b.branch7x7_2.conv.weight");
  state["Mixed_7c.branch_pool.bn.bias"] = Tensor::zeros({191}, DType::f32);
  state["Conv2d_1a_3x3.bn.weight"] = state["Conv2d_1a_3x3.bn.weight"].to(DType::f64);
  state["extra.weight"] = Tensor::zeros({1}, DType::f32);
  state["fc.weight"] = Tensor::zeros({1008, 2048}, DType::f32);  // the classifier: ignored
  std::string msg;
  try {
    (void)diffusion::FidInception::from_torch_state(state, "w.safetensors");
  } catch (const Error& e) {
    msg = e.message();
  }
  for (const char* part :
       {"'w.safetensors' is not FID's Inception-v3", "1 missing: Mixed_6b.branch7x7_2.conv.weight",
        "1 unexpected: extra.weight", "'Mixed_7c.branch_pool.bn.bias': [191], expected [192]",
        "'Conv2d_1a_3x3.bn.weight' is f64, expected f32"})
    CHECK_MESSAGE(msg.find(part) != std::string::npos, msg);
}
