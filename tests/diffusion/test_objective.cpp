// The diffusion training loss: ε and v targets, L1 and L2, min-SNR-γ weights, against plain loops and a
// hand-computed example; gradients by finite differences.
#include <cmath>

#include "diffusion/objective.h"
#include "tests/common/test_util.h"

using namespace iris;
using namespace iris::test;
using namespace iris::diffusion;

namespace {
// Plain-loop reference of the loss for pred, x0, eps [N, D] (flattened) and levels gamma [N].
double reference_loss(const Tensor& pred, const Tensor& x0, const Tensor& eps,
                      const std::vector<double>& gamma, const ObjectiveConfig& c) {
  const auto p = pred.to_vector<double>(), x = x0.to_vector<double>(), e = eps.to_vector<double>();
  const size_t N = gamma.size(), D = p.size() / N;
  double total = 0;
  for (size_t n = 0; n < N; ++n) {
    const double g = gamma[n], a = std::sqrt(g), s = std::sqrt(1 - g);
    double acc = 0;
    for (size_t j = 0; j < D; ++j) {
      const size_t i = n * D + j;
      const double target = c.target == Parameterization::eps ? e[i] : a * e[i] - s * x[i];
      const double d = p[i] - target;
      acc += c.norm == LossNorm::l1 ? std::abs(d) : d * d;
    }
    double w = 1;
    if (c.min_snr_gamma > 0) {
      const double snr = g / (1 - g), m = std::min(snr, c.min_snr_gamma);
      w = c.target == Parameterization::eps ? m / snr : m / (snr + 1);
    }
    total += w * acc / static_cast<double>(D);
  }
  return total / static_cast<double>(N);
}
}  // namespace

TEST_CASE("diffusion loss equals plain-loop values for every target, norm and weighting") {
  const Shape shape{4, 3, 2, 3};
  const Tensor x0 = randn(shape, 1), eps = randn(shape, 2), pred = randn(shape, 3);
  // SNRs 0.11, 1.5, 19 and 999: the min-SNR clip (γ_w = 5) acts on the last two only.
  const std::vector<double> gv = {0.1, 0.6, 0.95, 0.999};
  const Tensor gamma = Tensor::from_vector(gv, {4});
  for (Parameterization target : {Parameterization::eps, Parameterization::v})
    for (LossNorm norm : {LossNorm::l1, LossNorm::l2})
      for (double gw : {0.0, 5.0, 0.5}) {
        CAPTURE(parameterization_name(target));
        CAPTURE(static_cast<int>(norm));
        CAPTURE(gw);
        const ObjectiveConfig c{target, norm, gw};
        const Tensor loss = diffusion_loss(pred, x0, eps, gamma, c);
        CHECK(loss.dim() == 0);
        CHECK(loss.item() == doctest::Approx(reference_loss(pred, x0, eps, gv, c)).epsilon(1e-13));
        // Non-contiguous inputs give the same value.
        CHECK(diffusion_loss(noncontiguous(pred), noncontiguous(x0), noncontiguous(eps), gamma, c).item() ==
              doctest::Approx(loss.item()).epsilon(1e-13));
      }
  // The weights themselves.
  const auto we = min_snr_weights(gamma, Parameterization::eps, 5.0).to_vector<double>();
  const auto wv = min_snr_weights(gamma, Parameterization::v, 5.0).to_vector<double>();
  for (size_t n = 0; n < 4; ++n) {
    const double snr = gv[n] / (1 - gv[n]);
    CHECK(we[n] == doctest::Approx(std::min(snr, 5.0) / snr).epsilon(1e-13));
    CHECK(wv[n] == doctest::Approx(std::min(snr, 5.0) / (snr + 1)).epsilon(1e-13));
  }
  CHECK(we[0] == doctest::Approx(1.0).epsilon(1e-15));  // SNR below γ_w: ε weight 1
  // γ = 1 (infinite SNR) gives weight 0, not NaN.
  const Tensor one = Tensor::from_vector(std::vector<double>{1.0}, {1});
  CHECK(min_snr_weights(one, Parameterization::eps, 5.0).item() == 0.0);
  CHECK(min_snr_weights(one, Parameterization::v, 5.0).item() == 0.0);
}

