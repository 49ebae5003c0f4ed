// 2x resampling kernels. Two primitives cover all four: `spread` copies each small pixel (times a scale) to
// its 2x2 block of the large image, `block_sum` sums each 2x2 block (times a scale) into a small pixel.
// Work is split over output rows, so results do not depend on the thread count.
#include "framework/kernels/resample.h"

#include "framework/cpu/parallel.h"
#include "framework/kernels/dispatch.h"

namespace iris::cpu {

namespace {

// large [N, 2h, 2w, C] = scale * small [N, h, w, C] repeated over 2x2 blocks; one task per large row.
void spread(const Tensor& small, Tensor& large, double scale) {
  const int64_t N = small.size(0), h = small.size(1), w = small.size(2), C = small.size(3);
  dispatch_floating(large.dtype(), "upsample", [&](auto tag) {
    using T = decltype(tag);
    using F = compute_t<T>;
    const T* s = small.data<T>();
    T* l = large.data<T>();
    const F k = static_cast<F>(scale);
    parallel_for(0, N * 2 * h, std::max<int64_t>(1, 16384 / std::max<int64_t>(1, 2 * w * C)),
                 [&](int64_t lo, int64_t hi) {
                   for (int64_t row = lo; row < hi; ++row) {  // row = n * 2h + y
                     const T* src = s + (row / 2) * w * C;    // small row (n, y / 2)
                     T* dst = l + row * 2 * w * C;
                     for (int64_t x = 0; x < w; ++x)
                       for (int64_t c = 0; c < C; ++c) {
                         T v;
                         store_as(&v, load_as<F>(src + x * C + c) * k);
                         dst[(2 * x) * C + c] = v;
                         dst[(2 * x + 1) * C + c] = v;
                       }
                   }
                 });
  });
}

// small [N, h, w, C] = scale * (sum of each 2x2 block of large [N, 2h, 2w, C]); one task per small row.
void block_sum(const Tensor& large, Tensor& small, double scale) {
  const int64_t N = small.size(0), h = small.size(1), w = small.size(2), C = small.size(3);
  dispatch_floating(small.dtype(), "avg_pool", [&](auto tag) {
    using T = decltype(tag);
    using F = compute_t<T>;
    const T* l = large.data<T>();
    T* s = small.data<T>();
    const F k = static_cast<F>(scale);
    const int64_t lrow = 2 * w * C;  // elements in one large row
    parallel_for(
        0, N * h, std::max<int64_t>(1, 16384 / std::max<int64_t>(1, 2 * lrow)), [&](int64_t lo, int64_t hi) {
          for (int64_t row = lo; row < hi; ++row) {  // row = n * h + y
            const T* top = l + 2 * row * lrow;       // large rows 2y and 2y + 1 of image n
            const T* bot = top + lrow;
            T* dst = s + row * w * C;
            for (int64_t x = 0; x < w; ++x)
              for (int64_t c = 0; c < C; ++c) {
                const int64_t a = 2 * x * C + c, b = a + C;
                const F sum =
                    (load_as<F>(top + a) + load_as<F>(top + b)) + (load_as<F>(bot + a) + load_as<F>(bot + b));
                store_as(dst + x * C + c, sum * k);
              }
          }
        });
  });
}

}  // namespace

void upsample_nearest2x(const Tensor& small, Tensor& large) {
  spread(small, large, 1.0);
}
void upsample_nearest2x_backward(const Tensor& glarge, Tensor& dsmall) {
  block_sum(glarge, dsmall, 1.0);
}
void avg_pool2x(const Tensor& large, Tensor& small) {
  block_sum(large, small, 0.25);
}
void avg_pool2x_backward(const Tensor& gsmall, Tensor& dlarge) {
  spread(gsmall, dlarge, 0.25);
}

}  // namespace iris::cpu
