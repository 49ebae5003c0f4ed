#include "tools/progress.h"

#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "tools/common.h"

namespace iris::tools {

std::string format_rate(double per_second, const std::string& unit) {
  char buf[64];
  if (!(per_second >= 0)) per_second = 0;
  if (per_second >= 1000) return with_commas(static_cast<int64_t>(per_second + 0.5)) + " " + unit + "/s";
  std::snprintf(buf, sizeof(buf), per_second >= 10 ? "%.1f %s/s" : "%.2f %s/s", per_second, unit.c_str());
  return buf;
}

std::string format_eta(int64_t done, int64_t total, double elapsed_s) {
  if (done <= 0 || elapsed_s <= 0 || total < done) return "--";
  return human_duration(elapsed_s * static_cast<double>(total - done) / static_cast<double>(done));
}

namespace {
int percent(int64_t done, int64_t total) {
  if (total <= 0) return 100;
  return static_cast<int>(std::min<int64_t>(100, done * 100 / total));
}
double rate(int64_t done, double elapsed_s) {
  return elapsed_s > 0 ? static_cast<double>(done) / elapsed_s : 0.0;
}
}  // namespace

std::string format_bar_line(const std::string& label, int64_t done, int64_t total, double elapsed_s,
                            const std::string& unit, int bar_width) {
  std::string bar;
  if (bar_width > 0) {
    const int64_t filled = total > 0 ? std::min<int64_t>(bar_width, done * bar_width / total) : bar_width;
    bar = "[" + std::string(static_cast<size_t>(filled), '#') +
          std::string(static_cast<size_t>(bar_width - filled), '.') + "] ";
  }
  char pct[16];
  std::snprintf(pct, sizeof(pct), "%3d%%", percent(done, total));
  return label + "  " + bar + pct + "  " + with_commas(done) + "/" + with_commas(total) + "  " +
         format_rate(rate(done, elapsed_s), unit) + "  ETA " + format_eta(done, total, elapsed_s);
}

std::string format_plain_line(const std::string& label, int64_t done, int64_t total, double elapsed_s,
                              const std::string& unit) {
  if (done == 0) return label + ": 0/" + with_commas(total) + ", starting";
  return label + ": " + with_commas(done) + "/" + with_commas(total) + " (" +
         std::to_string(percent(done, total)) + "%), " + format_rate(rate(done, elapsed_s), unit) + ", " +
         human_duration(elapsed_s) + " elapsed, ETA " + format_eta(done, total, elapsed_s);
}

std::string format_final_line(const std::string& label, int64_t done, double elapsed_s,
                              const std::string& unit) {
  return label + ": " + with_commas(done) + " " + unit + " in " + human_duration(elapsed_s) + " (" +
         format_rate(rate(done, elapsed_s), unit) + ")";
}

ProgressStyle resolve_progress_style(ProgressStyle requested, FILE* out) {
  if (requested != ProgressStyle::automatic) return requested;
  if (const char* env = std::getenv("IRIS_PROGRESS"); env && *env) {
    if (std::strcmp(env, "bar") == 0) return ProgressStyle::bar;
    if (std::strcmp(env, "lines") == 0) return ProgressStyle::lines;
    if (std::strcmp(env, "off") == 0) return ProgressStyle::off;
  }
  return out && isatty(fileno(out)) ? ProgressStyle::bar : ProgressStyle::lines;
}

Progress::Progress(std::string label, int64_t total, ProgressOptions options)
    : label_(std::move(label)),
      total_(total),
      options_(std::move(options)),
      style_(resolve_progress_style(options_.style, options_.out)),
      start_(std::chrono::steady_clock::now()) {
  if (style_ == ProgressStyle::bar) {
    winsize ws{};
    if (ioctl(fileno(options_.out), TIOCGWINSZ, &ws) == 0 && ws.ws_col >= 40) width_ = ws.ws_col;
  }
}

Progress::~Progress() {
  finish();
}

double Progress::elapsed_s() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

int64_t Progress::done() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return done_;
}

void Progress::add(int64_t n) {
  std::lock_guard<std::mutex> lock(mutex_);
  done_ += n;
  draw_locked(false);
}

void Progress::set(int64_t done) {
  std::lock_guard<std::mutex> lock(mutex_);
  done_ = done;
  draw_locked(false);
}

void Progress::status(const std::string& text) {
  std::lock_guard<std::mutex> lock(mutex_);
  status_ = text;
  draw_locked(false);
}

// Erases the bar line on a terminal (carriage return, clear to the end of the line).
void Progress::clear_locked() {
  if (style_ == ProgressStyle::bar && drawn_) {
    std::fputs("\r\x1b[K", options_.out);
    drawn_ = false;
  }
}

void Progress::draw_locked(bool force) {
  if (finished_ || style_ == ProgressStyle::off) return;
  const double now = elapsed_s();
  const double interval =
      style_ == ProgressStyle::bar ? options_.redraw_interval_s : options_.line_interval_s;
  if (!force && now - last_draw_s_ < interval) return;
  last_draw_s_ = now;
  if (style_ == ProgressStyle::bar) {
    // Fit the terminal: the bar shrinks first; the rest is cut only on very narrow terminals.
    const std::string extra = status_.empty() ? "" : "  " + status_;
    const std::string bare = format_bar_line(label_, done_, total_, now, options_.unit, 0) + extra;
    const int room = width_ - 1 - static_cast<int>(bare.size()) - 4;
    std::string line =
        format_bar_line(label_, done_, total_, now, options_.unit, std::clamp(room, 0, 30)) + extra;
    if (static_cast<int>(line.size()) >= width_) line.resize(static_cast<size_t>(width_ - 1));
    std::fprintf(options_.out, "\r%s\x1b[K", line.c_str());
    drawn_ = true;
  } else {
    const std::string line = format_plain_line(label_, done_, total_, now, options_.unit);
    std::fprintf(options_.out, "%s%s%s\n", line.c_str(), status_.empty() ? "" : ", ", status_.c_str());
  }
  std::fflush(options_.out);
}

void Progress::message(const std::string& line) {
  std::lock_guard<std::mutex> lock(mutex_);
  const bool redraw = drawn_;
  clear_locked();
  std::fprintf(options_.out, "%s\n", line.c_str());
  if (redraw) draw_locked(true);
  std::fflush(options_.out);
}

void Progress::finish() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (finished_) return;
  clear_locked();
  if (style_ != ProgressStyle::off)
    std::fprintf(options_.out, "%s\n", format_final_line(label_, done_, elapsed_s(), options_.unit).c_str());
  std::fflush(options_.out);
  finished_ = true;
}

}  // namespace iris::tools
