// embedding and gather_last: loop references, gradchecks (repeated indices), i32 / i64 indices of any
// shape, strided inputs, deterministic backward at any thread count, and bad indices.
#include "tests/common/test_util.h"

using namespace iris;
using namespace iris::test;

TEST_CASE("embedding matches a loop reference for i32 and i64 indices of any shape") {
  const Tensor w = randn({7, 5}, 1);
  const auto wv = w.to_vector<double>();
  const std::vector<int64_t> idx = {3, 0, 6, 3, 3, 1};
  for (DType it : {DType::i32, DType::i64}) {
    CAPTURE(dtype_name(it));
    for (const Shape& shape : {Shape{6}, Shape{2, 3}, Shape{3, 1, 2}}) {
      const Tensor indices = Tensor::from_vector(idx, shape, it, Device::cpu());
      std::vector<double> ref;
      for (int64_t i : idx)
        for (int64_t d = 0; d < 5; ++d) ref.push_back(wv[i * 5 + d]);
      Shape out_shape = shape;
      out_shape.push_back(5);
      check_close(embedding(w, indices), Tensor::from_vector(ref, out_shape), 0, 0);
      check_close(embedding(noncontiguous(w), noncontiguous(indices)), Tensor::from_vector(ref, out_shape), 0,
                  0);
    }
  }
  // A 0-d index gives one row.
  const Tensor one = Tensor::full({}, 4, DType::i64);
  check_close(embedding(w, one), w.select(0, 4), 0, 0);
  // Lookups copy exactly in every dtype.
  for (DType dt : {DType::f32, DType::bf16}) {
    const Tensor wd = w.to(dt);
    const Tensor indices = Tensor::from_vector(idx, {6}, DType::i64, Device::cpu());
    CHECK(embedding(wd, indices).dtype() == dt);
    CHECK(max_abs_diff(embedding(wd, indices).to(DType::f64), embedding(wd.to(DType::f64), indices)) == 0.0);
  }
}

TEST_CASE("embedding gradcheck with repeated and unused rows") {
  for (bool strided : {false, true}) {
    CAPTURE(strided);
    Tensor w = randn({6, 3}, 2);
    if (strided) w = noncontiguous(w);
    w.set_requires_grad();
    // Row 2 three times, rows 1 and 4 never.
    const Tensor indices =
        Tensor::from_vector(std::vector<int32_t>{2, 0, 2, 5, 3, 2, 0}, {7}, DType::i32, Device::cpu());
    gradcheck([&](const std::vector<Tensor>& in) { return embedding(in[0], indices); }, {w});
    gradcheck([&](const std::vector<Tensor>& in) { return embedding(in[0], indices.view({7, 1})); }, {w});
  }
  // The gradient is the loop scatter-add of the output gradient.
  Tensor w = randn({4, 2}, 3).set_requires_grad();
  const Tensor indices = Tensor::from_vector(std::vector<int64_t>{1, 3, 1, 1}, {2, 2});
  const Tensor g = randn({2, 2, 2}, 4);
  embedding(w, indices).backward(g);
  const auto gv = g.to_vector<double>();
  std::vector<double> ref(8, 0.0);
  const int64_t iv[4] = {1, 3, 1, 1};
  for (int i = 0; i < 4; ++i)
    for (int d = 0; d < 2; ++d) ref[iv[i] * 2 + d] += gv[i * 2 + d];
  check_close(w.grad(), Tensor::from_vector(ref, {4, 2}), 1e-15, 1e-15);
}

TEST_CASE("embedding backward is identical with 1 and 2 threads") {
  // Each of 500 rows hit ~10 times, in f32, where a thread-dependent summation order would show; 500 rows of
  // 24 are enough to split the backward between two threads.
  std::vector<int64_t> idx(5000);
  for (size_t i = 0; i < idx.size(); ++i) idx[i] = static_cast<int64_t>((i * 7919) % 500);
  const Tensor indices = Tensor::from_vector(idx, {50, 100});
  const Tensor g = randn({50, 100, 24}, 5, DType::f32);
  auto run = [&] {
    Tensor w = randn({500, 24}, 6, DType::f32).set_requires_grad();
    embedding(w, indices).backward(g);
    return w.grad().to_vector<float>();
  };
  ThreadCountGuard restore_threads;  // puts the thread count back, also when a check fails
  set_num_threads(1);
  const auto a = run();
  set_num_threads(2);
  const auto b = run();
  CHECK(a == b);
}

TEST_CASE("embedding and gather_last reject bad indices naming the index and the range") {
  const Tensor w = randn({10, 4}, 7);
  check_throws_with(
      [&] {
        (void)embedding(w, Tensor::from_vector(std::vector<int64_t>{1, 12, 3}, {3}));
      },
      {"embedding", "index 12", "position 1", "V (rows of the weight) = 10"});
  check_throws_with(
      [&] {
        (void)embedding(w, Tensor::from_vector(std::vector<int32_t>{-1}, {1}, DType::i32, Device::cpu()));
      },
      {"embedding", "index -1", "10"});
  check_throws_with([&] { (void)embedding(w, Tensor::zeros({3}, DType::f32)); },
                    {"embedding", "i32 or i64", "f32"});
  check_throws_with([&] { (void)embedding(randn({10}, 1), Tensor::zeros({3}, DType::i64)); },
                    {"embedding", "[V, D]"});
  check_throws_with(
      [&] {
        (void)gather_last(randn({3, 4}, 1), Tensor::from_vector(std::vector<int64_t>{0, 4, 1}, {3}));
      },
      {"gather_last", "index 4", "= 4"});
  check_throws_with(
      [&] {
        (void)gather_last(randn({3, 4}, 1), Tensor::zeros({4}, DType::i64));
      },
      {"gather_last", "[3]", "[3, 4]"});
}

TEST_CASE("gather_last picks one element per row: reference and gradcheck") {
  for (bool strided : {false, true}) {
    CAPTURE(strided);
    Tensor x = randn({2, 3, 5}, 8);
    if (strided) x = noncontiguous(x);
    const Tensor index =
        Tensor::from_vector(std::vector<int32_t>{4, 0, 2, 2, 1, 4}, {2, 3}, DType::i32, Device::cpu());
    const auto xv = x.to_vector<double>();
    const auto iv = index.to_vector<int64_t>();
    std::vector<double> ref;
    for (size_t r = 0; r < 6; ++r) ref.push_back(xv[r * 5 + iv[r]]);
    check_close(gather_last(x, index), Tensor::from_vector(ref, {2, 3}), 0, 0);
    x.set_requires_grad();
    gradcheck([&](const std::vector<Tensor>& in) { return gather_last(in[0], index); }, {x});
  }
}
