#include "framework/dist/watchdog.h"

#include <algorithm>
#include <exception>
#include <vector>

#include "framework/core/error.h"
#include "framework/dist/communicator.h"

namespace iris::dist {

Watchdog::Watchdog(double timeout_s) : timeout_s_(timeout_s) {
  IRIS_CHECK(timeout_s >= 0, "collective timeout must be >= 0 seconds (0: none), got ", timeout_s);
}

Watchdog::~Watchdog() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

uint64_t Watchdog::begin(std::string label, Poll poll) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (timeout_s_ <= 0) return 0;
  const uint64_t id = next_id_++;
  entries_.emplace(id, Entry{std::move(label), Clock::now(), std::move(poll)});
  if (!thread_.joinable()) thread_ = std::thread([this] { loop(); });
  return id;
}

void Watchdog::end(uint64_t id) {
  if (id == 0) return;
  std::lock_guard<std::mutex> lock(mutex_);
  entries_.erase(id);
}

void Watchdog::clear() {
  std::lock_guard<std::mutex> lock(mutex_);
  entries_.clear();
}

void Watchdog::loop() {
  std::unique_lock<std::mutex> lock(mutex_);
  while (!stop_) {
    // Check a few times per timeout period (at most once a second, at least every 50 ms).
    const double period = std::clamp(timeout_s_ / 4, 0.05, 1.0);
    cv_.wait_for(lock, std::chrono::duration<double>(period));
    if (stop_) break;
    const auto now = Clock::now();
    std::vector<uint64_t> finished;
    for (auto& [id, e] : entries_) {
      if (e.poll) {
        bool done = false;
        try {
          done = e.poll();
        } catch (const std::exception& ex) {
          abort_job(std::string("collective ") + e.label + " failed: " + ex.what());
        }
        if (done) {
          finished.push_back(id);
          continue;
        }
      }
      const double waited = std::chrono::duration<double>(now - e.start).count();
      if (timeout_s_ > 0 && waited > timeout_s_) {
        abort_job(detail::cat("collective timeout: ", e.label, " has not completed after ",
                              static_cast<int64_t>(waited), " s (limit ", timeout_s_,
                              " s, IRIS_COLLECTIVE_TIMEOUT): another rank failed, is stuck, or did not call "
                              "the same collectives in the same order"));
      }
    }
    for (uint64_t id : finished) entries_.erase(id);
  }
}

}  // namespace iris::dist
