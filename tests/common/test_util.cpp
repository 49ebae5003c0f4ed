#include "tests/common/test_util.h"

#include <algorithm>
#include <cmath>
#include <random>

namespace iris::test {

Tensor randn(const Shape& shape, uint64_t seed, DType dtype, double scale) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> d(0.0, scale);
  std::vector<double> v(static_cast<size_t>(shape_numel(shape)));
  for (double& x : v) x = d(rng);
  return Tensor::from_vector(v, shape, dtype, Device::cpu());
}

Tensor uniform(const Shape& shape, uint64_t seed, double lo, double hi, DType dtype) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> d(lo, hi);
  std::vector<double> v(static_cast<size_t>(shape_numel(shape)));
  for (double& x : v) x = d(rng);
  return Tensor::from_vector(v, shape, dtype, Device::cpu());
}

Tensor noncontiguous(const Tensor& t) {
  // Lay the values out with the last axis doubled, then take every other element.
  if (t.dim() == 0) return t.clone();
  Shape big = t.shape();
  big.back() *= 2;
  Tensor buf = Tensor::zeros(big, t.dtype(), t.device());
  Tensor view = buf.slice(-1, 0, big.back(), 2);
  {
    NoGradGuard ng;
    view.copy_(t);
  }
  REQUIRE((!view.is_contiguous() || t.shape().back() <= 1));
  return view;
}

std::string describe(const Tensor& t) {
  return t.defined() ? t.summary() + " strides " + shape_str(t.strides()) : std::string("undefined");
}

namespace {
// The shared start of the comparisons: both defined with the same shape (else a failed CHECK and false).
bool comparable(const Tensor& got, const Tensor& ref, const std::string& what, const CompareSides& sides) {
  if (!got.defined() || !ref.defined() || got.shape() != ref.shape()) {
    FAIL_CHECK(what, ": ", sides.got, " ", describe(got), " vs ", sides.ref, " ", describe(ref));
    return false;
  }
  return true;
}
}  // namespace

void check_rel_l2(const Tensor& got, const Tensor& ref, double tol, const std::string& what,
                  const CompareSides& sides) {
  if (!comparable(got, ref, what, sides)) return;
  const std::vector<double> g = got.to_vector<double>(), r = ref.to_vector<double>();
  int64_t nonfinite_bad = 0, first_bad = -1, worst_i = -1;
  double num = 0, den = 0, worst = 0;
  for (size_t i = 0; i < g.size(); ++i) {
    if (!std::isfinite(g[i]) || !std::isfinite(r[i])) {
      const bool same = (std::isnan(g[i]) && std::isnan(r[i])) || g[i] == r[i];
      if (!same && nonfinite_bad++ == 0) first_bad = static_cast<int64_t>(i);
      continue;
    }
    const double d = g[i] - r[i];
    num += d * d;
    den += r[i] * r[i];
    if (std::abs(d) > worst) {
      worst = std::abs(d);
      worst_i = static_cast<int64_t>(i);
    }
  }
  const double rel = std::sqrt(num) / std::max(std::sqrt(den), 1e-30);
  const std::string both = sides.got + " " + describe(got) + " vs " + sides.ref + " " + describe(ref);
  CHECK_MESSAGE(nonfinite_bad == 0, what, ": ", nonfinite_bad,
                " elements NaN/inf on one side only (first at ", first_bad, ": ", sides.got, " ",
                (first_bad >= 0 ? g[first_bad] : 0.0), " vs ", sides.ref, " ",
                (first_bad >= 0 ? r[first_bad] : 0.0), "); ", both);
  CHECK_MESSAGE(rel <= tol, what, ": relative L2 error ", rel, " > ", tol, " (worst element ", worst_i, ": ",
                sides.got, " ", (worst_i >= 0 ? g[worst_i] : 0.0), " vs ", sides.ref, " ",
                (worst_i >= 0 ? r[worst_i] : 0.0), "); ", both);
}

void check_same_values(const Tensor& got, const Tensor& ref, const std::string& what,
                       const CompareSides& sides) {
  if (!comparable(got, ref, what, sides)) return;
  const std::vector<double> g = got.to_vector<double>(), r = ref.to_vector<double>();
  int64_t bad = 0, first = -1;
  for (size_t i = 0; i < g.size(); ++i) {
    const bool same = (std::isnan(g[i]) && std::isnan(r[i])) || g[i] == r[i];
    if (!same && bad++ == 0) first = static_cast<int64_t>(i);
  }
  CHECK_MESSAGE(bad == 0, what, ": ", bad, " of ", g.size(), " elements differ (first at ", first, ": ",
                sides.got, " ", (first >= 0 ? g[first] : 0.0), " vs ", sides.ref, " ",
                (first >= 0 ? r[first] : 0.0), "); ", sides.got, " ", describe(got), " vs ", sides.ref, " ",
                describe(ref));
}

double max_abs_diff(const Tensor& a, const Tensor& b) {
  REQUIRE(a.shape() == b.shape());
  const auto va = a.to_vector<double>(), vb = b.to_vector<double>();
  double m = 0;
  for (size_t i = 0; i < va.size(); ++i) m = std::max(m, std::abs(va[i] - vb[i]));
  return m;
}

