// Any-size and tiled inference for super-resolution stages.
//
// Any size. The U-Net is convolutional, so a stage trained at r -> R super-resolves an h x w input to
// H x W = (h R / r) x (w R / r) (Stage::output_size). Its stride-2 downsamplings need H and W to be
// multiples of m = 2^(levels - 1) (UNetConfig::downsampling); other sizes are padded up to the next
// multiple at every network call and the prediction is cropped back (pad_reflect). The padding reflects
// the image about its last row and column (... 2 1 | 0 1 2 ... without repeating the edge, folded again
// when the pad is longer than the image), because of what the network sees there:
//   - zero padding shows it a flat black band of zero noise, unlike anything it was trained on (a noisy
//     image everywhere): the predictions near that edge bend towards it;
//   - replicate padding copies the edge pixel along a line: in x_t a single noise value repeated, a stripe
//     of perfectly correlated "noise", again unlike training;
//   - reflection keeps both the local structure of the conditioning image and the per-pixel statistics of
//     the noise (every padded value is an N(0, 1) value of the image, reused), so the padded input looks
//     like a training input.
// The padding goes at the bottom and the right only, so pixel (y, x) of the image is pixel (y, x) of the
// padded one and cropping back is a view.
//
// Tiled. For outputs too large to run through the network at once, the padded image is covered by
// T x T windows (tile_axis: starts on multiples of m, neighbours overlapping by at least O pixels) and
// tiled_denoiser runs the network window by window at EVERY sampler step: it blends the windows' raw
// predictions (eps or v) into one prediction for the whole image, with weights that taper smoothly
// (sin^2) over the O pixels next to an inner window edge and sum to one at every pixel; the sampler then
// takes its step on the whole image. Why this way:
//   - blending at every step keeps one state x_t for the whole image, so the windows' chains cannot drift
//     apart and meet at a seam (stitching finished tiles leaves visible seams);
//   - blending eps (or v) is blending x0: for a fixed x_t, x0 = (x_t - sqrt(1-g) eps) / sqrt(g) (or
//     sqrt(g) x_t - sqrt(1-g) v) is affine in the prediction, pixel by pixel, and the weights sum to one;
//     clipping x0 then applies to the blended estimate, as without tiles;
//   - the noise: the sampler draws it for the whole image from each sample's stream, so the noise at
//     output pixel (y, x, c) of sample i depends only on (seed, sample, step, y, x, c) and the image
//     width, never on the windows. Tiling with one window (T at least the padded image) is therefore
//     bit-identical to untiled sampling, and other tilings change the result only through what the
//     network sees in each window: zero padding at a window's edge (which the tapered weights discount),
//     and GroupNorm statistics and attention computed over the window instead of the whole image.
// Memory: the network's activations are those of one window (times the sampling batch); the whole-image
// state, its noise and the blended prediction are a few H x W x C float tensors per sample.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "diffusion/sampler.h"
#include "framework/core/tensor.h"

namespace iris::diffusion {

// n rounded up to a multiple of m (m >= 1).
int64_t round_up(int64_t n, int64_t m);

// x [N, h, w, C] extended at the bottom and the right to [N, H, W, C] (H >= h, W >= w) by reflection about
// the last row / column (see the top of this file); x itself when H == h and W == w.
Tensor pad_reflect(const Tensor& x, int64_t H, int64_t W);

// The first H rows and W columns of x [N, H', W', C] (contiguous); x itself when it is H x W already.
Tensor crop(const Tensor& x, int64_t H, int64_t W);

// The windows along one axis of `size` pixels.
struct TileAxis {
  int64_t size = 0;             // the (padded) extent
  int64_t tile = 0;             // window length; equals size when there is one window
  std::vector<int64_t> starts;  // ascending; the first 0, the last size - tile
  // weights[k][p]: window k's blend weight at its pixel p (all > 0); at every pixel of the axis the weights
  // of the windows covering it sum to one.
  std::vector<std::vector<double>> weights;
  size_t count() const { return starts.size(); }
};

// Windows of `tile` pixels over an axis of `size` pixels (a multiple of `multiple`), starting on multiples
// of `multiple`, neighbours overlapping by at least `overlap` pixels, spread as evenly as that allows;
// tile = 0, or tile >= size: one window of the whole axis. Weights: 1, tapered as sin^2(pi/2 (d+1)/(O+1))
// at distance d < O from an edge that lies inside the axis, then normalised to sum to one per pixel.
// Checks the options (check_tiling).
TileAxis tile_axis(int64_t size, int64_t tile, int64_t overlap, int64_t multiple);

// Errors (iris::Error naming --tile / --tile-overlap) for options that cannot tile a network whose total
// downsampling is `multiple`: a negative value, an overlap without a tile, a tile or overlap that is not a
// multiple of `multiple`, an overlap not smaller than the tile.
void check_tiling(int64_t tile, int64_t overlap, int64_t multiple);

// The windows of an H x W image: its padded extent (multiples of `multiple`) tiled along both axes; window
// (i, j) covers rows [rows.starts[i], + rows.tile) and columns [cols.starts[j], + cols.tile) with weight
// rows.weights[i][y] * cols.weights[j][x] (which sums to one at every pixel, the axes' sums being one).
struct TilePlan {
  int64_t height = 0, width = 0;  // the image
  TileAxis rows, cols;            // over the padded image
  size_t count() const { return rows.count() * cols.count(); }
};
TilePlan plan_tiles(int64_t height, int64_t width, int64_t multiple, int64_t tile, int64_t overlap);

// How many windows cover each pixel of the image: i32 [H, W] (1 inside a window, >= 2 where windows
// overlap: the bands around inner window edges, where blending happens).
Tensor tile_coverage(const TilePlan& plan);

// The network on one window: x_t [N, h, w, C], gamma [N] and the conditioning image cut to the same window
// [N, h, w, C'] (undefined when there is none) -> the prediction [N, h, w, C].
using WindowDenoiser = std::function<Tensor(const Tensor& x_t, const Tensor& gamma, const Tensor& cond)>;

// The denoiser of the whole H x W image (plan.height x plan.width): x_t and `cond` ([N, H, W, C'] or
// undefined) padded (pad_reflect) to the plan's extent, `net` run on each window, the predictions blended
// with the plan's weights, cropped back to H x W. With one window it is `net` on the padded image, cropped.
Denoiser tiled_denoiser(WindowDenoiser net, const Tensor& cond, const TilePlan& plan);

}  // namespace iris::diffusion
