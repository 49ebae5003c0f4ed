#include "tools/rate/service.h"

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>

#include "framework/core/error.h"

namespace iris::rate {

namespace {

nlohmann::ordered_json progress_json(int64_t answered, int64_t total) {
  return {{"answered", answered}, {"total", total}, {"done", answered >= total}};
}

Reply json_reply(const nlohmann::ordered_json& j) {
  return {200, "application/json", j.dump()};
}

// A whole number in [0, 2^62) written in decimal digits only ("3", not "+3", "3.0" or " 3").
bool parse_index(const std::string& s, int64_t& out) {
  if (s.empty() || s.size() > 18) return false;
  const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && p == s.data() + s.size() && out >= 0 &&
         std::isdigit(static_cast<unsigned char>(s[0]));
}

std::string quoted(const std::string& rater) {
  return "'" + rater + "'";
}

}  // namespace

Reply error_reply(int status, const std::string& message) {
  return {status, "application/json", nlohmann::ordered_json{{"error", message}}.dump()};
}

RateService::RateService(std::string dir, StudyConfig study,
                         const std::function<void(const std::string&)>& warn)
    : dir_(std::move(dir)), study_(std::move(study)) {
  log_ = std::make_unique<AnswerLog>(answers_file(dir_), warn);
  const auto& answers = log_->answers();
  for (size_t k = 0; k < answers.size(); ++k) {
    const Answer& a = answers[k];
    const std::string where = "rate: '" + log_->path() + "' line " + std::to_string(k + 1);
    const std::string problem = rater_id_problem(a.rater);
    IRIS_CHECK(problem.empty(), where, ": ", problem);
    RaterState& st = state_of(a.rater);
    // Answers are accepted only for the rater's current trial, so a rater's lines count 0, 1, 2, ...
    IRIS_CHECK(a.trial == st.answered, where, ": rater ", quoted(a.rater), " answered trial ", a.trial,
               " after ", st.answered, " answers; the file was edited or belongs to another study");
    IRIS_CHECK(a.trial < static_cast<int64_t>(st.plan.size()), where, ": trial ", a.trial,
               " is beyond the study's ", st.plan.size(), " trials per rater");
    const Trial& t = st.plan[static_cast<size_t>(a.trial)];
    const std::string& method = study_.methods[static_cast<size_t>(t.method)].name;
    IRIS_CHECK(a.method == method && a.image == t.image && a.output_left == t.output_left, where, ": rater ",
               quoted(a.rater), "'s trial ", a.trial, " is recorded as method '", a.method, "', image ",
               a.image, ", but this study (its seed and methods) shows method '", method, "', image ",
               t.image, ": the answers belong to another study.json");
    st.answered = a.trial + 1;
  }
}

RateService::RaterState& RateService::state_of(const std::string& rater) {
  auto it = raters_.find(rater);
  if (it == raters_.end()) {
    it = raters_.emplace(rater, RaterState{}).first;
    it->second.plan = plan_trials(study_, rater);
  }
  return it->second;
}

int64_t RateService::answers_recorded() const {
  std::lock_guard<std::mutex> lock(mu_);
  return static_cast<int64_t>(log_->answers().size());
}

Reply RateService::study_info() const {
  const int longest = std::max(study_.height, study_.width);
  return json_reply({{"question", study_.question},
                     {"view_ms", study_.view_ms},
                     {"display_px", study_.display_px},
                     {"pixelated", study_.display_px > longest},
                     {"show_input", study_.show_input},
                     {"trials", study_.trials_per_rater()}});
}

Reply RateService::next(const std::string& rater) {
  const std::string problem = rater_id_problem(rater);
  if (!problem.empty()) return error_reply(400, problem);
  std::lock_guard<std::mutex> lock(mu_);
  RaterState& st = state_of(rater);
  const int64_t total = static_cast<int64_t>(st.plan.size());
  nlohmann::ordered_json j = progress_json(st.answered, total);
  if (st.answered < total) {
    j["trial"] = st.answered;
    st.served = std::chrono::steady_clock::now();
    st.was_served = true;
  }
  return json_reply(j);
}

Reply RateService::image(const std::string& rater, const std::string& trial_text, const std::string& side) {
  const std::string problem = rater_id_problem(rater);
  if (!problem.empty()) return error_reply(400, problem);
  int64_t trial = 0;
  if (!parse_index(trial_text, trial))
    return error_reply(400, "'trial' must be a trial number, not '" + trial_text + "'");
  if (side != "left" && side != "right" && !(side == "input" && study_.show_input))
    return error_reply(
        400, study_.show_input ? "'side' must be left, right or input" : "'side' must be left or right");
  std::string path;
  {
    std::lock_guard<std::mutex> lock(mu_);
    RaterState& st = state_of(rater);
    if (trial != st.answered || trial >= static_cast<int64_t>(st.plan.size()))
      return error_reply(404, "unknown trial " + std::to_string(trial) + ": the current trial of rater " +
                                  quoted(rater) + " is " + std::to_string(st.answered) + " of " +
                                  std::to_string(st.plan.size()));
    const Trial& t = st.plan[static_cast<size_t>(trial)];
    if (side == "input") {
      path = input_image_file(dir_, t.image);
    } else {
      const bool output = (side == "left") == t.output_left;
      path = output ? method_image_file(dir_, study_.methods[static_cast<size_t>(t.method)].name, t.image)
                    : truth_image_file(dir_, t.image);
    }
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return error_reply(500, "the study's image cache is missing an image (" + path + ")");
  std::ostringstream os;
  os << in.rdbuf();
  return {200, "image/png", os.str()};
}

Reply RateService::answer(const std::string& body) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(body);
  } catch (const nlohmann::json::exception&) {
    return error_reply(400, "the answer is not valid JSON");
  }
  if (!j.is_object()) return error_reply(400, "the answer must be a JSON object");
  static const std::set<std::string> keys = {"rater", "trial", "choice", "response_ms"};
  for (const auto& [k, v] : j.items())
    if (!keys.count(k)) return error_reply(400, "unknown field '" + k + "' in the answer");
  for (const auto& k : keys)
    if (!j.contains(k)) return error_reply(400, "the answer has no '" + k + "'");
  if (!j["rater"].is_string()) return error_reply(400, "'rater' must be a string");
  const std::string rater = j["rater"].get<std::string>();
  const std::string problem = rater_id_problem(rater);
  if (!problem.empty()) return error_reply(400, problem);
  if (!j["trial"].is_number_integer() || j["trial"].get<int64_t>() < 0)
    return error_reply(400, "'trial' must be a trial number");
  const int64_t trial = j["trial"].get<int64_t>();
  if (!j["choice"].is_string() || (j["choice"] != "left" && j["choice"] != "right"))
    return error_reply(400, "'choice' must be \"left\" or \"right\"");
  if (!j["response_ms"].is_number() || !std::isfinite(j["response_ms"].get<double>()) ||
      j["response_ms"].get<double>() < 0 || j["response_ms"].get<double>() > 3'600'000)
    return error_reply(400, "'response_ms' must be a number of milliseconds in [0, 3600000]");

