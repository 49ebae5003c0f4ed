// `mpirun -np N iris sweep` splits whole points over the ranks (3 points over 2 ranks: one rank idles in the
// last round) and writes what one process writes: the same samples, bit for bit, and the same scores.
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "tests/common/test_util.h"
#include "tests/system/system_util.h"
#include "tests/system/trained_fixture.h"
#include "tests/system_mpi/system_mpi_util.h"

using namespace iris;
using namespace iris::test;

namespace {

nlohmann::json point_scores(const std::string& out, int k) {
  std::ifstream f(out + "/points/" + std::to_string(k) + ".json");
  REQUIRE(f.good());
  nlohmann::json s = nlohmann::json::parse(f)["scores"];
  s.erase("ms");  // wall time: the one score that differs between runs
  return s;
}

}  // namespace

TEST_CASE("mpirun iris sweep equals one process, bit for bit") {
  TrainedFixture fx("sweep-mpi", {.sr3 = true});
  const std::string sweep = std::string(iris_binary()) + " sweep --stage " + fx.sr3_ckpt + " --shard " +
                            fx.data +
                            " --count 5 --vary steps=2,3,4 --metrics psnr,consistency,fd,ms --fd-train " +
                            fx.data + " --real " + fx.data +
                            " --classifier-steps 4 --classifier-batch 8 --classifier-width 8 --batch 2"
                            " --device cpu --threads 1 --out ";
  const RunResult one = run_cmd(sweep + fx.path("one"));
  REQUIRE_MESSAGE(one.exit_code == 0, one.output);
  const RunResult two = run_cmd(mpirun(2) + sweep + fx.path("two"));
  REQUIRE_MESSAGE(two.exit_code == 0, two.output);
  CHECK_MESSAGE(two.output.find("points split over 2 ranks") != std::string::npos, two.output);
  for (int k = 0; k < 3; ++k) {
    CAPTURE(k);
    const std::string h5 = "/points/" + std::to_string(k) + "/samples.h5";
    CHECK(same_bytes(read_h5(fx.path("one") + h5, "images"), read_h5(fx.path("two") + h5, "images")));
    CHECK(point_scores(fx.path("one"), k) == point_scores(fx.path("two"), k));
  }
}
