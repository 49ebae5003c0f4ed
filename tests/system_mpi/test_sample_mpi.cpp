// Sampling split over ranks: `mpirun -np N iris sample|cascade` writes exactly what one process writes (every
// sample's noise has its own stream, so the split cannot change a pixel), with rank 0 alone writing files.
#include <filesystem>

#include "tests/common/test_util.h"
#include "tests/system/system_util.h"
#include "tests/system/trained_fixture.h"
#include "tests/system_mpi/system_mpi_util.h"

using namespace iris;
using namespace iris::test;
namespace fs = std::filesystem;

TEST_CASE("mpirun iris sample and iris cascade equal one process, bit for bit") {
  TrainedFixture fx("sample-mpi", {.sr3 = true, .base = true});
  const std::string iris = std::string(iris_binary());
  // 7 samples: at 2 ranks 4 + 3 rows, at 3 ranks 3 + 3 + 1, in rounds of at most 2 (uneven everywhere).
  const std::string sample = " sample --ckpt " + fx.sr3_ckpt + " --shard " + fx.data +
                             " --count 7 --steps 3 --sampler ddpm --threads 1 --out ";
  const RunResult one = run_cmd(iris + sample + fx.path("one") + " --batch 7 --seed 5");
  REQUIRE_MESSAGE(one.exit_code == 0, one.output);
  for (int np : {2, 3}) {
    CAPTURE(np);
    const std::string out = fx.path("np" + std::to_string(np));
    const RunResult r = run_cmd(mpirun(np) + iris + sample + out + " --batch 2 --seed 5");
    REQUIRE_MESSAGE(r.exit_code == 0, r.output);
    CHECK_MESSAGE(r.output.find("split over " + std::to_string(np) + " ranks") != std::string::npos,
                  r.output);
    CHECK(same_bytes(read_h5(out + "/samples.h5", "images"),
                     read_h5(fx.path("one") + "/samples.h5", "images")));
    CHECK(count_pngs(out) == 7);
  }

  // A 2-rank run resumed at 3 ranks after losing samples 1, 2 and 5 (the rows left are not contiguous).
  {
    const std::string out = fx.path("np2");
    fs::remove(out + "/samples.h5");
    for (const char* name : {"000001", "000002", "000005"})
      for (const auto& e : fs::directory_iterator(out))
        if (e.path().filename().string().rfind(name, 0) == 0) fs::remove(e.path());
    REQUIRE(count_pngs(out) == 4);
    const RunResult r = run_cmd(mpirun(3) + iris + sample + out + " --batch 2 --seed 5 --resume");
    REQUIRE_MESSAGE(r.exit_code == 0, r.output);
    CHECK_MESSAGE(r.output.find("resuming: 4 of 7") != std::string::npos, r.output);
    CHECK(same_bytes(read_h5(out + "/samples.h5", "images"),
                     read_h5(fx.path("one") + "/samples.h5", "images")));
  }

  // A cascade (class-conditional base -> sr3), 2 ranks vs 1.
  const std::string cascade = " cascade --stage " + fx.base_ckpt + " --stage " + fx.sr3_ckpt +
                              " --labels 0,1,2,1,0 --steps 2 --seed 3 --threads 1 --out ";
  const RunResult c1 = run_cmd(iris + cascade + fx.path("c1"));
  REQUIRE_MESSAGE(c1.exit_code == 0, c1.output);
  const RunResult c2 = run_cmd(mpirun(2) + iris + cascade + fx.path("c2") + " --batch 2");
  REQUIRE_MESSAGE(c2.exit_code == 0, c2.output);
  for (const char* stage : {"stage_0", "stage_1"}) {
    CAPTURE(stage);
    CHECK(same_bytes(read_h5(fx.path("c1") + "/cascade.h5", stage),
                     read_h5(fx.path("c2") + "/cascade.h5", stage)));
  }
  // The check can fail: another seed gives other pixels.
  const RunResult other = run_cmd(iris + sample + fx.path("other") + " --batch 7 --seed 6");
  REQUIRE_MESSAGE(other.exit_code == 0, other.output);
  CHECK_FALSE(same_bytes(read_h5(fx.path("other") + "/samples.h5", "images"),
                         read_h5(fx.path("one") + "/samples.h5", "images")));
}
