// Numerics settings: the process-wide switches that change how a kernel computes (and so the last bits of its
// result) without changing what it computes. One place for all of them, read by the CUDA kernels (TF32 by the
// GEMMs and convolutions, the algorithm search by the convolutions) and set by programs from their config
// (train.precision, train.conv_search). The CPU kernels have one way of computing and ignore both.
//
// Tests and tools that change a setting for a while hold a NumericsGuard, which restores every setting when
// it goes out of scope, also when a failing check throws out of the scope.
#pragma once

#include <string>

namespace iris {

// TF32 tensor cores for f32 GEMM/convolution on CUDA (off by default, as in the benchmark's f32 mode).
bool tf32_enabled();
void set_tf32_enabled(bool on);

// How a new CUDA convolution problem chooses its cuDNN algorithm (problems already planned keep their
// choice):
// - heuristic (default): cuDNN's heuristic ranking (cudnnGet*Algorithm_v7). The choice depends only on the
//   problem, the GPU and the cuDNN version, so a resumed run picks the same algorithms (bit-exact resume);
// - find: cuDNN times every algorithm once (cudnnFind*AlgorithmEx) and the fastest is kept. Usually faster
//   kernels, but the choice can change from one process to the next (timing noise).
// IRIS_CUDNN_FIND=1 (anything but "" and "0") in the environment selects "find" at start-up.
enum class ConvAlgoSearch { heuristic, find };
void set_conv_algo_search(ConvAlgoSearch search);
ConvAlgoSearch conv_algo_search();

// The same switch by name, for configs: "heuristic" or "find"; throws iris::Error naming `what` for any other
// value. Without CUDA the value is checked and has no effect, and conv_search() is always "heuristic".
void set_conv_search(const std::string& mode, const std::string& what = "conv search");
std::string conv_search();

// Every numerics setting at once.
struct NumericsSettings {
  bool tf32 = false;
  ConvAlgoSearch conv_search = ConvAlgoSearch::heuristic;
  bool operator==(const NumericsSettings&) const = default;
};
NumericsSettings numerics_settings();
void set_numerics_settings(const NumericsSettings& s);

// RAII: saves every numerics setting, optionally sets some, and restores all of them at the end of the scope.
//   NumericsGuard strict(/*tf32=*/false);   // strict f32 for this test case, whatever a previous one left
class NumericsGuard {
 public:
  NumericsGuard() : saved_(numerics_settings()) {}
  explicit NumericsGuard(bool tf32) : NumericsGuard() { set_tf32_enabled(tf32); }
  NumericsGuard(bool tf32, ConvAlgoSearch search) : NumericsGuard(tf32) { set_conv_algo_search(search); }
  ~NumericsGuard() { set_numerics_settings(saved_); }
  NumericsGuard(const NumericsGuard&) = delete;
  NumericsGuard& operator=(const NumericsGuard&) = delete;
  const NumericsSettings& saved() const { return saved_; }

 private:
  NumericsSettings saved_;
};

}  // namespace iris