  std::lock_guard<std::mutex> lock(mu_);
  RaterState& st = state_of(rater);
  const int64_t total = static_cast<int64_t>(st.plan.size());
  if (trial >= total)
    return error_reply(404, "unknown trial " + std::to_string(trial) + ": rater " + quoted(rater) + " has " +
                                std::to_string(total) + " trials (0-" + std::to_string(total - 1) + ")");
  if (trial < st.answered)
    return error_reply(409, "trial " + std::to_string(trial) + " was already answered by rater " +
                                quoted(rater) + "; the first answer stands");
  if (trial > st.answered)
    return error_reply(409, "trial " + std::to_string(trial) + " is not the current trial of rater " +
                                quoted(rater) + " (" + std::to_string(st.answered) + ")");
  const Trial& t = st.plan[static_cast<size_t>(trial)];
  Answer a;
  a.rater = rater;
  a.trial = trial;
  a.method = study_.methods[static_cast<size_t>(t.method)].name;
  a.image = t.image;
  a.image_name = study_.image_names[static_cast<size_t>(t.image)];
  a.output_left = t.output_left;
  a.choice_left = j["choice"] == "left";
  a.response_ms = std::round(j["response_ms"].get<double>());
  a.server_ms =
      st.was_served
          ? std::round(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - st.served)
                           .count())
          : -1;
  a.time = utc_now_iso();
  try {
    log_->append(a);
  } catch (const Error& e) {
    return error_reply(500, "the answer could not be recorded: " + e.message());
  }
  st.answered = trial + 1;
  st.was_served = false;
  nlohmann::ordered_json reply = {{"ok", true}};
  reply.update(progress_json(st.answered, total));
  return json_reply(reply);
}

}  // namespace iris::rate
