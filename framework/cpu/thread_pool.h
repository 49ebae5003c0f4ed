// The CPU worker threads behind every parallel kernel.
//
// Why not OpenMP: its idle threads spin for a long time before sleeping, and when the cores are shared (the
// data loader's threads, another process, ctest running suites side by side) the spinning threads take
// the cores from the working ones. Iris measured a training step 30x slower that way on a 2-core machine.
// This pool spins only briefly, then sleeps on a condition variable.
//
// Work is a number of tasks handed out dynamically; kernels make each task write a fixed part of the
// output, so results never depend on which thread ran which task.
#pragma once

#include <cstdint>
#include <functional>

namespace iris::cpu {

// Runs f(task, worker) for every task in [0, tasks) on at most `threads` threads (the caller is worker 0;
// worker < threads). Returns when all tasks are done; rethrows the first exception a task threw. Called
// from inside a task, it runs serially on the calling thread.
void run_parallel(int64_t tasks, int threads, const std::function<void(int64_t task, int worker)>& f);

// True on a pool worker, or on the caller while it runs tasks of a parallel call.
bool inside_parallel_call();

// The machine's usable cores (the process's CPU affinity), at least 1.
int available_cores();

}  // namespace iris::cpu
