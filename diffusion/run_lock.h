// The run-folder lock: one trainer per run folder. Two trainers writing the same checkpoints, metrics and
// samples would interleave and prune each other's files.
#pragma once

#include <functional>
#include <string>

namespace iris::diffusion {

// Holds "<run_dir>/.lock" (flock, plus the holder's host and pid written into it) for its lifetime.
// Refused, naming the holder's host and pid, when a live process holds it. A lock left by a process that is
// gone (killed, crashed) is taken over, and `warn` told whose it was. On file systems without flock, the
// recorded holder decides: the same host with a pid that is not running is stale; another host's lock is
// refused (remove the file when that job is known to be dead).
class RunLock {
 public:
  RunLock(const std::string& run_dir, const std::function<void(const std::string&)>& warn);
  ~RunLock();  // empties the file (a clean exit leaves no holder behind) and releases it
  RunLock(const RunLock&) = delete;
  RunLock& operator=(const RunLock&) = delete;

  const std::string& path() const { return path_; }

 private:
  std::string path_;
  int fd_ = -1;
};

}  // namespace iris::diffusion
