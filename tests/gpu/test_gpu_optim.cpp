// CUDA optimizer kernels: the per-tensor and multi-tensor AdamW kernels against each other (identical bits)
// and against the CPU, the multi-tensor EMA against the elementwise formula and the CPU (identical bits), and
// the AdamW / EMA classes on a GPU model against the same classes on the CPU.
#include "framework/cpu/optim.h"
#include "tests/gpu/gpu_util.h"

#ifdef IRIS_WITH_CUDA
#include "framework/cuda/optim.h"
#endif

using namespace iris;
using namespace iris::gputest;

namespace {

// Sizes around the kernels' limits: empty, tiny, one chunk (16384), several chunks with a tail, odd.
const int64_t kSizes[] = {1, 0, 5, 16384, 16385, 40001, 129, 3};

// A module holding one parameter per size (f32), for the class-level tests.
class Params : public nn::Module {
 public:
  Params(int count, uint64_t seed) {
    for (int i = 0; i < count; ++i) {
      const int64_t n = kSizes[i % 8] + i / 8;  // every size, then slightly larger ones
      std::string name = "p";  // (not "p" + to_string: GCC 12 warns about that falsely, -Wrestrict)
      name += std::to_string(i);
      register_parameter(name, test::randn({n}, seed + i, DType::f32));
    }
  }
};

[[maybe_unused]] cpu::AdamWStep step_for(int64_t t, double wd) {
  cpu::AdamWStep k;
  k.lr = 1e-2;
  k.beta1 = 0.9;
  k.beta2 = 0.999;
  k.eps = 1e-8;
  k.weight_decay = wd;
  k.bias_correction1 = 1.0 - std::pow(0.9, static_cast<double>(t));
  k.bias_correction2 = 1.0 - std::pow(0.999, static_cast<double>(t));
  return k;
}

}  // namespace

TEST_CASE("gpu multi-tensor AdamW equals the per-tensor kernel bit for bit and the CPU") {
  IRIS_GPU_TEST_BEGIN();
#ifdef IRIS_WITH_CUDA
  // 150 tensors (more than one launch holds), f32 and some f64, with 12 distinct steps (more scalar sets than
  // one launch holds), with and without weight decay.
  struct Item {
    Tensor p, g, m, v;
    cpu::AdamWStep step;
  };
  std::vector<Item> host;
  for (int i = 0; i < 150; ++i) {
    const DType dt = i % 10 == 9 ? DType::f64 : DType::f32;
    const int64_t n = kSizes[i % 8] + i;
    Item it;
    it.p = test::randn({n}, 600 + i, dt);
    it.g = test::randn({n}, 800 + i, dt, 0.1);
    it.m = test::randn({n}, 1000 + i, dt, 0.01);
    it.v = test::uniform({n}, 1200 + i, 0.0, 1e-3, dt);
    it.step = step_for(1 + i % 12, i % 3 == 0 ? 0.0 : 0.05);
    host.push_back(it);
  }
  std::vector<cuda::AdamWTensor> multi;
  std::vector<Item> single;
  for (const Item& it : host) {
    multi.push_back({it.p.to(gpu()), it.g.to(gpu()), it.m.to(gpu()), it.v.to(gpu()), it.step});
    single.push_back({it.p.to(gpu()), it.g.to(gpu()), it.m.to(gpu()), it.v.to(gpu()), it.step});
  }
  cuda::adamw_update_multi(multi);
  for (Item& it : single) cuda::adamw_update(it.p, it.g, it.m, it.v, it.step);
  for (Item& it : host) cpu::adamw_update(it.p, it.g, it.m, it.v, it.step);
  for (size_t i = 0; i < host.size(); ++i) {
    const std::string what = "AdamW tensor " + std::to_string(i) + " " + host[i].p.summary();
    expect_equal(multi[i].param, single[i].p, what + " param: multi-tensor vs per-tensor");
    expect_equal(multi[i].m, single[i].m, what + " m: multi-tensor vs per-tensor");
    expect_equal(multi[i].v, single[i].v, what + " v: multi-tensor vs per-tensor");
    const double tol = host[i].p.dtype() == DType::f64 ? 1e-15 : 1e-6;
    expect_match(multi[i].param, host[i].p, tol, what + " param vs CPU");
    expect_match(multi[i].m, host[i].m, tol, what + " m vs CPU");
    expect_match(multi[i].v, host[i].v, tol, what + " v vs CPU");
  }
  // Misuse names the item.
  std::vector<cuda::AdamWTensor> bad = {multi[0]};
  bad[0].grad = Tensor::zeros({3}, DType::f32, gpu());
  test::check_throws_with([&] { cuda::adamw_update_multi(bad); }, {"adamw_update_multi", "item 0", "grad"});
#endif
}

