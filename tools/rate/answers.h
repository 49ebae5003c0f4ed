// The answers of a study: STUDY/answers.jsonl, one JSON object per line, appended as raters answer.
//
// A line is written with one write() on a file opened with O_APPEND, then fsync'd before the rater is told
// it counted: a killed server loses nothing that was acknowledged, and a line is either wholly there or (a
// machine that lost power mid-write) a torn last line without its newline, which the next open cuts off with
// a warning. One process appends at a time (the server holds the study's lock).
//
// A line: {"rater": "ann", "trial": 3, "method": "sr3", "image": 17, "image_name": "000017",
//          "output_side": "left", "choice": "right", "fooled": false, "response_ms": 1240,
//          "server_ms": 1302, "time": "2026-03-01T12:34:56Z"}
// `fooled`: the rater took the method's output for the camera image (choice == output_side).
// `response_ms`: from the moment the pair appeared to the answer, measured by the page; `server_ms`: from
// the server handing out the trial to the answer arriving (a cross-check that needs no trust in the page;
// -1 when an earlier server process handed it out).
#pragma once

#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace iris::rate {

struct Answer {
  std::string rater;
  int64_t trial = 0;
  std::string method;
  int64_t image = 0;
  std::string image_name;
  bool output_left = false;
  bool choice_left = false;
  double response_ms = 0;
  double server_ms = 0;
  std::string time;

  bool fooled() const { return output_left == choice_left; }
};

nlohmann::ordered_json answer_to_json(const Answer& a);
// Throws naming `where` (file and line) and the field when the record is malformed.
Answer answer_from_json(const nlohmann::json& j, const std::string& where);

// Reads every complete line of an answers file (none when the file does not exist). An incomplete last line
// (no newline) is skipped and `warn` told; a malformed complete line is an error naming the file and line.
std::vector<Answer> read_answers(const std::string& path,
                                 const std::function<void(const std::string&)>& warn);

class AnswerLog {
 public:
  // Opens (creating) `path` for appending after reading what it holds; a torn last line is cut off (the
  // file truncated to its last newline) and `warn` told what was dropped.
  AnswerLog(std::string path, const std::function<void(const std::string&)>& warn);
  ~AnswerLog();
  AnswerLog(const AnswerLog&) = delete;
  AnswerLog& operator=(const AnswerLog&) = delete;

  const std::vector<Answer>& answers() const { return answers_; }
  const std::string& path() const { return path_; }
  // Appends one line and fsyncs it; on failure (a full disk) the file is cut back to where it was, nothing
  // is recorded and iris::Error names the file.
  void append(const Answer& a);

 private:
  std::string path_;
  int fd_ = -1;
  std::vector<Answer> answers_;
};

}  // namespace iris::rate
