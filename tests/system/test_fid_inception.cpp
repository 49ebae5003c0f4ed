// `iris fd --inception WEIGHTS`: FID in FID's Inception-v3 features, run as processes with a weights file of
// the right names and shapes (random values: the published weights are not in the repository), on the tiny
// shard set: the real statistics saved and reused give the same FID as the images, a set against itself
// scores ~0, and files of the wrong kind are refused naming them.
#include <filesystem>

#include "data/safetensors.h"
#include "diffusion/inception.h"
#include "framework/iris.h"
#include "tests/common/test_util.h"
#include "tests/system/system_util.h"

using namespace iris;
using namespace iris::test;
namespace fs = std::filesystem;

namespace {

// Weights of the right names and shapes: He-uniform convolutions, identity batch norms.
std::string write_random_inception(const std::string& path) {
  data::SafetensorsFile f;
  Generator g(3, 4);
  for (const auto& [name, shape] : diffusion::FidInception::expected_tensors()) {
    if (name.ends_with("conv.weight")) {
      const double bound = std::sqrt(6.0 / static_cast<double>(shape[1] * shape[2] * shape[3]));
      f.tensors[name] = rand(shape, g, DType::f32, Device::cpu(), -bound, bound);
    } else {
      const bool one = name.ends_with("bn.weight") || name.ends_with("running_var");
      f.tensors[name] = Tensor::full(shape, one ? 1.0 : 0.0, DType::f32);
    }
  }
  data::write_safetensors(path, f);
  return path;
}

double fid_of(const RunResult& r) {
  const size_t at = r.output.rfind("{\"fid\":");
  REQUIRE_MESSAGE(at != std::string::npos, r.output);
  return std::stod(r.output.substr(at + 7));
}

}  // namespace

TEST_CASE("iris fd --inception: saved real statistics, the same set scoring ~0, and wrong files named") {
  const std::string root = fresh_dir("fid-inception");
  const std::string data = root + "/data", weights = write_random_inception(root + "/inception.safetensors");
  write_tiny_shards(data, 8);
  const std::string base = "fd --inception " + weights + " --device cpu --threads 2 --batch 4 ";
  const RunResult saved = run_iris(base + "--real " + data + " --save-real-stats " + root + "/real.h5");
  REQUIRE_MESSAGE(saved.exit_code == 0, saved.output);
  check_contains(saved, "saved the real statistics to " + root + "/real.h5");

  const RunResult from_stats =
      run_iris(base + "--generated " + data + ":lowres_4 --real-stats " + root + "/real.h5");
  REQUIRE_MESSAGE(from_stats.exit_code == 0, from_stats.output);
  const RunResult from_images = run_iris(base + "--generated " + data + ":lowres_4 --real " + data);
  REQUIRE_MESSAGE(from_images.exit_code == 0, from_images.output);
  CHECK(fid_of(from_stats) == fid_of(from_images));  // the statistics are saved exactly (f64)
  CHECK(fid_of(from_stats) > 0);
  const RunResult same = run_iris(base + "--generated " + data + " --real-stats " + root + "/real.h5");
  REQUIRE_MESSAGE(same.exit_code == 0, same.output);
  CHECK(fid_of(same) < 1e-4 * fid_of(from_stats));

  // Wrong files: the statistics file as weights, the weights as statistics; options that do not go together.
  expect_error(run_iris("fd --inception " + root + "/real.h5 --real " + data + " --generated " + data),
               {root + "/real.h5"});
  expect_error(run_iris(base + "--generated " + data + " --real-stats " + weights), {weights});
  expect_error(run_iris(base + "--generated " + data),
               {"give the real images (--real) or their saved statistics"});
  expect_error(run_iris(base + "--generated " + data + " --real " + data + " --train " + data),
               {"--inception scores in Inception's features"});
  fs::remove_all(root);
}
