#include "diffusion/fid.h"

#include <filesystem>

#include "framework/io/hdf5.h"
#include "framework/iris.h"

namespace iris::diffusion {

namespace {
constexpr const char* kStatsFormat = "iris-fid-stats";
}

Gaussian inception_statistics(const FidInception& net, const Tensor& images, int64_t batch,
                              const std::function<void(int64_t, int64_t)>& on_batch) {
  IRIS_CHECK(images.defined() && images.dim() == 4 && images.dtype() == DType::u8,
             "inception_statistics: expected u8 images [N, H, W, C], got ",
             images.defined() ? images.summary() : std::string("none"));
  const int64_t n = images.size(0), d = FidInception::kFeatures;
  IRIS_CHECK(n >= 2, "FID needs at least 2 images, got ", n);
  IRIS_CHECK(batch >= 1, "inception_statistics: batch must be positive, got ", batch);
  NoGradGuard no_grad;
  Tensor shift, sum_f, cross;  // f64 on the CPU: [d], [d], [d, d]
  for (int64_t start = 0; start < n; start += batch) {
    const int64_t end = std::min(n, start + batch);
    // u8 -> [0, 1] as torchvision's ToTensor, which pytorch-fid applies to its images.
    const Tensor x = div(images.slice(0, start, end).to(net.device()).to(DType::f32), 255.0);
    const Tensor f = net.features(x).cpu().to(DType::f64);  // [b, d]
    if (!shift.defined()) {
      shift = mean(f, {0});
      sum_f = Tensor::zeros({d}, DType::f64);
      cross = Tensor::zeros({d, d}, DType::f64);
    }
    const Tensor c = sub(f, shift);
    sum_f = add(sum_f, sum(c, {0}));
    cross = add(cross, matmul(c.permute({1, 0}), c));
    if (on_batch) on_batch(end, n);
  }
  // cov = (sum c c^T - N m m^T) / (N - 1), m = mean of c; mean = shift + m.
  const Tensor m = div(sum_f, static_cast<double>(n));
  const Tensor outer = matmul(m.reshape({d, 1}), m.reshape({1, d}));
  const Tensor cov = div(sub(cross, mul(outer, static_cast<double>(n))), static_cast<double>(n - 1));
  Gaussian g;
  g.dim = d;
  g.mean = add(shift, m).to_vector<double>();
  g.cov = cov.to_vector<double>();
  for (int64_t i = 0; i < d; ++i)  // exactly symmetric, as the eigensolver assumes
    for (int64_t j = i + 1; j < d; ++j)
      g.cov[i * d + j] = g.cov[j * d + i] = 0.5 * (g.cov[i * d + j] + g.cov[j * d + i]);
  return g;
}

void save_fid_stats(const std::string& path, const FidStats& s) {
  const std::filesystem::path parent = std::filesystem::path(path).parent_path();
  if (!parent.empty()) std::filesystem::create_directories(parent);
  h5::AtomicWriter w(path, 2);
  {
    h5::Group root = w.root();
    root.set_string_attr("format", kStatsFormat);
    root.set_int_attr("count", s.count);
    root.set_string_attr("source", s.source);
    root.set_string_attr("inception", s.inception);
    const int64_t d = s.gaussian.dim;
    root.write_tensor("mu", Tensor::from_vector<double>(s.gaussian.mean, {d}));
    root.write_tensor("sigma", Tensor::from_vector<double>(s.gaussian.cov, {d, d}));
  }
  w.commit();
}

FidStats load_fid_stats(const std::string& path) {
  IRIS_CHECK(std::filesystem::exists(path), "FID statistics file '", path, "' does not exist");
  IRIS_CHECK(h5::File::is_hdf5(path), "'", path, "' is not an Iris FID statistics file (not HDF5)");
  const h5::File f = h5::File::open(path);
  const h5::Group root = f.root();
  IRIS_CHECK(root.has_attr("format") && root.string_attr("format") == kStatsFormat, "'", path,
             "' is not an Iris FID statistics file (made by iris fd --inception ... --save-real-stats)");
  FidStats s;
  s.count = root.int_attr("count");
  s.source = root.string_attr("source");
  s.inception = root.string_attr("inception");
  for (const char* name : {"mu", "sigma"}) root.open_dataset(name).verify_checksum();
  const Tensor mu = root.read_tensor("mu"), sigma = root.read_tensor("sigma");
  const int64_t d = FidInception::kFeatures;
  const Shape mu_shape{d}, sigma_shape{d, d};
  const bool fits = mu.shape() == mu_shape && sigma.shape() == sigma_shape && mu.dtype() == DType::f64 &&
                    sigma.dtype() == DType::f64;
  IRIS_CHECK(fits, "'", path, "': expected f64 mu [", d, "] and sigma [", d, ", ", d, "], got ", mu.summary(),
             " and ", sigma.summary());
  s.gaussian.dim = d;
  s.gaussian.mean = mu.to_vector<double>();
  s.gaussian.cov = sigma.to_vector<double>();
  return s;
}

}  // namespace iris::diffusion