double rel_l2(const Tensor& a, const Tensor& b) {
  REQUIRE(a.shape() == b.shape());
  const auto va = a.to_vector<double>(), vb = b.to_vector<double>();
  double num = 0, den = 0;
  for (size_t i = 0; i < va.size(); ++i) {
    if (std::isnan(va[i]) || std::isnan(vb[i])) return INFINITY;
    num += (va[i] - vb[i]) * (va[i] - vb[i]);
    den += vb[i] * vb[i];
  }
  return std::sqrt(num) / std::max(std::sqrt(den), 1e-30);
}

void check_close(const Tensor& a, const Tensor& b, double atol, double rtol) {
  REQUIRE_MESSAGE(a.shape() == b.shape(), shape_str(a.shape()), " vs ", shape_str(b.shape()));
  const auto va = a.to_vector<double>(), vb = b.to_vector<double>();
  size_t worst = 0;
  double worst_excess = -1;
  for (size_t i = 0; i < va.size(); ++i) {
    const double err = std::abs(va[i] - vb[i]);
    const double excess =
        std::isnan(va[i]) != std::isnan(vb[i]) ? INFINITY : err - (atol + rtol * std::abs(vb[i]));
    if (excess > worst_excess) {
      worst_excess = excess;
      worst = i;
    }
  }
  CHECK_MESSAGE(worst_excess <= 0, "element ", worst, ": ", (va.empty() ? 0 : va[worst]), " vs ",
                (vb.empty() ? 0 : vb[worst]), " (atol ", atol, ", rtol ", rtol, ")");
}

void gradcheck(const std::function<Tensor(const std::vector<Tensor>&)>& fn, std::vector<Tensor> inputs,
               double eps, double atol, double rtol) {
  for (Tensor& t : inputs) REQUIRE_MESSAGE(t.dtype() == DType::f64, "gradcheck needs f64 inputs");
  // Analytical: L = sum(fn(x) * w).
  Tensor probe = fn(inputs);
  const Tensor w = randn(probe.shape(), 12345, DType::f64);
  for (Tensor& t : inputs)
    if (t.requires_grad()) t.set_grad(Tensor());
  Tensor loss = sum(mul(fn(inputs), w));
  loss.backward();
  const auto wv = w.to_vector<double>();
  auto objective = [&]() {
    NoGradGuard ng;
    const auto out = fn(inputs).to_vector<double>();
    double s = 0;
    for (size_t i = 0; i < out.size(); ++i) s += out[i] * wv[i];
    return s;
  };
  for (size_t k = 0; k < inputs.size(); ++k) {
    Tensor& x = inputs[k];
    if (!x.requires_grad()) continue;
    REQUIRE_MESSAGE(x.grad().defined(), "input ", k, " got no gradient");
    const auto analytic = x.grad().to_vector<double>();
    // Perturb through a contiguous f64 buffer aliased by the input (inputs may be strided views).
    const Tensor flat = x.detach();
    std::vector<double> numeric(analytic.size());
    const Shape strides = flat.strides();
    double* base = flat.data<double>();
    for (int64_t i = 0; i < flat.numel(); ++i) {
      int64_t off = 0, r = i;
      for (int64_t d = flat.dim() - 1; d >= 0; --d) {
        off += (r % flat.shape()[d]) * strides[d];
        r /= flat.shape()[d];
      }
      const double orig = base[off];
      base[off] = orig + eps;
      const double fp = objective();
      base[off] = orig - eps;
      const double fm = objective();
      base[off] = orig;
      numeric[i] = (fp - fm) / (2 * eps);
    }
    for (size_t i = 0; i < numeric.size(); ++i) {
      const bool ok = std::abs(analytic[i] - numeric[i]) <= atol + rtol * std::abs(numeric[i]);
      if (!ok) {
        FAIL_CHECK("gradient of input ", k, " element ", i, ": analytic ", analytic[i], " numeric ",
                   numeric[i]);
        return;
      }
    }
  }
}

std::vector<Tensor> grads_of(const std::function<Tensor(const std::vector<Tensor>&)>& fn,
                             std::vector<Tensor> inputs, uint64_t seed) {
  for (Tensor& t : inputs) t = t.detach().clone().set_requires_grad();
  const Tensor y = fn(inputs);
  sum(mul(y, randn(y.shape(), seed, y.dtype()))).backward();
  std::vector<Tensor> g;
  for (const Tensor& t : inputs) g.push_back(t.grad());
  return g;
}

void check_throws_with(const std::function<void()>& fn, const std::vector<std::string>& parts) {
  try {
    fn();
  } catch (const Error& e) {
    const std::string msg = e.what();
    for (const auto& p : parts)
      CHECK_MESSAGE(msg.find(p) != std::string::npos, "message '", msg, "' lacks '", p, "'");
    return;
  }
  FAIL_CHECK("expected an iris::Error mentioning ", parts.empty() ? std::string() : parts[0]);
}

std::function<const char*(const char*)> fake_env(std::map<std::string, std::string> vars) {
  auto env = std::make_shared<std::map<std::string, std::string>>(std::move(vars));
  return [env](const char* key) -> const char* {
    auto it = env->find(key);
    return it == env->end() ? nullptr : it->second.c_str();
  };
}

}  // namespace iris::test
