// CUDA 2x resampling (framework/kernels/resample.h). Two primitives, as on the CPU: `spread` writes scale *
// small[pixel] to the 2x2 block of the large image, `block_sum` writes scale * ((a + b) + (c + d)) of a 2x2
// block (a, b the top row, c, d the bottom one) to the small pixel. The CPU rounds to T after the same
// operations in the same order, so results are bit-identical.
//
// One thread per (small pixel, vector of V channels): V = 16 / sizeof(T) with 16-byte accesses when C is a
// multiple of V and both pointers are 16-byte aligned, else 1. Consecutive threads take consecutive channel
// vectors of one pixel, so every access of a warp is contiguous. Grid-stride loop, 32-bit index arithmetic
// when the work fits.
#include <climits>

#include "framework/cuda/loops.cuh"
#include "framework/kernels/resample.h"
#include "framework/kernels/dispatch.h"

namespace iris::cuda {

namespace {

// Element offsets of the four large pixels (top-left, top-right, bottom-left, bottom-right) of the block of
// work item e, and of its small pixel, for a small image of width w and CV channel vectors of V.
template <class J>
struct BlockIndex {
  J small, tl, tr, bl, br;
  __device__ __forceinline__ BlockIndex(J e, J CV, J w, J C, int V) {
    const J cv = e % CV, pix = e / CV;  // pix = (n * h + y) * w + x
    const J x = pix % w, q = pix / w;   // q = n * h + y: large rows 2q and 2q + 1 (of width 2w)
    small = pix * C + cv * V;
    tl = ((2 * q) * (2 * w) + 2 * x) * C + cv * V;
    tr = tl + C;
    bl = tl + 2 * w * C;
    br = bl + C;
  }
};

// V elements at p as one access (a 16-byte vector when V > 1; Vec<T, 1> would be a padded 16-byte struct).
template <class T, int V>
struct Pack {
  T v[V];
};
template <class T, int V>
__device__ __forceinline__ Pack<T, V> load_pack(const T* p) {
  Pack<T, V> r;
  if constexpr (V == 1) {
    r.v[0] = *p;
  } else {
    const Vec<T, V> v = *reinterpret_cast<const Vec<T, V>*>(p);
#pragma unroll
    for (int j = 0; j < V; ++j) r.v[j] = v.v[j];
  }
  return r;
}
template <class T, int V>
__device__ __forceinline__ void store_pack(T* p, const Pack<T, V>& r) {
  if constexpr (V == 1) {
    *p = r.v[0];
  } else {
    Vec<T, V> v;
#pragma unroll
    for (int j = 0; j < V; ++j) v.v[j] = r.v[j];
    *reinterpret_cast<Vec<T, V>*>(p) = v;
  }
}

template <class T, int V, class J>
__global__ void spread_kernel(const T* __restrict__ small, T* __restrict__ large, J total, J CV, J w, J C,
                              compute_t<T> k) {
  using F = compute_t<T>;
  const J step = static_cast<J>(gridDim.x) * blockDim.x;
  for (J e = static_cast<J>(blockIdx.x) * blockDim.x + threadIdx.x; e < total; e += step) {
    const BlockIndex<J> b(e, CV, w, C, V);
    Pack<T, V> v = load_pack<T, V>(small + b.small);
#pragma unroll
    for (int j = 0; j < V; ++j) store_as(&v.v[j], load_as<F>(&v.v[j]) * k);
    store_pack<T, V>(large + b.tl, v);
    store_pack<T, V>(large + b.tr, v);
    store_pack<T, V>(large + b.bl, v);
    store_pack<T, V>(large + b.br, v);
  }
}

template <class T, int V, class J>
__global__ void block_sum_kernel(const T* __restrict__ large, T* __restrict__ small, J total, J CV, J w, J C,
                                 compute_t<T> k) {
  using F = compute_t<T>;
  const J step = static_cast<J>(gridDim.x) * blockDim.x;
  for (J e = static_cast<J>(blockIdx.x) * blockDim.x + threadIdx.x; e < total; e += step) {
    const BlockIndex<J> b(e, CV, w, C, V);
    const Pack<T, V> a = load_pack<T, V>(large + b.tl), c = load_pack<T, V>(large + b.tr);
    const Pack<T, V> d = load_pack<T, V>(large + b.bl), f = load_pack<T, V>(large + b.br);
    Pack<T, V> out;
#pragma unroll
    for (int j = 0; j < V; ++j) {
      const F sum = (load_as<F>(&a.v[j]) + load_as<F>(&c.v[j])) + (load_as<F>(&d.v[j]) + load_as<F>(&f.v[j]));
      store_as(&out.v[j], sum * k);
    }
    store_pack<T, V>(small + b.small, out);
  }
}

// Launches spread (to_large) or block_sum over the small image [N, h, w, C].
void launch(const Tensor& src, Tensor& dst, const Tensor& small_t, bool to_large, double scale,
            const char* what, Stream stream) {
  const int64_t N = small_t.size(0), h = small_t.size(1), w = small_t.size(2), C = small_t.size(3);
  if (N * h * w * C == 0) return;
  Context& ctx = context(dst.device().index);
  DeviceGuard guard(ctx.device);
  dispatch_floating(dst.dtype(), what, [&](auto tag) {
    using T = decltype(tag);
    using F = compute_t<T>;
    constexpr int VV = 16 / sizeof(T);
    const bool vec = C % VV == 0 && aligned16(src.data_ptr()) && aligned16(dst.data_ptr());
    auto run = [&](auto vtag, auto jtag) {
      constexpr int V = decltype(vtag)::value;
      using J = decltype(jtag);
      const int64_t total = N * h * w * (C / V);
      const J jt = static_cast<J>(total), jcv = static_cast<J>(C / V), jw = static_cast<J>(w),
              jc = static_cast<J>(C);
      const F k = static_cast<F>(scale);
      if (to_large)
        spread_kernel<T, V, J><<<grid_for(total, ctx), kThreads, 0, stream>>>(
            src.data<T>(), dst.data<T>(), jt, jcv, jw, jc, k);
      else
        block_sum_kernel<T, V, J><<<grid_for(total, ctx), kThreads, 0, stream>>>(
            src.data<T>(), dst.data<T>(), jt, jcv, jw, jc, k);
      IRIS_CUDA_CHECK_LAUNCH(what);
    };
    // The largest offset is that of the large image's last element: 4 * N * h * w * C.
    const bool small_index = 4 * N * h * w * C <= INT32_MAX;
    if (vec) {
      if (small_index)
        run(std::integral_constant<int, VV>{}, uint32_t{});
      else
        run(std::integral_constant<int, VV>{}, uint64_t{});
    } else {
      if (small_index)
        run(std::integral_constant<int, 1>{}, uint32_t{});
      else
        run(std::integral_constant<int, 1>{}, uint64_t{});
    }
  });
}

}  // namespace

void upsample_nearest2x(const Tensor& small, Tensor& large, Stream stream) {
  launch(small, large, small, true, 1.0, "cuda::upsample_nearest2x", stream);
}
void upsample_nearest2x_backward(const Tensor& glarge, Tensor& dsmall, Stream stream) {
  launch(glarge, dsmall, dsmall, false, 1.0, "cuda::upsample_nearest2x_backward", stream);
}
void avg_pool2x(const Tensor& large, Tensor& small, Stream stream) {
  launch(large, small, small, false, 0.25, "cuda::avg_pool2x", stream);
}
void avg_pool2x_backward(const Tensor& gsmall, Tensor& dlarge, Stream stream) {
  launch(gsmall, dlarge, gsmall, true, 0.25, "cuda::avg_pool2x_backward", stream);
}

}  // namespace iris::cuda
