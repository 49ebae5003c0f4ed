// Resampling against values worked by hand from the Keys kernel and the box filter, invariants (constants,
// linear ramps), antialiasing, thread independence, crops and flips.
#include <cmath>

#include "data/resize.h"
#include "tests/common/test_util.h"
#include "tests/data/data_test_util.h"

using namespace iris;
using namespace iris::data;
using namespace iris::test;

namespace {
// A 1-row, 1-channel f64 tensor [1, 1, W, 1] from values.
Tensor row_tensor(const std::vector<double>& v) {
  return Tensor::from_vector(v, {1, 1, static_cast<int64_t>(v.size()), 1}, DType::f64, Device::cpu());
}
}  // namespace

TEST_CASE("Keys cubic kernel values at quarter offsets") {
  // (a+2)|x|^3 - (a+3)|x|^2 + 1 and a|x|^3 - 5a|x|^2 + 8a|x| - 4a with a = -0.5, evaluated by hand.
  CHECK(keys_cubic(0.0) == 1.0);
  CHECK(keys_cubic(0.25) == 0.8671875);
  CHECK(keys_cubic(-0.75) == 0.2265625);
  CHECK(keys_cubic(1.0) == 0.0);
  CHECK(keys_cubic(1.25) == -0.0703125);
  CHECK(keys_cubic(-1.75) == -0.0234375);
  CHECK(keys_cubic(2.0) == 0.0);
  CHECK(keys_cubic(3.0) == 0.0);
}

TEST_CASE("bicubic 2x upsampling of a 1-D signal matches the hand computation") {
  // Output i of 8 sits at input position (i + 0.5) / 2 - 0.5 (pixel-centre units).
  // i = 3 -> 1.25: taps 0..3 at distances 1.25, 0.25, 0.75, 1.75 -> 10*-0.0703125 + 20*0.8671875
  //   + 40*0.2265625 + 80*-0.0234375 = 23.828125.
  // i = 0 -> -0.25: taps -2, -1 (clamped to 0), 0, 1 -> 10*(-0.0234375 + 0.2265625 + 0.8671875)
  //   + 20*-0.0703125 = 9.296875.
  const Tensor out = resize(row_tensor({10, 20, 40, 80}), 1, 8, Filter::bicubic);
  REQUIRE(out.shape() == Shape{1, 1, 8, 1});
  const auto v = out.to_vector<double>();
  CHECK(v[3] == doctest::Approx(23.828125).epsilon(1e-14));
  CHECK(v[0] == doctest::Approx(9.296875).epsilon(1e-14));
  // Mirror symmetry of the kernel: reversing the input reverses the output.
  const auto r = resize(row_tensor({80, 40, 20, 10}), 1, 8, Filter::bicubic).to_vector<double>();
  for (int i = 0; i < 8; ++i) CHECK(r[i] == doctest::Approx(v[7 - i]).epsilon(1e-14));
}

TEST_CASE("antialiased bicubic 2x downsampling stretches the kernel (hand-computed weights)") {
  // Output 1 of 4 from 8 inputs is centred at 3.0 (continuous). The kernel is stretched by 2: input j at
  // distance (j + 0.5 - 3) / 2; taps -1..6 with raw weights summing to 2, halved by normalisation. Taps -1
  // and 0 both land on pixel 0 (edge clamping): (-0.0234375 - 0.0703125) / 2 = -0.046875.
  const ResampleWeights w = resample_weights(8, 4, Filter::bicubic);
  REQUIRE(w.first[1] == 0);
  REQUIRE(w.taps[1] == 7);
  const std::vector<double> want = {-0.046875,  0.11328125,  0.43359375, 0.43359375,
                                    0.11328125, -0.03515625, -0.01171875};
  for (int k = 0; k < 7; ++k)
    CHECK(w.w[static_cast<size_t>(1 * w.max_taps + k)] == doctest::Approx(want[k]).epsilon(1e-15));
  // The same numbers as the response to a unit impulse at pixel 3.
  std::vector<double> delta(8, 0.0);
  delta[3] = 1.0;
  const auto out = resize(row_tensor(delta), 1, 4, Filter::bicubic).to_vector<double>();
  CHECK(out[1] == doctest::Approx(0.43359375).epsilon(1e-14));
  // Output 0 is centred at 1.0; pixel 3's centre 3.5 is at stretched distance 1.25: -0.0703125 / 2.
  CHECK(out[0] == doctest::Approx(-0.03515625).epsilon(1e-14));
}

