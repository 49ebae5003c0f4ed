#include "framework/core/numerics.h"

#include <atomic>
#include <cstdlib>
#include <cstring>

#include "framework/core/error.h"

namespace iris {

namespace {
std::atomic<bool> g_tf32{false};

// Read from IRIS_CUDNN_FIND on first use, then set only through set_conv_algo_search.
std::atomic<int>& search_mode() {
  static std::atomic<int> mode{[] {
    const char* v = std::getenv("IRIS_CUDNN_FIND");
    const bool find = v != nullptr && v[0] != '\0' && std::strcmp(v, "0") != 0;
    return static_cast<int>(find ? ConvAlgoSearch::find : ConvAlgoSearch::heuristic);
  }()};
  return mode;
}
}  // namespace

bool tf32_enabled() {
  return g_tf32.load();
}
void set_tf32_enabled(bool on) {
  g_tf32.store(on);
}

void set_conv_algo_search(ConvAlgoSearch search) {
  search_mode().store(static_cast<int>(search));
}
ConvAlgoSearch conv_algo_search() {
  return static_cast<ConvAlgoSearch>(search_mode().load());
}

void set_conv_search(const std::string& mode, const std::string& what) {
  IRIS_CHECK(mode == "heuristic" || mode == "find", what, " must be heuristic or find, got '", mode, "'");
#ifdef IRIS_WITH_CUDA
  set_conv_algo_search(mode == "find" ? ConvAlgoSearch::find : ConvAlgoSearch::heuristic);
#endif
}

std::string conv_search() {
#ifdef IRIS_WITH_CUDA
  return conv_algo_search() == ConvAlgoSearch::find ? "find" : "heuristic";
#else
  return "heuristic";
#endif
}

NumericsSettings numerics_settings() {
  return {tf32_enabled(), conv_algo_search()};
}

void set_numerics_settings(const NumericsSettings& s) {
  set_tf32_enabled(s.tf32);
  set_conv_algo_search(s.conv_search);
}

}  // namespace iris
