#include "framework/cpu/thread_pool.h"

#include <sched.h>

#include <atomic>
#include <condition_variable>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace iris::cpu {

namespace {

thread_local bool t_inside = false;

inline void cpu_relax() {
#if defined(__x86_64__)
  _mm_pause();
#endif
}

// One parallel call: tasks are claimed with an atomic counter; the last finisher wakes the caller.
struct Job {
  const std::function<void(int64_t, int)>* fn = nullptr;
  int64_t tasks = 0;
  int workers = 0;  // helper threads taking part (besides the caller)
  std::atomic<int64_t> next{0};
  std::atomic<int> active{0};  // helpers still working on this job
  std::mutex error_mutex;
  std::exception_ptr error;

  void work(int worker) {
    for (int64_t t = next.fetch_add(1); t < tasks; t = next.fetch_add(1)) {
      try {
        (*fn)(t, worker);
      } catch (...) {
        std::lock_guard<std::mutex> lock(error_mutex);
        if (!error) error = std::current_exception();
        next.store(tasks);  // stop handing out tasks
      }
    }
  }
};

class Pool {
 public:
  static Pool& instance() {
    static Pool pool;
    return pool;
  }

  void run(int64_t tasks, int threads, const std::function<void(int64_t, int)>& f) {
    std::lock_guard<std::mutex> one_call_at_a_time(call_mutex_);
    ensure_workers(threads - 1);
    Job job;
    job.fn = &f;
    job.tasks = tasks;
    job.workers = threads - 1;
    job.active.store(job.workers);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      job_ = &job;
      ++generation_;
      generation_atomic_.store(generation_, std::memory_order_release);
    }
    wake_.notify_all();
    t_inside = true;
    job.work(0);
    t_inside = false;
    // Wait for the helpers: spin briefly (they usually finish together with us), then sleep.
    for (int i = 0; i < 4000 && job.active.load(std::memory_order_acquire) > 0; ++i) cpu_relax();
    if (job.active.load(std::memory_order_acquire) > 0) {
      std::unique_lock<std::mutex> lock(mutex_);
      done_.wait(lock, [&] { return job.active.load(std::memory_order_acquire) == 0; });
    }
    {
      std::lock_guard<std::mutex> lock(mutex_);
      job_ = nullptr;
    }
    if (job.error) std::rethrow_exception(job.error);
  }

  ~Pool() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_ = true;
    }
    wake_.notify_all();
    for (auto& t : threads_) t.join();
  }

 private:
  void ensure_workers(int n) {
    while (static_cast<int>(threads_.size()) < n) {
      const int id = static_cast<int>(threads_.size()) + 1;
      threads_.emplace_back([this, id] { loop(id); });
    }
  }

  void loop(int id) {
    t_inside = true;
    uint64_t seen = 0;
    for (;;) {
      Job* job = nullptr;
      // Spin a little for the next call (kernels come in quick succession), then sleep.
      for (int i = 0; i < 2000; ++i) {
        if (generation_atomic_.load(std::memory_order_acquire) != seen) break;
        cpu_relax();
      }
      {
        std::unique_lock<std::mutex> lock(mutex_);
        wake_.wait(lock, [&] { return stop_ || generation_ != seen; });
        if (stop_) return;
        seen = generation_;
        // Decide under the lock whether this call needs us: a call that does not can finish and destroy its
        // Job (on the caller's stack) at any moment after we let go of the lock, so a worker that is not
        // needed must never touch it. A needed worker may: the caller waits for its `active` decrement.
        job = job_ && id <= job_->workers ? job_ : nullptr;
      }
      if (!job) continue;  // not needed for this call
      job->work(id);
      if (job->active.fetch_sub(1, std::memory_order_acq_rel) == 1) {
        std::lock_guard<std::mutex> lock(mutex_);
        done_.notify_all();
      }
    }
  }

  std::mutex call_mutex_;
  std::mutex mutex_;
  std::condition_variable wake_, done_;
  std::vector<std::thread> threads_;
  Job* job_ = nullptr;
  uint64_t generation_ = 0;
  std::atomic<uint64_t> generation_atomic_{0};  // the same, read by spinning workers without the lock
  bool stop_ = false;
};

}  // namespace

void run_parallel(int64_t tasks, int threads, const std::function<void(int64_t, int)>& f) {
  if (tasks <= 0) return;
  if (threads > tasks) threads = static_cast<int>(tasks);
  if (threads <= 1 || t_inside) {
    for (int64_t t = 0; t < tasks; ++t) f(t, 0);
    return;
  }
  Pool::instance().run(tasks, threads, f);
}

bool inside_parallel_call() { return t_inside; }

int available_cores() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    const int n = CPU_COUNT(&set);
    if (n > 0) return n;
  }
  const unsigned hc = std::thread::hardware_concurrency();
  return hc > 0 ? static_cast<int>(hc) : 1;
}

}  // namespace iris::cpu
