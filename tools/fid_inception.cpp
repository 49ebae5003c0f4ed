#include "tools/fid_inception.h"

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "diffusion/cas.h"
#include "diffusion/fid.h"
#include "framework/iris.h"
#include "tools/common.h"

namespace iris::tools {

namespace {

// The Gaussian of an image set's features, with a progress line per ~10% (plain lines read well in logs).
diffusion::Gaussian statistics_of(const diffusion::FidInception& net, const diffusion::LabeledImages& set,
                                  const char* role, int64_t batch) {
  const auto started = std::chrono::steady_clock::now();
  const int64_t n = set.images.size(0);
  int64_t next = 0;
  return diffusion::inception_statistics(net, set.images, batch, [&](int64_t done, int64_t total) {
    if (done < next && done < total) return;
    next = done + std::max<int64_t>(1, total / 10);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    std::printf("  %s: %s of %s images, %.1f img/s\n", role, with_commas(done).c_str(),
                with_commas(n).c_str(), static_cast<double>(done) / std::max(s, 1e-9));
    std::fflush(stdout);
  });
}

}  // namespace

void run_inception_fd(const InceptionFdOptions& o) {
  if (o.threads > 0) set_num_threads(o.threads);
  IRIS_CHECK(
      o.real.empty() != o.real_stats.empty(),
      "fd --inception: give the real images (--real) or their saved statistics (--real-stats), one of them");
  IRIS_CHECK(o.save_real_stats.empty() || !o.real.empty(), "fd: --save-real-stats needs --real (the images)");
  IRIS_CHECK(!o.generated.empty() || !o.save_real_stats.empty(),
             "fd --inception: give --generated (to score) or --save-real-stats (to prepare the reference)");
  const Device device = resolve_device(o.device);
  diffusion::FidInception net = diffusion::FidInception::load(o.inception);
  net.to(device);
  std::printf("iris fd: %s\ninception  %s (FID's Inception-v3, pool3: %lld features)\n",
              compute_banner(device).c_str(), o.inception.c_str(),
              static_cast<long long>(diffusion::FidInception::kFeatures));
  std::fflush(stdout);

  diffusion::FidStats real;
  if (!o.real_stats.empty()) {
    real = diffusion::load_fid_stats(o.real_stats);
    std::printf("real       %s: statistics of %s images of %s (computed with %s)\n", o.real_stats.c_str(),
                with_commas(real.count).c_str(), real.source.c_str(), real.inception.c_str());
  } else {
    const diffusion::LabeledImages set = load_labeled("fd", o.real, /*need_labels=*/false);
    std::printf("real       %s: %s images %lldx%lld\n", o.real.c_str(),
                with_commas(set.images.size(0)).c_str(), static_cast<long long>(set.images.size(1)),
                static_cast<long long>(set.images.size(2)));
    real = {.gaussian = statistics_of(net, set, "real", o.batch),
            .count = set.images.size(0),
            .source = o.real,
            .inception = o.inception};
    if (!o.save_real_stats.empty()) {
      diffusion::save_fid_stats(o.save_real_stats, real);
      std::printf("saved the real statistics to %s\n", o.save_real_stats.c_str());
    }
  }
  if (o.generated.empty()) return;
  diffusion::LabeledImages gen = load_labeled("fd", o.generated, /*need_labels=*/false);
  keep_first(gen, o.limit, "fd");
  std::printf("generated  %s: %s images %lldx%lld\n", o.generated.c_str(),
              with_commas(gen.images.size(0)).c_str(), static_cast<long long>(gen.images.size(1)),
              static_cast<long long>(gen.images.size(2)));
  const diffusion::Gaussian g = statistics_of(net, gen, "generated", o.batch);
  const double fid = diffusion::frechet_distance(g, real.gaussian);
  std::printf("\nFID  %.4f   generated (%s) vs real (%s), Inception pool3 features\n", fid,
              with_commas(gen.images.size(0)).c_str(), with_commas(real.count).c_str());
  const nlohmann::json j = {{"fid", fid},
                            {"generated", o.generated},
                            {"generated_count", gen.images.size(0)},
                            {"real", o.real.empty() ? real.source : o.real},
                            {"real_count", real.count},
                            {"inception", o.inception}};
  if (!o.json.empty()) {
    const std::string tmp = o.json + ".tmp";
    std::ofstream(tmp) << j.dump(2) << "\n";
    std::filesystem::rename(tmp, o.json);
  }
  std::printf("%s\n", j.dump().c_str());
}

}  // namespace iris::tools
