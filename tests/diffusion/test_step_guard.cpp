// StepGuard (diffusion/step_guard.h): the training step's update decision made on the device must decide,
// and keep statistics, exactly as the host guard it replaced (kept below as the reference), and report each
// skipped step once, at the window's end.
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "diffusion/step_guard.h"
#include "framework/optim/device_step.h"
#include "tests/common/test_util.h"

using namespace iris;
using namespace iris::diffusion;

namespace {

// The host spike guard of diffusion/trainer.cpp before the decision moved to the device, verbatim.
struct HostGuard {
  double mean = 0, var = 0;
  int64_t count = 0, skipped = 0;
  bool is_spike(double norm, double z, int64_t warmup) const {
    return z > 0 && std::isfinite(norm) && count >= warmup && norm > mean + z * std::sqrt(var);
  }
  void observe(double norm) {
    constexpr double kDecay = 0.99;
    const double a = std::max(1.0 / static_cast<double>(count + 1), 1.0 - kDecay);
    const double d = norm - mean;
    mean += a * d;
    var = (1.0 - a) * (var + a * d * d);
    ++count;
  }
  bool update(double norm, double z, int64_t warmup) {  // true when the update is made
    if (std::isfinite(norm) && !is_spike(norm, z, warmup)) {
      observe(norm);
      return true;
    }
    ++skipped;
    return false;
  }
};

bool same_bits(double a, double b) {
  return std::memcmp(&a, &b, sizeof(double)) == 0;
}

// Norms that drift, jitter, spike now and then, and are sometimes non-finite; 150 of them, so the
// statistics pass from exact means (first 100) to moving averages.
std::vector<double> norm_sequence() {
  std::vector<double> norms;
  uint64_t state = 12345;
  for (int i = 0; i < 150; ++i) {
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    const double u = static_cast<double>(state >> 11) / 9007199254740992.0;  // [0, 1)
    double n = 1.0 + 0.002 * i + 0.3 * u;
    if (i % 17 == 9) n *= 6.0;  // a spike
    if (i == 40) n = std::numeric_limits<double>::infinity();
    if (i == 77) n = std::nan("");
    norms.push_back(n);
  }
  return norms;
}

}  // namespace

TEST_CASE("StepGuard decides and keeps statistics bit for bit as the host guard did") {
  for (const double z : {0.0, 0.2, 2.5}) {
    for (const int64_t warmup : {int64_t{0}, int64_t{5}}) {
      CAPTURE(z);
      CAPTURE(warmup);
      HostGuard host;
      StepGuard guard(z, warmup, Device::cpu());
      int64_t host_skipped_in_window = 0, window_first = 0, skips_reported = 0;
      double host_norm_sum = 0;
      const std::vector<double> norms = norm_sequence();
      for (size_t i = 0; i < norms.size(); ++i) {
        const bool host_applied = host.update(norms[i], z, warmup);
        const Tensor apply = guard.decide(static_cast<int64_t>(i), Tensor::full({1}, norms[i], DType::f64));
        REQUIRE(apply.item() == (host_applied ? 1.0 : 0.0));
        host_skipped_in_window += host_applied ? 0 : 1;
        host_norm_sum += std::isfinite(norms[i]) ? norms[i] : 0.0;
        if (i % 10 == 9) {  // a logging window of 10 steps
          const StepGuard::Window w = guard.close_window();
          CHECK(w.skipped == host_skipped_in_window);
          CHECK(same_bits(w.norm_sum, host_norm_sum));
          REQUIRE(w.warnings.size() == static_cast<size_t>(w.skipped));
          for (const std::string& warning : w.warnings) {
            const int64_t step = std::stoll(warning.substr(5));  // "step N: ..."
            CHECK(step >= window_first);
            CHECK(step <= static_cast<int64_t>(i));
          }
          skips_reported += w.skipped;
          host_skipped_in_window = 0;
          host_norm_sum = 0;
          window_first = static_cast<int64_t>(i) + 1;
        }
        const StepGuard::Stats s = guard.stats();
        REQUIRE(same_bits(s.mean, host.mean));
        REQUIRE(same_bits(s.var, host.var));
        REQUIRE(s.count == host.count);
        REQUIRE(s.skipped == host.skipped);
      }
      CHECK(skips_reported == host.skipped);
      CHECK(host.skipped >= 2);                // the non-finite norms at least
      if (z == 0.2) CHECK(host.skipped > 10);  // a low threshold fires on the jitter too
    }
  }
}