TEST_CASE("area 2x downsampling is the mean of 2x2 blocks") {
  const Image im = pattern_image(6, 8, 3, 5);
  const Image out = resize(im, 3, 4, Filter::area);
  const Tensor f = resize(u8_to_float(stack_images({im}), DType::f64), 3, 4, Filter::area);
  const auto fv = f.to_vector<double>();
  for (int y = 0; y < 3; ++y)
    for (int x = 0; x < 4; ++x)
      for (int c = 0; c < 3; ++c) {
        const int sum = im.at(2 * y, 2 * x, c) + im.at(2 * y, 2 * x + 1, c) + im.at(2 * y + 1, 2 * x, c) +
                        im.at(2 * y + 1, 2 * x + 1, c);
        CHECK(out.at(y, x, c) == static_cast<int>(std::floor(sum / 4.0 + 0.5)));
        const double mean = (sum / 4.0) / 127.5 - 1.0;
        CHECK(fv[static_cast<size_t>((y * 4 + x) * 3 + c)] == doctest::Approx(mean).epsilon(1e-14));
      }
}

TEST_CASE("area 3x downsampling of floats is the block mean and partial coverage is weighted") {
  const Tensor x = uniform({1, 9, 6, 2}, 3, -1, 1);
  const auto v = x.to_vector<double>();
  const auto out = resize(x, 3, 2, Filter::area).to_vector<double>();
  for (int y = 0; y < 3; ++y)
    for (int xx = 0; xx < 2; ++xx)
      for (int c = 0; c < 2; ++c) {
        double s = 0;
        for (int dy = 0; dy < 3; ++dy)
          for (int dx = 0; dx < 3; ++dx)
            s += v[static_cast<size_t>(((3 * y + dy) * 6 + 3 * xx + dx) * 2 + c)];
        CHECK(out[static_cast<size_t>((y * 2 + xx) * 2 + c)] == doctest::Approx(s / 9).epsilon(1e-12));
      }
  // 3 -> 2: output 0 covers [0, 1.5): pixel 0 fully, pixel 1 half -> (a + b/2) / 1.5.
  const auto w = resize(row_tensor({3, 6, 9}), 1, 2, Filter::area).to_vector<double>();
  CHECK(w[0] == doctest::Approx((3 + 6 * 0.5) / 1.5).epsilon(1e-14));
  CHECK(w[1] == doctest::Approx((6 * 0.5 + 9) / 1.5).epsilon(1e-14));
}

TEST_CASE("bicubic keeps linear ramps linear away from the borders, up and down") {
  const int w = 12;
  std::vector<double> ramp(w);
  for (int j = 0; j < w; ++j) ramp[j] = 3.0 + 2.0 * j;
  // Up 2x: output i sits at p = (i + 0.5) / 2 - 0.5; interior when taps p-2..p+2 stay inside.
  const auto up = resize(row_tensor(ramp), 1, 2 * w, Filter::bicubic).to_vector<double>();
  int checked = 0;
  for (int i = 0; i < 2 * w; ++i) {
    const double p = (i + 0.5) / 2 - 0.5;
    if (p - 2 < 0 || p + 2 > w - 1) continue;
    CHECK(up[i] == doctest::Approx(3.0 + 2.0 * p).epsilon(1e-13));
    ++checked;
  }
  CHECK(checked >= 14);
  // Down 2x (antialiased, support 4): output i sits at p = 2i + 0.5.
  const auto down = resize(row_tensor(ramp), 1, w / 2, Filter::bicubic).to_vector<double>();
  for (int i = 0; i < w / 2; ++i) {
    const double p = 2 * i + 0.5;
    if (p - 4 < 0 || p + 4 > w - 1) continue;
    CHECK(down[i] == doctest::Approx(3.0 + 2.0 * p).epsilon(1e-13));
    ++checked;
  }
  CHECK(checked >= 15);
  // 2-D: a plane a + b y + c x stays a plane in the interior.
  std::vector<double> plane;
  for (int y = 0; y < 10; ++y)
    for (int x = 0; x < 10; ++x) plane.push_back(1.0 + 0.5 * y - 0.25 * x);
  const auto p2 =
      resize(Tensor::from_vector(plane, {10, 10, 1}, DType::f64, Device::cpu()), 15, 15, Filter::bicubic)
          .to_vector<double>();
  const double s = 10.0 / 15.0;
  const int mid = 7;
  const double py = (mid + 0.5) * s - 0.5, px = py;
  CHECK(p2[mid * 15 + mid] == doctest::Approx(1.0 + 0.5 * py - 0.25 * px).epsilon(1e-13));
}

