// The collective watchdog: a thread that ends the job when a collective has been in flight for longer than
// the timeout. A rank blocked in MPI_Allreduce (or a GPU stream blocked in an NCCL kernel) because another
// rank died or took another code path would otherwise wait forever; the watchdog turns that into a prompt
// abort_job() naming the operation, on whichever rank notices first.
//
// Blocking collectives hold a Watchdog::Scope for their duration. Asynchronous ones register an entry when
// they start and end it when completed; an entry with a poll function (NCCL: "has the event after the kernel
// fired?") is ended by the watchdog itself once the poll says so, since nobody on the host waits for it.
// The thread starts with the first entry and sleeps on a condition variable; with timeout 0 nothing is
// registered and no thread runs.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>

namespace iris::dist {

class Watchdog {
 public:
  // Returns true once the operation has completed; may throw iris::Error (then the job is aborted with it).
  using Poll = std::function<bool()>;

  explicit Watchdog(double timeout_s);
  ~Watchdog();
  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;

  // Registers an operation in flight; returns its id (0 when the watchdog is off).
  uint64_t begin(std::string label, Poll poll = nullptr);
  void end(uint64_t id);
  // Forgets every entry (a communicator being destroyed: its polls must not run afterwards). Once it returns,
  // no poll function is running.
  void clear();

  class Scope {
   public:
    Scope(Watchdog& w, std::string label) : w_(w), id_(w.begin(std::move(label))) {}
    ~Scope() { w_.end(id_); }
    Scope(const Scope&) = delete;
    Scope& operator=(const Scope&) = delete;

   private:
    Watchdog& w_;
    uint64_t id_;
  };

 private:
  using Clock = std::chrono::steady_clock;
  struct Entry {
    std::string label;
    Clock::time_point start;
    Poll poll;
  };
  void loop();

  mutable std::mutex mutex_;
  std::condition_variable cv_;
  std::map<uint64_t, Entry> entries_;
  uint64_t next_id_ = 1;
  const double timeout_s_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace iris::dist
