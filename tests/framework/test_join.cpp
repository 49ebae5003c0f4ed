// cat / stack / split / chunk: values against plain index arithmetic, gradients, views, misuse.
#include "tests/common/test_util.h"

using namespace iris;
using namespace iris::test;

namespace {
// Element (i, j, k) of a [A, B, C] tensor's row-major values.
double at3(const std::vector<double>& v, const Shape& s, int64_t i, int64_t j, int64_t k) {
  return v[(i * s[1] + j) * s[2] + k];
}
}  // namespace

TEST_CASE("cat matches index arithmetic on every axis, with strided inputs") {
  for (int64_t axis : {0, 1, 2, -1}) {
    CAPTURE(axis);
    const int64_t ax = axis < 0 ? axis + 3 : axis;
    Shape sa{2, 3, 4}, sb{2, 3, 4}, sc{2, 3, 4};
    sa[ax] = 1;
    sb[ax] = 3;
    sc[ax] = 2;
    const Tensor a = randn(sa, 1), b = noncontiguous(randn(sb, 2)), c = randn(sc, 3);
    const Tensor y = cat({a, b, c}, axis);
    Shape sy = sa;
    sy[ax] = 6;
    REQUIRE(y.shape() == sy);
    const auto va = a.to_vector<double>(), vb = b.to_vector<double>(), vc = c.to_vector<double>();
    std::vector<double> ref;
    for (int64_t i = 0; i < sy[0]; ++i)
      for (int64_t j = 0; j < sy[1]; ++j)
        for (int64_t k = 0; k < sy[2]; ++k) {
          int64_t idx[3] = {i, j, k};
          const int64_t pos = idx[ax];
          if (pos < 1) {
            ref.push_back(at3(va, sa, idx[0], idx[1], idx[2]));
          } else if (pos < 4) {
            idx[ax] -= 1;
            ref.push_back(at3(vb, sb, idx[0], idx[1], idx[2]));
          } else {
            idx[ax] -= 4;
            ref.push_back(at3(vc, sc, idx[0], idx[1], idx[2]));
          }
        }
    check_close(y, Tensor::from_vector(ref, sy), 0, 0);
  }
}

TEST_CASE("cat gradcheck, including an input used twice and an input without grad") {
  Tensor a = randn({3, 2}, 4).set_requires_grad(), b = noncontiguous(randn({3, 5}, 5)).set_requires_grad();
  const Tensor c = randn({3, 1}, 6);
  gradcheck([&](const std::vector<Tensor>& in) { return cat({in[0], c, in[1], in[0]}, 1); }, {a, b});
  // An empty piece along the axis is allowed and gets an empty gradient.
  Tensor e = randn({3, 0}, 7).set_requires_grad();
  gradcheck([&](const std::vector<Tensor>& in) { return cat({in[0], in[1]}, -1) * 2.0; }, {a, e});
}

TEST_CASE("stack inserts a new axis and is differentiable") {
  Tensor a = randn({2, 3}, 8).set_requires_grad(), b = randn({2, 3}, 9).set_requires_grad();
  for (int64_t axis : {0, 1, 2, -1}) {
    CAPTURE(axis);
    const Tensor y = stack({a, b}, axis);
    const int64_t ax = axis < 0 ? axis + 3 : axis;
    Shape expect{2, 3};
    expect.insert(expect.begin() + ax, 2);
    REQUIRE(y.shape() == expect);
    check_close(y.select(ax, 0), a, 0, 0);
    check_close(y.select(ax, 1), b, 0, 0);
    gradcheck([axis](const std::vector<Tensor>& in) { return stack({in[0], in[1]}, axis); }, {a, b});
  }
}

TEST_CASE("split and chunk return views with the right sizes and gradients") {
  const Tensor x = randn({4, 7}, 10);
  const auto parts = split(x, {2, 0, 5}, 1);
  REQUIRE(parts.size() == 3);
  CHECK(parts[0].shape() == Shape{4, 2});
  CHECK(parts[1].shape() == Shape{4, 0});
  CHECK(parts[2].shape() == Shape{4, 5});
  check_close(parts[2], x.slice(1, 2, 7), 0, 0);
  // Views: they share the input's storage.
  CHECK(parts[2].storage() == x.storage());
  CHECK(parts[2].data_ptr() == static_cast<void*>(x.data<double>() + 2));

  const auto pieces = chunk(x, 3, -1);  // 7 into 3: 3, 3, 1
  REQUIRE(pieces.size() == 3);
  CHECK(pieces[0].shape() == Shape{4, 3});
  CHECK(pieces[2].shape() == Shape{4, 1});
  check_close(pieces[1], x.slice(1, 3, 6), 0, 0);
  CHECK(chunk(x, 4, 0).size() == 4);
  CHECK(chunk(randn({5}, 1), 4, 0).size() == 3);  // 2, 2, 1 (PyTorch's rule)
  CHECK(chunk(Tensor::zeros({0, 2}), 3, 0).size() == 3);

  Tensor xg = noncontiguous(randn({4, 7}, 11)).set_requires_grad();
  gradcheck(
      [](const std::vector<Tensor>& in) {
        const auto p = chunk(in[0], 3, 1);
        const auto q = split(in[0], {1, 3}, 0);
        const Tensor joined = cat({square(p[2]), p[0] * 3.0, p[0]}, 1);
        return cat({joined.flatten(), q[1].flatten()}, 0);
      },
      {xg});
}

TEST_CASE("join misuse raises errors naming the op and the input index") {
  const Tensor a = randn({2, 3}, 1);
  check_throws_with([&] { (void)cat({a, a, randn({3, 3}, 2)}, 1); }, {"cat", "input 2", "[3, 3]", "[2, 3]"});
  check_throws_with([&] { (void)cat({a, randn({2, 3, 1}, 2)}, 0); }, {"cat", "input 1", "[2, 3, 1]"});
  check_throws_with([&] { (void)cat({a, a.to(DType::f32)}, 0); }, {"cat", "input 1", "f32", "f64"});
  check_throws_with([&] { (void)cat({}, 0); }, {"cat", "at least one"});
  check_throws_with([&] { (void)cat({a, Tensor()}, 0); }, {"cat", "input 1", "undefined"});
  check_throws_with([&] { (void)cat({a}, 2); }, {"cat"});
  check_throws_with([&] { (void)stack({a, randn({3, 2}, 3)}, 0); }, {"stack", "input 1", "[3, 2]", "[2, 3]"});
  check_throws_with([&] { (void)split(a, {1, 1}, 1); }, {"split", "add up to 2", "[2, 3]"});
  check_throws_with([&] { (void)split(a, {4, -1}, 1); }, {"split", "negative"});
  check_throws_with([&] { (void)chunk(a, 0, 0); }, {"chunk", "positive"});
}
