// Numerics settings (framework/core/numerics.h): NumericsGuard restores every setting, also when the scope is
// left by an exception (a failing check), so a test case cannot leak TF32 or the search mode into the next.
#include <stdexcept>

#include "framework/core/numerics.h"
#include "tests/common/test_util.h"

using namespace iris;

TEST_CASE("NumericsGuard restores TF32 and the convolution search on every exit") {
  const NumericsSettings before = numerics_settings();
  {
    NumericsGuard g(/*tf32=*/true, ConvAlgoSearch::find);
    CHECK(tf32_enabled());
    CHECK(conv_algo_search() == ConvAlgoSearch::find);
    CHECK(g.saved() == before);
  }
  CHECK(numerics_settings() == before);
  try {
    NumericsGuard g(!before.tf32);
    CHECK(tf32_enabled() == !before.tf32);
    throw std::runtime_error("a failing check");
  } catch (const std::runtime_error&) {
  }
  CHECK(numerics_settings() == before);
}

TEST_CASE("set_conv_search checks its value by name") {
  NumericsGuard g;
  test::check_throws_with([] { set_conv_search("fastest", "train.conv_search"); },
                          {"train.conv_search", "heuristic or find", "fastest"});
  set_conv_search("heuristic");
  CHECK(conv_search() == "heuristic");
}
