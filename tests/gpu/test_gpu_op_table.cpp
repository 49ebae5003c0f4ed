// The op table's CUDA columns (tests/ops/op_table.h): every row on the GPU in f32 (TF32 off), in bf16, and in
// f32 under bf16 autocast for the autocasting ops, each against the CPU float64 reference; rows marked `bits`
// must also equal the CPU's results in the same dtype bit for bit. The CPU columns and the check that every
// public op has a row with a CUDA case are in test_ops.
#include "tests/gpu/gpu_util.h"
#include "tests/ops/op_table.h"

using namespace iris;

TEST_CASE("gpu op table: CUDA f32 (TF32 off) matches the float64 reference forward and backward") {
  IRIS_GPU_TEST_BEGIN();
  NumericsGuard numerics(/*tf32=*/false);
  CHECK(optable::run_column(optable::cuda_f32) > 0);
}

TEST_CASE("gpu op table: CUDA bf16 matches the float64 reference forward and backward") {
  IRIS_GPU_TEST_BEGIN();
  NumericsGuard numerics(/*tf32=*/false);
  CHECK(optable::run_column(optable::cuda_bf16) > 0);
}

TEST_CASE("gpu op table: CUDA f32 under bf16 autocast matches the float64 reference forward and backward") {
  IRIS_GPU_TEST_BEGIN();
  NumericsGuard numerics(/*tf32=*/false);
  CHECK(optable::run_column(optable::cuda_autocast) > 0);
}