TEST_CASE("StepGuard says why a step was skipped and restores its statistics") {
  StepGuard guard(3.0, 2, Device::cpu());
  for (int64_t step = 0; step < 4; ++step)
    (void)guard.decide(step, Tensor::full({1}, 1.0 + 0.01 * step, DType::f64));
  (void)guard.decide(4, Tensor::full({1}, 50.0, DType::f64));
  (void)guard.decide(5, Tensor::full({1}, std::nan(""), DType::f64));
  const StepGuard::Window w = guard.close_window();
  REQUIRE(w.warnings.size() == 2);
  CHECK(w.warnings[0].rfind("step 4: gradient norm 50 is ", 0) == 0);
  CHECK(w.warnings[0].find("standard deviations above its running mean 1.01") != std::string::npos);
  CHECK(w.warnings[1] == "step 5: non-finite gradient norm, update skipped");
  CHECK(guard.close_window().warnings.empty());  // said once

  const StepGuard::Stats s = guard.stats();
  CHECK(s.count == 4);
  CHECK(s.skipped == 2);
  StepGuard restored(3.0, 2, Device::cpu());
  restored.set_stats(s);
  const StepGuard::Stats r = restored.stats();
  CHECK(
      (same_bits(r.mean, s.mean) && same_bits(r.var, s.var) && r.count == s.count && r.skipped == s.skipped));
  // Restored, it decides as the original does.
  for (const double n : {1.02, 1.5, 9.0})
    CHECK(restored.decide(6, Tensor::full({1}, n, DType::f64)).item() ==
          guard.decide(6, Tensor::full({1}, n, DType::f64)).item());
}

// The training step as the trainer made it before (host norm, host guard, unconditional updates) and as it
// makes it now (device norm and clipping, StepGuard, updates under the apply flag), side by side on the same
// model and data, with clipping, a low spike threshold and an injected NaN gradient: every weight, moment,
// step count and average must end with the same bits.
TEST_CASE("a training loop with device-side decisions ends with the host loop's bits") {
  struct Run {
    std::shared_ptr<nn::Sequential> net = std::make_shared<nn::Sequential>();
    std::unique_ptr<optim::AdamW> opt;
    std::unique_ptr<optim::EMA> ema;
    Run() {
      Generator gen(21);
      net->push_back(std::make_shared<nn::Linear>(3, 16, gen));
      net->push_back(std::make_shared<nn::Tanh>());
      net->push_back(std::make_shared<nn::Linear>(16, 2, gen));
      opt = std::make_unique<optim::AdamW>(net->named_parameters(), 3e-2, std::make_pair(0.9, 0.99), 1e-8,
                                           0.01);
      ema = std::make_unique<optim::EMA>(*net, 0.9);
    }
    void backward(const Tensor& x, const Tensor& y, bool nan) {
      net->zero_grad();
      mean(square(sub((*net)(x), y))).backward();
      if (nan) net->parameters().front().grad().fill_(std::nan(""));
    }
  };
  const double z = 0.3, clip = 0.5;
  const int64_t warmup = 2;
  Run host, dev;
  HostGuard host_guard;
  StepGuard guard(z, warmup, Device::cpu());
  for (int64_t step = 0; step < 16; ++step) {
    const Tensor x = test::randn({8, 3}, 100 + static_cast<uint64_t>(step), DType::f32);
    const Tensor y =
        test::randn({8, 2}, 200 + static_cast<uint64_t>(step), DType::f32, 0.1 * (step % 5 == 4 ? 40 : 1));
    host.backward(x, y, step == 7);
    dev.backward(x, y, step == 7);
    const double norm = optim::clip_grad_norm(host.net->parameters(), clip);
    if (host_guard.update(norm, z, warmup)) {
      host.opt->step();
      host.ema->update();
    }
    const Tensor apply = guard.decide(step, optim::clip_grad_norm_tensor(dev.net->parameters(), clip));
    optim::step_if(*dev.opt, apply);
    optim::update_if(*dev.ema, apply);
  }
  CHECK(host_guard.skipped >= 2);  // the NaN step and at least one spike: the flag path was exercised
  CHECK(host_guard.count >= 4);    // ... and updates were made too
  const auto same = [](const Tensor& a, const Tensor& b) {
    const Tensor ca = a.contiguous(), cb = b.contiguous();
    return ca.dtype() == cb.dtype() && ca.shape() == cb.shape() &&
           std::memcmp(ca.data_ptr(), cb.data_ptr(), ca.nbytes()) == 0;
  };
  const auto hp = host.net->named_parameters(), dp = dev.net->named_parameters();
  for (size_t i = 0; i < hp.size(); ++i) CHECK_MESSAGE(same(hp[i].second, dp[i].second), hp[i].first);
  const optim::State hs = host.opt->state(), ds = dev.opt->state();
  CHECK(hs.ints == ds.ints);
  for (const auto& [name, t] : hs.tensors) CHECK_MESSAGE(same(t, ds.tensors.at(name)), name);
  const auto he = host.ema->averaged(), de = dev.ema->averaged();
  for (size_t i = 0; i < he.size(); ++i) CHECK(same(he[i].second, de[i].second));
  CHECK(host.ema->num_updates() == dev.ema->num_updates());
  const StepGuard::Stats s = guard.stats();
  CHECK((same_bits(s.mean, host_guard.mean) && same_bits(s.var, host_guard.var) &&
         s.count == host_guard.count && s.skipped == host_guard.skipped));
}