TEST_CASE("diffusion loss on a hand-computed example") {
  // Two samples of two elements, γ = 0.5 (SNR = 1) for both, x0 = 0 so that v = √0.5·ε.
  const Tensor pred = Tensor::from_vector(std::vector<double>{1, 2, 0, 0}, {2, 2});
  const Tensor eps = Tensor::from_vector(std::vector<double>{0, 0, 1, -1}, {2, 2});
  const Tensor x0 = Tensor::zeros({2, 2}, DType::f64);
  const Tensor gamma = Tensor::from_vector(std::vector<double>{0.5, 0.5}, {2});
  auto loss = [&](ObjectiveConfig c) { return diffusion_loss(pred, x0, eps, gamma, c).item(); };
  // L1, ε: sample 0 mean(|1|, |2|) = 1.5, sample 1 mean(|−1|, |1|) = 1, loss 1.25.
  CHECK(loss({Parameterization::eps, LossNorm::l1, 0}) == doctest::Approx(1.25).epsilon(1e-15));
  // L2, ε: (1 + 4)/2 = 2.5 and (1 + 1)/2 = 1, loss 1.75.
  CHECK(loss({Parameterization::eps, LossNorm::l2, 0}) == doctest::Approx(1.75).epsilon(1e-15));
  // min-SNR with γ_w = 0.5 < SNR = 1: ε weight 0.5/1, so 0.625; v weight 0.5/2 = 0.25.
  CHECK(loss({Parameterization::eps, LossNorm::l1, 0.5}) == doctest::Approx(0.625).epsilon(1e-15));
  // L1, v: targets ±0.7071 on sample 1 (predicted 0) and 0 on sample 0: (1.5 + 0.7071)/2 = 1.1036.
  const double h = std::sqrt(0.5);
  CHECK(loss({Parameterization::v, LossNorm::l1, 0}) == doctest::Approx((1.5 + h) / 2).epsilon(1e-15));
  CHECK(loss({Parameterization::v, LossNorm::l1, 0.5}) ==
        doctest::Approx(0.25 * (1.5 + h) / 2).epsilon(1e-15));
}

TEST_CASE("diffusion loss gradients by finite differences") {
  const Shape shape{3, 2, 3, 2};
  const Tensor x0 = randn(shape, 4), eps = randn(shape, 5);
  const Tensor gamma = Tensor::from_vector(std::vector<double>{0.2, 0.7, 0.97}, {3});
  for (LossNorm norm : {LossNorm::l1, LossNorm::l2})
    for (Parameterization target : {Parameterization::eps, Parameterization::v}) {
      const Tensor pred = randn(shape, 6).set_requires_grad();
      const ObjectiveConfig c{target, norm, 5.0};
      gradcheck([&](const std::vector<Tensor>& in) { return diffusion_loss(in[0], x0, eps, gamma, c); },
                {pred});
    }
  // No gradient reaches the levels, the clean data or the noise (the weights and target are constants).
  const Tensor g = gamma.clone().set_requires_grad();
  const Tensor pred = randn(shape, 7).set_requires_grad();
  diffusion_loss(pred, x0, eps, g, {Parameterization::v, LossNorm::l2, 5.0}).backward();
  CHECK(pred.grad().defined());
  CHECK_FALSE(g.grad().defined());
}

TEST_CASE("diffusion loss misuse names the function and the shapes") {
  const Tensor a = randn({2, 3}, 1), b = randn({2, 4}, 2);
  const Tensor gamma = Tensor::from_vector(std::vector<double>{0.5, 0.5}, {2});
  check_throws_with([&] { (void)diffusion_loss(a, b, a, gamma, {}); },
                    {"diffusion_loss", "[2, 3]", "[2, 4]"});
  check_throws_with([&] { (void)diffusion_loss(a, a, a, Tensor::ones({3}, DType::f64), {}); },
                    {"diffusion_loss", "[3]"});
  check_throws_with(
      [&] {
        (void)diffusion_loss(a, a, a, gamma, {Parameterization::eps, LossNorm::l1, -1});
      },
      {"diffusion_loss", "min_snr_gamma", "-1"});
  check_throws_with([&] { (void)min_snr_weights(gamma, Parameterization::eps, 0); },
                    {"min_snr_weights", "gamma_w"});
}
