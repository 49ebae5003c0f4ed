// The progress display: its formatted pieces, the plain-line style used in logs, the redrawn bar style,
// messages between updates, and updates from several threads.
#include <doctest/doctest.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "tools/progress.h"

using namespace iris::tools;

namespace {

// Everything written to a temporary file (not a terminal).
std::string contents(FILE* f) {
  std::fflush(f);
  std::rewind(f);
  std::string s;
  char buf[1024];
  size_t n = 0;
  while ((n = std::fread(buf, 1, sizeof(buf), f)) > 0) s.append(buf, n);
  return s;
}

int count_of(const std::string& s, const std::string& what) {
  int n = 0;
  for (size_t at = s.find(what); at != std::string::npos; at = s.find(what, at + what.size())) ++n;
  return n;
}

}  // namespace

TEST_CASE("progress: rates, times left and lines") {
  CHECK(format_rate(12480.4, "img") == "12,480 img/s");
  CHECK(format_rate(352.17, "img") == "352.2 img/s");
  CHECK(format_rate(3.5217, "step") == "3.52 step/s");
  CHECK(format_eta(30, 60, 3.0) == "3.0s");  // 10 per second, 30 left
  CHECK(format_eta(1, 61, 3.0) == "3m00s");  // 1 per 3 s, 60 left
  CHECK(format_eta(0, 10, 5.0) == "--");     // nothing done yet: unknown
  CHECK(format_eta(10, 10, 5.0) == "0.0s");
  CHECK(format_bar_line("train", 50, 100, 5.0, "img", 10) ==
        "train  [#####.....]  50%  50/100  10.0 img/s  ETA 5.0s");
  CHECK(format_bar_line("x", 100, 100, 1.0, "img", 4) == "x  [####] 100%  100/100  100.0 img/s  ETA 0.0s");
  CHECK(format_plain_line("test", 2500, 10000, 0.5, "img") ==
        "test: 2,500/10,000 (25%), 5,000 img/s, 0.5s elapsed, ETA 1.5s");
  CHECK(format_plain_line("test", 0, 10000, 0.5, "img") == "test: 0/10,000, starting");
  CHECK(format_final_line("train", 60000, 2.5, "img") == "train: 60,000 img in 2.5s (24,000 img/s)");
}

TEST_CASE("progress: plain lines in logs, at most one per interval, and a final line") {
  FILE* f = std::tmpfile();
  REQUIRE(f != nullptr);
  {
    ProgressOptions o;
    o.style = ProgressStyle::lines;
    o.out = f;
    o.line_interval_s = 3600;  // only the first update prints before the end
    Progress p("train", 100, o);
    for (int i = 0; i < 100; ++i) p.add(1);
    p.message("skipped: a.png");
    CHECK(p.done() == 100);
  }  // the destructor finishes
  const std::string s = contents(f);
  std::fclose(f);
  CHECK(s.find('\r') == std::string::npos);
  CHECK(count_of(s, "\n") == 3);
  CHECK(s.rfind("train: 1/100 (1%)", 0) == 0);
  CHECK(count_of(s, "skipped: a.png\n") == 1);
  CHECK(count_of(s, "train: 100 img in ") == 1);
}

TEST_CASE("progress: the bar is redrawn in place and messages do not garble it") {
  FILE* f = std::tmpfile();
  REQUIRE(f != nullptr);
  ProgressOptions o;
  o.style = ProgressStyle::bar;
  o.out = f;
  o.redraw_interval_s = 0;
  Progress p("val", 4, o);
  p.add(1);
  p.message("warning");
  p.add(3);
  p.finish();
  p.add(1);  // ignored after finish
  const std::string s = contents(f);
  std::fclose(f);
  CHECK(count_of(s, "\r") >= 3);
  CHECK(s.find("\r\x1b[Kwarning\n") != std::string::npos);  // the bar is erased before the message
  CHECK(s.find("4/4") != std::string::npos);
  CHECK(s.find("val: 4 img in ") != std::string::npos);
  CHECK(s.find("5/4") == std::string::npos);
  CHECK(s.back() == '\n');
}

TEST_CASE("progress: updates from several threads are all counted") {
  FILE* f = std::tmpfile();
  REQUIRE(f != nullptr);
  ProgressOptions o;
  o.style = ProgressStyle::off;
  o.out = f;
  Progress p("work", 4000, o);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < 1000; ++i) p.add(1);
    });
  for (auto& t : threads) t.join();
  CHECK(p.done() == 4000);
  p.finish();
  CHECK(contents(f).empty());  // style off prints nothing
  std::fclose(f);
  CHECK(resolve_progress_style(ProgressStyle::lines, stderr) == ProgressStyle::lines);
}

TEST_CASE("progress: a status shows what the current item is doing, in both styles, until cleared") {
  for (ProgressStyle style : {ProgressStyle::lines, ProgressStyle::bar}) {
    FILE* f = std::tmpfile();
    REQUIRE(f != nullptr);
    ProgressOptions o;
    o.style = style;
    o.out = f;
    o.line_interval_s = 0;
    o.redraw_interval_s = 0;
    Progress p("sample", 4, o);
    p.status("round 1/2, step 3/10");
    p.set(2);
    p.status("");
    p.set(4);
    p.finish();
    const std::string s = contents(f);
    std::fclose(f);
    CAPTURE(s);
    CHECK(count_of(s, "round 1/2, step 3/10") == 2);  // drawn by status() and by the update after it
    CHECK(s.find("4/4") != std::string::npos);
    CHECK(s.find("sample: 4 img in ") != std::string::npos);
  }
}

TEST_CASE("progress: IRIS_PROGRESS chooses the style unless one is asked for") {
  FILE* f = std::tmpfile();
  REQUIRE(f != nullptr);
  ::setenv("IRIS_PROGRESS", "off", 1);
  CHECK(resolve_progress_style(ProgressStyle::automatic, f) == ProgressStyle::off);
  CHECK(resolve_progress_style(ProgressStyle::bar, f) == ProgressStyle::bar);
  ::setenv("IRIS_PROGRESS", "bar", 1);
  CHECK(resolve_progress_style(ProgressStyle::automatic, f) == ProgressStyle::bar);
  ::unsetenv("IRIS_PROGRESS");
  CHECK(resolve_progress_style(ProgressStyle::automatic, f) == ProgressStyle::lines);  // not a terminal
  std::fclose(f);
}
