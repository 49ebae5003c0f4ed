// Tensor basics: factories, views sharing storage, copies, dtype conversion, printing and misuse errors.
#include <cmath>

#include "tests/common/test_util.h"

using namespace iris;
using iris::test::check_throws_with;

TEST_CASE("factories and metadata") {
  Tensor t = Tensor::zeros({2, 3, 4});
  CHECK(t.dim() == 3);
  CHECK(t.numel() == 24);
  CHECK(t.strides() == Shape{12, 4, 1});
  CHECK(t.is_contiguous());
  CHECK(t.dtype() == DType::f32);
  CHECK(t.device() == Device::cpu());
  CHECK(Tensor::full({2}, 3.5).to_vector<double>() == std::vector<double>{3.5, 3.5});
  CHECK(Tensor::arange(4, DType::i64).to_vector<int64_t>() == std::vector<int64_t>{0, 1, 2, 3});
  CHECK(Tensor::scalar(2.0).item() == 2.0);
  CHECK(t.size(-1) == 4);
}

TEST_CASE("views share storage and contiguous() copies") {
  Tensor a = Tensor::arange(24, DType::f64).reshape({2, 3, 4});
  Tensor p = a.permute({2, 0, 1});
  CHECK(p.shape() == Shape{4, 2, 3});
  CHECK(!p.is_contiguous());
  CHECK(p.storage() == a.storage());
  Tensor s = a.slice(2, 1, 4, 2);  // columns 1 and 3
  CHECK(s.to_vector<double>() == std::vector<double>{1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23});
  Tensor sel = a.select(1, -1);
  CHECK(sel.to_vector<double>() == std::vector<double>{8, 9, 10, 11, 20, 21, 22, 23});
  Tensor e = Tensor::arange(3, DType::f64).reshape({3, 1}).expand({3, 2});
  CHECK(e.to_vector<double>() == std::vector<double>{0, 0, 1, 1, 2, 2});
  CHECK(e.strides()[1] == 0);
  // Writing through a view changes the base.
  a.slice(0, 0, 1).fill_(-1);
  CHECK(a.to_vector<double>()[0] == -1);
  CHECK(a.to_vector<double>()[12] == 12);
  // A transposed tensor cannot be viewed flat; reshape copies.
  Tensor tr = a.transpose(0, 1);
  check_throws_with([&] { (void)tr.view({-1}); }, {"view", "reshape"});
  Tensor flat = tr.reshape({-1});
  CHECK(flat.is_contiguous());
  CHECK(flat.storage() != a.storage());
  CHECK(flat.to_vector<double>()[4] == 12);  // tr[0, 1, 0] = a[1, 0, 0]
  CHECK(a.unsqueeze(0).shape() == Shape{1, 2, 3, 4});
  CHECK(a.unsqueeze(0).squeeze(0).shape() == Shape{2, 3, 4});
  CHECK(a.flatten(1).shape() == Shape{2, 12});
}

TEST_CASE("dtype conversions round bf16 to nearest even") {
  // 1 + 2^-8 is halfway between bf16 neighbours 1 and 1 + 2^-7: ties go to the even one (1).
  Tensor x = Tensor::from_vector(std::vector<float>{1.0f + 1.0f / 256, 1.0f + 3.0f / 256, -2.5f, 65504.0f}, {4});
  const auto y = x.to(DType::bf16).to(DType::f32).to_vector<float>();
  CHECK(y[0] == 1.0f);
  CHECK(y[1] == 1.0f + 4.0f / 256);
  CHECK(y[2] == -2.5f);
  CHECK(y[3] == 65536.0f);
  CHECK(std::isnan(bf16::from_float(NAN).to_float()));
  CHECK(std::isinf(bf16::from_float(INFINITY).to_float()));
  Tensor i = Tensor::from_vector(std::vector<double>{1.7, -2.2}, {2}).to(DType::i32);
  CHECK(i.to_vector<int32_t>() == std::vector<int32_t>{1, -2});
}

TEST_CASE("copy_ broadcasts and converts") {
  Tensor dst = Tensor::zeros({2, 3}, DType::f64);
  dst.copy_(Tensor::from_vector(std::vector<float>{1, 2, 3}, {3}));
  CHECK(dst.to_vector<double>() == std::vector<double>{1, 2, 3, 1, 2, 3});
  const uint64_t v = dst.storage()->version();
  dst.fill_(7);
  CHECK(dst.storage()->version() == v + 1);
  check_throws_with([&] { dst.copy_(Tensor::zeros({4})); }, {"copy_", "[4]", "[2, 3]"});
}

TEST_CASE("printing") {
  Tensor t = Tensor::from_vector(std::vector<float>{1, 2, 3, 4}, {2, 2});
  const std::string s = t.str();
  CHECK(s.find("f32[2, 2] cpu") != std::string::npos);
  CHECK(s.find("[[1, 2],\n[3, 4]]") != std::string::npos);
  Tensor big = Tensor::arange(100);
  CHECK(big.str().find("...") != std::string::npos);
}

TEST_CASE("misuse raises iris::Error naming the op and shapes") {
  Tensor a = Tensor::zeros({2, 3}), b = Tensor::zeros({4, 3});
  check_throws_with([&] { (void)add(a, b); }, {"add", "[2, 3]", "[4, 3]"});
  check_throws_with([&] { (void)a.permute({0}); }, {"permute"});
  check_throws_with([&] { (void)a.reshape({5, -1}); }, {"reshape", "[2, 3]"});
  check_throws_with([&] { (void)sum(a, {2}); }, {"axis 2", "out of range"});
  check_throws_with([&] { (void)Tensor::zeros({2}, DType::i32).set_requires_grad(); }, {"floating"});
  check_throws_with([&] { (void)a.item(); }, {"item", "one-element"});
  check_throws_with([&] { (void)Tensor().shape(); }, {"undefined"});
  check_throws_with([&] { (void)exp(Tensor::zeros({2}, DType::i64)); }, {"exp", "floating"});
  check_throws_with([&] { (void)Device::parse("gpu7"); }, {"unknown device", "gpu7"});
  check_throws_with([&] { (void)Tensor::zeros({2}, DType::f32, Device::cuda(0)).item(); }, {"cuda"});
}