TEST_CASE("both antialiased filters keep a constant image constant") {
  for (Filter f : {Filter::bicubic, Filter::area}) {
    for (auto [oh, ow] : std::vector<std::pair<int, int>>{{7, 7}, {13, 5}, {40, 33}, {1, 1}, {3, 50}}) {
      CAPTURE(filter_name(f));
      CAPTURE(oh);
      CAPTURE(ow);
      const Image out = resize(Image(17, 11, 3, 200), oh, ow, f);
      CHECK(out.height == oh);
      CHECK(out.width == ow);
      CHECK(std::all_of(out.pixels.begin(), out.pixels.end(), [](uint8_t v) { return v == 200; }));
      const auto t = resize(Tensor::full({2, 17, 11, 1}, 0.3, DType::f32), oh, ow, f).to_vector<float>();
      for (float v : t) CHECK(v == doctest::Approx(0.3f).epsilon(1e-6));
    }
  }
}

TEST_CASE("antialiasing suppresses what nearest-neighbour decimation aliases") {
  // Alternating 0/255 columns downsampled 3x: nearest picks single columns (0 or 255), the antialiased
  // filters average over the stretched support and land near the mean.
  Image stripes(6, 30, 1);
  for (int y = 0; y < 6; ++y)
    for (int x = 0; x < 30; ++x) stripes.at(y, x) = (x % 2) ? 255 : 0;
  const Image nn = resize(stripes, 6, 10, Filter::nearest);
  const Image bc = resize(stripes, 6, 10, Filter::bicubic);
  const Image ar = resize(stripes, 6, 10, Filter::area);
  for (int x = 0; x < 10; ++x) {
    CHECK((nn.at(3, x) == 0 || nn.at(3, x) == 255));
    CHECK(std::abs(bc.at(3, x) - 127.5) < 30);
    CHECK(std::abs(ar.at(3, x) - 127.5) < 45);  // a 3-wide box holds 1 or 2 bright columns of 3
  }
}

TEST_CASE("nearest upsampling by an integer factor replicates pixels") {
  const Image im = pattern_image(3, 4, 3, 1);
  const Image up = resize(im, 9, 8, Filter::nearest);
  for (int y = 0; y < 9; ++y)
    for (int x = 0; x < 8; ++x)
      for (int c = 0; c < 3; ++c) CHECK(up.at(y, x, c) == im.at(y / 3, x / 2, c));
}

TEST_CASE("resize results do not depend on the thread count") {
  const Tensor x = uniform({1, 600, 400, 3}, 11, -1, 1, DType::f32);  // big enough to use several threads
  ThreadCountGuard restore_threads;  // puts the thread count back, also when a check fails
  set_num_threads(1);
  const Tensor a = resize(x, 420, 310, Filter::bicubic), b = resize(x, 700, 500, Filter::area);
  set_num_threads(2);
  const Tensor c = resize(x, 420, 310, Filter::bicubic), d = resize(x, 700, 500, Filter::area);
  CHECK(a.to_vector<float>() == c.to_vector<float>());
  CHECK(b.to_vector<float>() == d.to_vector<float>());
}

TEST_CASE("resize rejects bad arguments naming the problem") {
  check_throws_with([] { (void)resize(Image(4, 4, 1), 0, 3); }, {"resize", "0x3"});
  check_throws_with([] { (void)resize(Tensor::zeros({4, 4}), 2, 2); }, {"resize", "[N, H, W, C]"});
  check_throws_with(
      [] {
        (void)resize(Tensor::zeros({1, 4, 4, 1}, DType::i32), 2, 2);
      },
      {"resize", "f32 or f64"});
  check_throws_with([] { (void)filter_from_name("lanczos"); }, {"lanczos"});
}

TEST_CASE("crops and flips") {
  const Image im = pattern_image(5, 9, 3, 2);
  const Image sq = center_square_crop(im);
  CHECK(sq.height == 5);
  CHECK(sq.width == 5);
  CHECK(sq == crop(im, 0, 2, 5, 5));
  const Image cc = center_crop(im, 2, 4);  // offsets (5-2)/2 = 1, (9-4)/2 = 2
  CHECK(cc.at(0, 0, 1) == im.at(1, 2, 1));
  CHECK(cc.at(1, 3, 2) == im.at(2, 5, 2));
  const Image fl = hflip(im);
  CHECK(fl.at(3, 0, 0) == im.at(3, 8, 0));
  CHECK(hflip(fl) == im);
  // Random crops: a pure function of (seed, stream), inside the image, and not always in the same place.
  CHECK(random_crop(im, 3, 3, 42, 7) == random_crop(im, 3, 3, 42, 7));
  bool moved = false;
  const Image first = random_crop(im, 3, 3, 0, 0);
  for (uint64_t s = 1; s < 20; ++s) moved |= !(random_crop(im, 3, 3, s, 0) == first);
  CHECK(moved);
  CHECK(random_crop(im, 5, 9, 3) == im);
  check_throws_with([&] { (void)crop(im, 4, 0, 2, 2); }, {"crop", "5x9x3"});
  check_throws_with([&] { (void)random_crop(im, 6, 2, 1); }, {"random_crop", "6x2"});
}
