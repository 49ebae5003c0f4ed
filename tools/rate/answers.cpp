#include "tools/rate/answers.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "framework/core/error.h"

namespace iris::rate {

namespace {

template <class T>
T field(const nlohmann::json& j, const char* key, const std::string& where) {
  IRIS_CHECK(j.contains(key), where, ": no '", key, "'");
  try {
    return j.at(key).get<T>();
  } catch (const nlohmann::json::exception&) {
    IRIS_THROW(where, ": '", key, "' has the wrong type (", j.at(key).dump(), ")");
  }
}

bool side_is_left(const std::string& side, const char* key, const std::string& where) {
  IRIS_CHECK(side == "left" || side == "right", where, ": '", key, "' is '", side, "', not left or right");
  return side == "left";
}

// The complete lines of `text` (each ended by '\n') and how many bytes they span.
std::vector<std::string> complete_lines(const std::string& text, size_t& complete_bytes) {
  std::vector<std::string> lines;
  size_t start = 0;
  for (size_t i = 0; i < text.size(); ++i)
    if (text[i] == '\n') {
      lines.push_back(text.substr(start, i - start));
      start = i + 1;
    }
  complete_bytes = start;
  return lines;
}

std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  IRIS_CHECK(in, "rate: cannot read '", path, "': ", std::strerror(errno));
  std::ostringstream os;
  os << in.rdbuf();
  return os.str();
}

std::vector<Answer> parse_lines(const std::string& path, const std::vector<std::string>& lines) {
  std::vector<Answer> out;
  for (size_t i = 0; i < lines.size(); ++i) {
    if (lines[i].empty()) continue;
    const std::string where = "rate: '" + path + "' line " + std::to_string(i + 1);
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(lines[i]);
    } catch (const nlohmann::json::exception& e) {
      IRIS_THROW(where, " is not valid JSON: ", e.what());
    }
    out.push_back(answer_from_json(j, where));
  }
  return out;
}

}  // namespace

nlohmann::ordered_json answer_to_json(const Answer& a) {
  return {{"rater", a.rater},
          {"trial", a.trial},
          {"method", a.method},
          {"image", a.image},
          {"image_name", a.image_name},
          {"output_side", a.output_left ? "left" : "right"},
          {"choice", a.choice_left ? "left" : "right"},
          {"fooled", a.fooled()},
          {"response_ms", a.response_ms},
          {"server_ms", a.server_ms},
          {"time", a.time}};
}

Answer answer_from_json(const nlohmann::json& j, const std::string& where) {
  IRIS_CHECK(j.is_object(), where, ": not a JSON object");
  Answer a;
  a.rater = field<std::string>(j, "rater", where);
  a.trial = field<int64_t>(j, "trial", where);
  a.method = field<std::string>(j, "method", where);
  a.image = field<int64_t>(j, "image", where);
  a.image_name = field<std::string>(j, "image_name", where);
  a.output_left = side_is_left(field<std::string>(j, "output_side", where), "output_side", where);
  a.choice_left = side_is_left(field<std::string>(j, "choice", where), "choice", where);
  a.response_ms = field<double>(j, "response_ms", where);
  a.server_ms = field<double>(j, "server_ms", where);
  a.time = field<std::string>(j, "time", where);
  IRIS_CHECK(a.trial >= 0 && a.image >= 0 && a.response_ms >= 0, where,
             ": negative trial, image or response time");
  return a;
}

std::vector<Answer> read_answers(const std::string& path,
                                 const std::function<void(const std::string&)>& warn) {
  if (!std::filesystem::exists(path)) return {};
  const std::string text = read_all(path);
  size_t complete = 0;
  const std::vector<std::string> lines = complete_lines(text, complete);
  if (complete < text.size())
    warn("'" + path + "' ends in an incomplete line (" + std::to_string(text.size() - complete) +
         " bytes without a newline: a write cut short); it is not counted");
  return parse_lines(path, lines);
}

AnswerLog::AnswerLog(std::string path, const std::function<void(const std::string&)>& warn)
    : path_(std::move(path)) {
  fd_ = ::open(path_.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  IRIS_CHECK(fd_ >= 0, "rate: cannot open '", path_, "' for appending: ", std::strerror(errno));
  try {
    const std::string text = read_all(path_);
    size_t complete = 0;
    answers_ = parse_lines(path_, complete_lines(text, complete));
    if (complete < text.size()) {
      // A torn line can only be the last one, and an append after it would glue the next answer to it.
      IRIS_CHECK(::ftruncate(fd_, static_cast<off_t>(complete)) == 0,
                 "rate: cannot cut the incomplete last line off '", path_, "': ", std::strerror(errno));
      IRIS_CHECK(::fsync(fd_) == 0, "rate: fsync of '", path_, "' failed: ", std::strerror(errno));
      warn("'" + path_ + "' ended in an incomplete line (" + std::to_string(text.size() - complete) +
           " bytes, a write cut short by a crash); it was removed");
    }
  } catch (...) {
    ::close(fd_);
    throw;
  }
}

AnswerLog::~AnswerLog() {
  if (fd_ >= 0) ::close(fd_);
}

void AnswerLog::append(const Answer& a) {
  const std::string line = answer_to_json(a).dump() + "\n";
  struct stat st {};
  IRIS_CHECK(::fstat(fd_, &st) == 0, "rate: cannot stat '", path_, "': ", std::strerror(errno));
  // One write() of the whole line: O_APPEND places it at the end in one piece. A short write (a full disk)
  // is undone rather than retried, so the file never holds a partial record followed by another.
  const ssize_t n = ::write(fd_, line.data(), line.size());
  const int err = errno;
  if (n != static_cast<ssize_t>(line.size())) {
    if (n > 0 && ::ftruncate(fd_, st.st_size) != 0) {
      IRIS_THROW("rate: a write to '", path_,
                 "' was cut short and could not be undone: ", std::strerror(errno));
    }
    IRIS_THROW("rate: cannot append to '", path_,
               "': ", n < 0 ? std::strerror(err) : "short write (disk full?)");
  }
  if (::fsync(fd_) != 0) {
    const int e = errno;
    // Not known to be on disk: take it back so that the rater is asked again rather than counted twice.
    (void)::ftruncate(fd_, st.st_size);
    IRIS_THROW("rate: fsync of '", path_, "' failed: ", std::strerror(e));
  }
  answers_.push_back(a);
}

}  // namespace iris::rate