TEST_CASE("gpu multi-tensor EMA equals the elementwise formula and the CPU bit for bit") {
  IRIS_GPU_TEST_BEGIN();
#ifdef IRIS_WITH_CUDA
  std::vector<Tensor> shadows, params, generic;
  for (int i = 0; i < 140; ++i) {  // more than one launch holds
    const DType dt = i % 7 == 6 ? DType::f64 : DType::f32;
    const int64_t n = kSizes[i % 8] + i;
    shadows.push_back(test::randn({n}, 1400 + i, dt).to(gpu()));
    params.push_back(test::randn({n}, 1600 + i, dt).to(gpu()));
  }
  const double d = 0.9993;
  std::vector<Tensor> cpu_out;
  for (size_t i = 0; i < shadows.size(); ++i) {
    generic.push_back(add(mul(shadows[i], d), mul(params[i], 1.0 - d)));
    cpu_out.push_back(add(mul(shadows[i].cpu(), d), mul(params[i].cpu(), 1.0 - d)));
  }
  cuda::ema_update_multi(shadows, params, d);
  for (size_t i = 0; i < shadows.size(); ++i) {
    const std::string what = "EMA tensor " + std::to_string(i) + " " + shadows[i].summary();
    expect_equal(shadows[i], generic[i], what + " vs add(mul(s, d), mul(p, 1 - d)) on the GPU");
    expect_equal(shadows[i], cpu_out[i], what + " vs the CPU");
  }
#endif
}

TEST_CASE("gpu AdamW and EMA classes follow the CPU over several steps") {
  IRIS_GPU_TEST_BEGIN();
  Params cpu_model(70, 1700), gpu_model(70, 1700);
  gpu_model.to(gpu());
  optim::AdamW opt_c(cpu_model.named_parameters(), 3e-3, {0.9, 0.99}, 1e-8, 0.01);
  optim::AdamW opt_g(gpu_model.named_parameters(), 3e-3, {0.9, 0.99}, 1e-8, 0.01);
  optim::EMA ema_c(cpu_model, 0.99), ema_g(gpu_model, 0.99);
  auto pc = cpu_model.named_parameters(), pg = gpu_model.named_parameters();
  for (int step = 0; step < 4; ++step) {
    for (size_t i = 0; i < pc.size(); ++i) {
      // Every third parameter skips every other step: its step count falls behind (other scalars).
      if (i % 3 == 0 && step % 2 == 1) {
        pc[i].second.set_grad(Tensor());
        pg[i].second.set_grad(Tensor());
        continue;
      }
      const Tensor g = test::randn(pc[i].second.shape(), 1900 + 100 * step + i, DType::f32, 0.1);
      pc[i].second.set_grad(g);
      pg[i].second.set_grad(g.to(gpu()));
    }
    opt_c.step();
    opt_g.step();
    ema_c.update();
    ema_g.update();
  }
  const auto ac = ema_c.averaged(), ag = ema_g.averaged();
  for (size_t i = 0; i < pc.size(); ++i) {
    CHECK(opt_g.step_count(i) == opt_c.step_count(i));
    expect_match(pg[i].second, pc[i].second, 1e-6, "AdamW class param " + pc[i].first + " after 4 steps");
    // Same parameter values would give identical averages; the parameters differ by the last bits at most.
    expect_match(ag[i].second, ac[i].second, 1e-6, "EMA class average " + pc[i].first + " after 4 updates");
  }
}
