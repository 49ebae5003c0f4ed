#include "diffusion/tiling.h"

#include <cmath>
#include <memory>
#include <numbers>
#include <string>

#include "framework/iris.h"

namespace iris::diffusion {

namespace {

// The pixel that pixel j >= n of an axis of n pixels reflects: mirrored about the last pixel without
// repeating it, folded again as often as needed (period 2 (n - 1)); 0 for a one-pixel axis.
int64_t reflected(int64_t j, int64_t n) {
  if (n == 1) return 0;
  const int64_t period = 2 * (n - 1);
  const int64_t k = j % period;
  return k < n ? k : period - k;
}

// x extended along `axis` to `target` pixels by reflection.
Tensor pad_axis(const Tensor& x, int64_t axis, int64_t target) {
  const int64_t n = x.size(axis);
  if (target == n) return x;
  std::vector<Tensor> pieces{x};
  for (int64_t j = n; j < target; ++j) {
    const int64_t k = reflected(j, n);
    pieces.push_back(x.slice(axis, k, k + 1));
  }
  return cat(pieces, axis);
}

int log2_of(int64_t m) {
  int k = 0;
  while ((int64_t{1} << k) < m) ++k;
  return k;
}

// The blend weight (before normalisation) at distance d from a window edge: sin^2 rising over the
// `overlap` pixels next to an edge inside the axis, 1 elsewhere. Never 0, so every pixel keeps a positive
// total even where the windows overlap by exactly `overlap`.
double taper(int64_t d, bool inner_edge, int64_t overlap) {
  if (!inner_edge || d >= overlap) return 1.0;
  const double s =
      std::sin(0.5 * std::numbers::pi * static_cast<double>(d + 1) / static_cast<double>(overlap + 1));
  return s * s;
}

}  // namespace

int64_t round_up(int64_t n, int64_t m) {
  IRIS_CHECK(m >= 1 && n >= 0, "round_up: needs n >= 0 and m >= 1, got ", n, " and ", m);
  return (n + m - 1) / m * m;
}

Tensor pad_reflect(const Tensor& x, int64_t H, int64_t W) {
  check_defined(x, "pad_reflect");
  IRIS_CHECK(x.dim() == 4 && x.size(1) > 0 && x.size(2) > 0 && H >= x.size(1) && W >= x.size(2),
             "pad_reflect: expected images [N, h, w, C] no larger than ", H, "x", W, ", got ", x.summary());
  return pad_axis(pad_axis(x, 1, H), 2, W);
}

Tensor crop(const Tensor& x, int64_t H, int64_t W) {
  check_defined(x, "crop");
  IRIS_CHECK(x.dim() == 4 && H > 0 && W > 0 && H <= x.size(1) && W <= x.size(2), "crop: cannot take ", H, "x",
             W, " from ", x.summary());
  if (x.size(1) == H && x.size(2) == W) return x;
  return x.slice(1, 0, H).slice(2, 0, W).contiguous();
}

void check_tiling(int64_t tile, int64_t overlap, int64_t multiple) {
  IRIS_CHECK(multiple >= 1, "check_tiling: the downsampling must be positive, got ", multiple);
  IRIS_CHECK(tile >= 0, "--tile must be positive (or 0: no tiling), got ", tile);
  IRIS_CHECK(overlap >= 0, "--tile-overlap must not be negative, got ", overlap);
  if (tile == 0) {
    IRIS_CHECK(overlap == 0, "--tile-overlap ", overlap, " needs --tile (the window size) to be given");
    return;
  }
  const int halvings = log2_of(multiple);
  IRIS_CHECK(tile % multiple == 0, "--tile ", tile, " must be a multiple of ", multiple,
             ", the network's total downsampling (it halves its input ",
             halvings == 1 ? std::string("once") : std::to_string(halvings) + " times",
             ": model.channel_mults)");
  IRIS_CHECK(overlap % multiple == 0, "--tile-overlap ", overlap, " must be a multiple of ", multiple,
             ", the network's total downsampling (windows start on multiples of it)");
  IRIS_CHECK(overlap < tile, "--tile ", tile, " must be larger than --tile-overlap ", overlap,
             " (neighbouring windows overlap by at least that much, so each must reach past it)");
}

TileAxis tile_axis(int64_t size, int64_t tile, int64_t overlap, int64_t multiple) {
  check_tiling(tile, overlap, multiple);
  IRIS_CHECK(size > 0 && size % multiple == 0, "tile_axis: the extent ", size,
             " must be a positive multiple of ", multiple);
  TileAxis a;
  a.size = size;
  if (tile == 0 || tile >= size) {
    a.tile = size;
    a.starts = {0};
    a.weights = {std::vector<double>(static_cast<size_t>(size), 1.0)};
    return a;
  }
  a.tile = tile;
  // In units of `multiple`: k windows of t units over n units with starts spread evenly (rounded down).
  // Their spacing is at most ceil((n - t) / (k - 1)) <= t - o, so neighbours overlap by at least o units.
  const int64_t n = size / multiple, t = tile / multiple, o = overlap / multiple;
  const int64_t k = (n - t + (t - o) - 1) / (t - o) + 1;  // >= 2, as n > t
  for (int64_t i = 0; i < k; ++i) a.starts.push_back(i * (n - t) / (k - 1) * multiple);
  std::vector<double> total(static_cast<size_t>(size), 0.0);
  for (int64_t start : a.starts) {
    std::vector<double> w(static_cast<size_t>(tile));
    const bool left_inner = start > 0, right_inner = start + tile < size;
    for (int64_t p = 0; p < tile; ++p) {
      w[p] = taper(p, left_inner, overlap) * taper(tile - 1 - p, right_inner, overlap);
      total[start + p] += w[p];
    }
    a.weights.push_back(std::move(w));
  }
  for (size_t k2 = 0; k2 < a.starts.size(); ++k2)
    for (int64_t p = 0; p < tile; ++p) a.weights[k2][p] /= total[a.starts[k2] + p];
  return a;
}

TilePlan plan_tiles(int64_t height, int64_t width, int64_t multiple, int64_t tile, int64_t overlap) {
  IRIS_CHECK(height > 0 && width > 0, "plan_tiles: the image must not be empty, got ", height, "x", width);
  TilePlan p;
  p.height = height;
  p.width = width;
  p.rows = tile_axis(round_up(height, multiple), tile, overlap, multiple);
  p.cols = tile_axis(round_up(width, multiple), tile, overlap, multiple);
  return p;
}

Tensor tile_coverage(const TilePlan& plan) {
  // The windows form a grid, so a pixel's count is its row's count times its column's.
  auto counts = [](const TileAxis& a, int64_t n) {
    std::vector<int32_t> c(static_cast<size_t>(n), 0);
    for (int64_t s : a.starts)
      for (int64_t p = s; p < std::min(s + a.tile, n); ++p) ++c[p];
    return c;
  };
  const auto rc = counts(plan.rows, plan.height), cc = counts(plan.cols, plan.width);
  std::vector<int32_t> out;
  out.reserve(static_cast<size_t>(plan.height * plan.width));
  for (int32_t r : rc)
    for (int32_t c : cc) out.push_back(r * c);
  return Tensor::from_vector<int32_t>(out, {plan.height, plan.width});
}

Denoiser tiled_denoiser(WindowDenoiser net, const Tensor& cond, const TilePlan& plan) {
  IRIS_CHECK(static_cast<bool>(net), "tiled_denoiser: no network given");
  const int64_t H = plan.height, W = plan.width, Hp = plan.rows.size, Wp = plan.cols.size;
  IRIS_CHECK(H > 0 && W > 0 && Hp >= H && Wp >= W && plan.count() > 0, "tiled_denoiser: an empty plan");
  Tensor cond_p;
  if (cond.defined()) {
    IRIS_CHECK(cond.dim() == 4 && cond.size(1) == H && cond.size(2) == W,
               "tiled_denoiser: the conditioning image ", cond.summary(), " is not ", H, "x", W);
    cond_p = pad_reflect(cond, Hp, Wp);  // once: it is the same at every step
  }
  // The blend weights as tensors on the prediction's device and dtype, made at the first call.
  struct Weights {
    std::vector<Tensor> rows, cols;  // [1, tile, 1, 1] and [1, 1, tile, 1]
  };
  auto weights = std::make_shared<Weights>();
  return [net = std::move(net), cond_p, plan, weights, H, W, Hp, Wp](const Tensor& x, const Tensor& gamma) {
    IRIS_CHECK(x.defined() && x.dim() == 4 && x.size(1) == H && x.size(2) == W, "tiled_denoiser: built for ",
               H, "x", W, " images, got x ", x.defined() ? x.summary() : "undefined");
    const Tensor xp = pad_reflect(x, Hp, Wp);
    if (plan.count() == 1) return crop(net(xp, gamma, cond_p), H, W);
    const int64_t th = plan.rows.tile, tw = plan.cols.tile;
    Tensor acc;
    for (size_t i = 0; i < plan.rows.count(); ++i)
      for (size_t j = 0; j < plan.cols.count(); ++j) {
        const int64_t y0 = plan.rows.starts[i], x0 = plan.cols.starts[j];
        auto window = [&](const Tensor& t) {
          return t.slice(1, y0, y0 + th).slice(2, x0, x0 + tw).contiguous();
        };
        const Tensor pred = net(window(xp), gamma, cond_p.defined() ? window(cond_p) : Tensor());
        IRIS_CHECK(pred.defined() && pred.dim() == 4 && pred.size(0) == x.size(0) && pred.size(1) == th &&
                       pred.size(2) == tw && pred.size(3) == x.size(3),
                   "tiled_denoiser: the network returned ",
                   pred.defined() ? pred.summary() : "an undefined tensor", " for a ", th, "x", tw,
                   " window of x ", x.summary());
        if (!acc.defined()) {
          acc = Tensor::zeros({x.size(0), Hp, Wp, x.size(3)}, pred.dtype(), pred.device());
          if (weights->rows.empty() || weights->rows[0].device() != pred.device() ||
              weights->rows[0].dtype() != pred.dtype()) {
            weights->rows.clear();
            weights->cols.clear();
            for (const auto& w : plan.rows.weights)
              weights->rows.push_back(Tensor::from_vector(w, {1, th, 1, 1}, pred.dtype(), pred.device()));
            for (const auto& w : plan.cols.weights)
              weights->cols.push_back(Tensor::from_vector(w, {1, 1, tw, 1}, pred.dtype(), pred.device()));
          }
        }
        Tensor view = acc.slice(1, y0, y0 + th).slice(2, x0, x0 + tw);
        view.copy_(add(view, mul(mul(pred, weights->rows[i]), weights->cols[j])));
      }
    return crop(acc, H, W);
  };
}

}  // namespace iris::diffusion
