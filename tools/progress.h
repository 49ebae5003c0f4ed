// A progress display for long work (sharding, sampling, evaluation): on a terminal, one line redrawn in
// place with a bar, the count, the rate and the time left; when stderr is a file or a pipe (cluster job
// logs), a plain line every few seconds instead, so logs stay readable. Safe to update from several threads.
//
//   train  [############............]  52%  31,200/60,000  12,480 img/s  ETA 2.3s      (terminal)
//   train: 31,200/60,000 (52%), 12,480 img/s, 2.5s elapsed, ETA 2.3s                  (log file)
//   train: 60,000 img in 4.8s (12,500 img/s)                                           (at the end)
//
// The environment variable IRIS_PROGRESS = bar, lines or off overrides the automatic choice.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <mutex>
#include <string>

namespace iris::tools {

enum class ProgressStyle { automatic, bar, lines, off };

struct ProgressOptions {
  ProgressStyle style = ProgressStyle::automatic;
  std::string unit = "img";        // what is counted, shown with the rate
  double line_interval_s = 10;     // lines style: seconds between lines
  double redraw_interval_s = 0.1;  // bar style: at most this often
  FILE* out = stderr;
};

// The pieces of the display, exposed for tests. `elapsed_s` is the time since the start; the rate is the
// average since the start, and the ETA the remaining count at that rate ("--" before anything is done).
std::string format_rate(double per_second, const std::string& unit);    // "12,480 img/s", "3.52 img/s"
std::string format_eta(int64_t done, int64_t total, double elapsed_s);  // "2.3s", "3m05s", "--"
std::string format_bar_line(const std::string& label, int64_t done, int64_t total, double elapsed_s,
                            const std::string& unit, int bar_width);
std::string format_plain_line(const std::string& label, int64_t done, int64_t total, double elapsed_s,
                              const std::string& unit);
std::string format_final_line(const std::string& label, int64_t done, double elapsed_s,
                              const std::string& unit);

// The style `automatic` resolves to for `out`: IRIS_PROGRESS when set, else bar on a terminal, else lines.
ProgressStyle resolve_progress_style(ProgressStyle requested, FILE* out);

class Progress {
 public:
  Progress(std::string label, int64_t total, ProgressOptions options = {});
  ~Progress();  // finishes if finish() was not called
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

  void add(int64_t n = 1);  // n more items done
  void set(int64_t done);   // the count done so far
  // What is going on inside the current item (sampling: "round 2/5, stage 1/2, step 31/50"), shown after
  // the count on the next redraw (bar) or line (lines); "" clears it.
  void status(const std::string& text);
  // Prints a line of its own (a warning, a skipped file) without garbling the bar, which is redrawn below.
  void message(const std::string& line);
  // Prints the final line ("label: N img in T (R img/s)"); further updates are ignored.
  void finish();

  int64_t done() const;
  double elapsed_s() const;
  ProgressStyle style() const { return style_; }

 private:
  void draw_locked(bool force);
  void clear_locked();

  std::string label_, status_;
  int64_t total_;
  ProgressOptions options_;
  ProgressStyle style_;
  std::chrono::steady_clock::time_point start_;
  double last_draw_s_ = -1e9;
  int64_t done_ = 0;
  bool drawn_ = false, finished_ = false;
  int width_ = 100;  // terminal columns (bar style)
  mutable std::mutex mutex_;
};

}  // namespace iris::tools
