// tools/rate/answers.h: whole lines appended and read back; a torn last line (a crash mid-write) is cut off
// with a warning; a damaged complete line is an error naming the file and line.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>

#include "framework/core/error.h"
#include "tests/common/test_util.h"
#include "tests/rate/rate_test_util.h"
#include "tools/rate/answers.h"

using namespace iris;
using namespace iris::rate;

namespace {

Answer answer(const std::string& rater, int64_t trial, bool fooled) {
  Answer a;
  a.rater = rater;
  a.trial = trial;
  a.method = "sr3";
  a.image = trial * 2;
  a.image_name = "img" + std::to_string(trial * 2);
  a.output_left = true;
  a.choice_left = fooled;
  a.response_ms = 812;
  a.server_ms = 900;
  a.time = "2026-01-01T00:00:00Z";
  return a;
}

}  // namespace

TEST_CASE("AnswerLog appends whole JSON lines that read back as written") {
  test::TempDir dir("rate-log");
  const std::string path = dir.file("answers.jsonl");
  std::vector<std::string> warnings;
  const auto warn = [&](const std::string& w) { warnings.push_back(w); };
  {
    AnswerLog log(path, warn);
    CHECK(log.answers().empty());
    log.append(answer("ann", 0, true));
    log.append(answer("ann", 1, false));
    CHECK(log.answers().size() == 2);
  }
  const std::string text = test::read_text(path);
  CHECK(std::count(text.begin(), text.end(), '\n') == 2);
  CHECK(text.find("\"fooled\":true") != std::string::npos);
  CHECK(text.find("\"output_side\":\"left\"") != std::string::npos);
  AnswerLog again(path, warn);
  REQUIRE(again.answers().size() == 2);
  CHECK(again.answers()[1].trial == 1);
  CHECK_FALSE(again.answers()[1].fooled());
  CHECK(again.answers()[0].fooled());
  CHECK(warnings.empty());
  CHECK(read_answers(path, warn).size() == 2);
  CHECK(read_answers(dir.file("none.jsonl"), warn).empty());
}

TEST_CASE("a torn last line is cut off with a warning, and the next answer starts a clean line") {
  test::TempDir dir("rate-torn");
  const std::string path = dir.file("answers.jsonl");
  {
    AnswerLog log(path, [](const std::string&) {});
    log.append(answer("ann", 0, true));
  }
  std::ofstream(path, std::ios::app) << "{\"rater\":\"ann\",\"tri";  // power lost mid-write
  std::vector<std::string> warnings;
  const auto warn = [&](const std::string& w) { warnings.push_back(w); };
  CHECK(read_answers(path, warn).size() == 1);  // the reader (iris rate report) skips it
  REQUIRE(warnings.size() == 1);
  CHECK(warnings[0].find("incomplete line") != std::string::npos);
  {
    AnswerLog log(path, warn);  // the server cuts it off
    CHECK(log.answers().size() == 1);
    CHECK(warnings.size() == 2);
    log.append(answer("ann", 1, false));
  }
  warnings.clear();
  const auto back = read_answers(path, warn);
  CHECK(back.size() == 2);
  CHECK(warnings.empty());
}

TEST_CASE("a damaged complete line is an error naming the file and the line") {
  test::TempDir dir("rate-bad-line");
  const std::string path = dir.file("answers.jsonl");
  {
    AnswerLog log(path, [](const std::string&) {});
    log.append(answer("ann", 0, true));
  }
  std::ofstream(path, std::ios::app) << "{\"rater\":\"ann\"}\n";
  test::check_throws_with([&] { read_answers(path, [](const std::string&) {}); },
                          {path, "line 2", "no 'trial'"});
  std::ofstream(path, std::ios::app) << "not json\n";
  test::check_throws_with([&] { AnswerLog log(path, [](const std::string&) {}); }, {path, "line 2"});
}
