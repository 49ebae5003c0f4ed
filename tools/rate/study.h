// A human 2AFC study (SR3's "fool rate"): what it compares and how each rater's trials are drawn.
//
// A study is a folder:
//   study.json      this description (StudyConfig), written once when the study is created (atomically)
//   answers.jsonl   one JSON line per answer, appended as raters answer (answers.h)
//   images/truth/NNNNNN.png             the reference (camera) images, one per study image
//   images/input/NNNNNN.png             the low-res inputs (only for studies that show them)
//   images/methods/<name>/NNNNNN.png    each method's output for each study image
//   .lock           held by the one `iris rate serve` of the study
//   report.json, fool_rate.png          written by `iris rate report`
//
// A rater's trials are a pure function of (study seed, rater id): a server that restarts, or any other
// process, draws the same trials in the same order with the same sides, so an answer records its trial
// number and the plan says what was shown.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace iris::rate {

inline constexpr const char* kStudyFormat = "iris-rate-study";
inline constexpr int kStudyFormatVersion = 1;
// SR3's question (Saharia et al., section 4.4), asked after the viewing time.
inline constexpr const char* kQuestion = "Which image would you guess is from a camera?";

struct StudyMethod {
  std::string name;     // shown only in reports, never to raters
  std::string source;   // what it was read from, as given ("out/sr3/samples.h5:images")
  uint32_t crc32c = 0;  // of its images as cached (all, in order)
  nlohmann::ordered_json attrs =
      nlohmann::ordered_json::object();  // sampler settings etc., when the file has them
};

struct StudyConfig {
  std::string question = kQuestion;
  uint64_t seed = 0;
  int view_ms = 3000;                       // how long the pair stays on screen (SR3: 3 s)
  int64_t images = 0;                       // study images (each has a truth and one output per method)
  int64_t images_per_method = 0;            // trials per method per rater (<= images)
  int display_px = 0;                       // the longer side of each image on the page, in CSS pixels
  bool show_input = false;                  // SR3's Task-1: the low-res input is shown with the pair
  int height = 0, width = 0, channels = 0;  // every study image's size
  std::string truth_source;
  uint32_t truth_crc32c = 0;
  std::string token_hash;  // token.h's salted hash; empty: no study token
  std::string created;     // UTC time, ISO 8601
  std::vector<std::string> image_names;
  std::vector<StudyMethod> methods;

  int64_t trials_per_rater() const { return images_per_method * static_cast<int64_t>(methods.size()); }
  // Throws naming `where` and the field when the description is inconsistent.
  void validate(const std::string& where) const;
};

nlohmann::ordered_json study_to_json(const StudyConfig& s);
StudyConfig study_from_json(const nlohmann::json& j, const std::string& where);

// Paths inside a study folder. Method names and indices come from study.json (validated), never from
// requests.
std::string study_file(const std::string& dir);    // DIR/study.json
std::string answers_file(const std::string& dir);  // DIR/answers.jsonl
std::string truth_image_file(const std::string& dir, int64_t image);
std::string input_image_file(const std::string& dir, int64_t image);
std::string method_image_file(const std::string& dir, const std::string& method, int64_t image);

bool study_exists(const std::string& dir);
StudyConfig load_study(const std::string& dir);  // throws naming the file when missing or malformed
void save_study(const std::string& dir, const StudyConfig& s);  // atomically

// Method names: 1-32 characters from letters, digits, '_', '-', '.', not starting with '.'; they name
// folders of the image cache and columns of the report. Throws naming the name.
void check_method_name(const std::string& name);
// Rater ids (a name or a token the rater was given): 1-64 characters from letters, digits, space and
// ". _ - @", not only spaces. Returns an empty string when valid, else what is wrong (for HTTP replies).
std::string rater_id_problem(const std::string& id);

// One trial: which method's output for which image, and on which side the output is.
struct Trial {
  int method = 0;
  int64_t image = 0;
  bool output_left = false;
  bool operator==(const Trial&) const = default;
};

// The trials of rater `rater`: for each method, images_per_method images drawn without replacement, all
// shuffled together, each output on a random side; seeded by (study seed, rater id) with Iris's own
// generator (splitmix64) and Fisher-Yates, so that the plan is the same with any compiler and library.
std::vector<Trial> plan_trials(const StudyConfig& s, const std::string& rater);

// 64-bit FNV-1a of the rater id, mixed into the plan's seed (every byte of the id counts).
uint64_t rater_hash(const std::string& rater);

std::string utc_now_iso();  // "2026-03-01T12:34:56Z"

// DIR/.lock, held (flock) for the lifetime of the object, with the holder's pid written in it: one server
// appends to a study's answers at a time. A second is refused naming the holder; a lock left by a killed
// process is free again (the kernel releases flocks with their process).
class StudyLock {
 public:
  explicit StudyLock(const std::string& dir);
  ~StudyLock();
  StudyLock(const StudyLock&) = delete;
  StudyLock& operator=(const StudyLock&) = delete;

 private:
  int fd_ = -1;
};

}  // namespace iris::rate
