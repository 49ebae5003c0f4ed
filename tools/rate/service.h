// What `iris rate serve` answers, without the HTTP: the study's state (each rater's next trial), the page's
// API calls and their validation, and the answer record. Unit tests drive it directly; http_server.h puts it
// behind cpp-httplib.
//
// API (every reply is JSON, except images):
//   study                      {question, view_ms, display_px, pixelated, show_input, trials}
//   next(rater)                {done, trial, answered, total}: the rater's next trial, or done
//   image(rater, trial, side)  the PNG of side left / right / input of the rater's current trial; any other
//                              trial is refused (404): a page can only show what the rater is asked now
//   answer(body)               body {rater, trial, choice: "left"|"right", response_ms}: only the rater's
//                              current trial is accepted (an earlier one is a repeat: 409); recorded (fsync'd)
//                              before the reply says {ok, answered, total, done}
// Refusals are {"error": "..."} with a 4xx status and change nothing.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "tools/rate/answers.h"
#include "tools/rate/study.h"

namespace iris::rate {

struct Reply {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
};

// {"error": message} with `status`.
Reply error_reply(int status, const std::string& message);

class RateService {
 public:
  // Opens the study's answers (continuing every rater where they stopped) and checks that each recorded
  // answer is what the study's plan says that rater's trial was: answers of another study are refused.
  RateService(std::string dir, StudyConfig study, const std::function<void(const std::string&)>& warn);

  const StudyConfig& study() const { return study_; }
  const std::string& dir() const { return dir_; }
  int64_t answers_recorded() const;

  Reply study_info() const;
  Reply next(const std::string& rater);
  Reply image(const std::string& rater, const std::string& trial, const std::string& side);
  Reply answer(const std::string& body);

 private:
  struct RaterState {
    std::vector<Trial> plan;
    int64_t answered = 0;
    std::chrono::steady_clock::time_point served{};  // when `next` last handed out the current trial
    bool was_served = false;
  };
  RaterState& state_of(const std::string& rater);  // mu_ held

  std::string dir_;
  StudyConfig study_;
  mutable std::mutex mu_;
  std::unique_ptr<AnswerLog> log_;
  std::map<std::string, RaterState> raters_;
};

}  // namespace iris::rate
