#include "tools/rate/study.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "framework/core/error.h"
#include "framework/io/hdf5.h"

namespace iris::rate {

namespace fs = std::filesystem;

namespace {

// splitmix64 (Steele, Lea, Flood 2014): a tiny generator whose output is fixed by its definition, unlike
// std::shuffle and std::uniform_int_distribution, whose results differ between standard libraries.
class SplitMix {
 public:
  explicit SplitMix(uint64_t seed) : s_(seed) {}
  uint64_t next() {
    uint64_t z = (s_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  // Uniform in [0, n) by rejection (no modulo bias).
  uint64_t below(uint64_t n) {
    const uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    for (;;) {
      const uint64_t v = next();
      if (v < limit) return v % n;
    }
  }

 private:
  uint64_t s_;
};

template <class T>
void fisher_yates(std::vector<T>& v, SplitMix& rng) {
  for (size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[rng.below(i)]);
}

std::string image_stem(int64_t image) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%06lld.png", static_cast<long long>(image));
  return buf;
}

template <class T>
T get(const nlohmann::json& j, const char* key, const std::string& where) {
  IRIS_CHECK(j.contains(key), where, ": no '", key, "'");
  try {
    return j.at(key).get<T>();
  } catch (const nlohmann::json::exception& e) {
    IRIS_THROW(where, ": '", key, "' has the wrong type (", e.what(), ")");
  }
}

}  // namespace

uint64_t rater_hash(const std::string& rater) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : rater) h = (h ^ c) * 0x100000001b3ull;
  return h;
}

std::vector<Trial> plan_trials(const StudyConfig& s, const std::string& rater) {
  // One stream per rater; the study seed and the id are mixed so that neighbouring seeds or ids share nothing.
  SplitMix rng(SplitMix(s.seed ^ 0x5EEDull).next() ^ rater_hash(rater));
  std::vector<Trial> trials;
  trials.reserve(static_cast<size_t>(s.trials_per_rater()));
  for (size_t m = 0; m < s.methods.size(); ++m) {
    std::vector<int64_t> images(static_cast<size_t>(s.images));
    for (int64_t i = 0; i < s.images; ++i) images[static_cast<size_t>(i)] = i;
    fisher_yates(images, rng);
    for (int64_t k = 0; k < s.images_per_method; ++k)
      trials.push_back({static_cast<int>(m), images[static_cast<size_t>(k)], false});
  }
  fisher_yates(trials, rng);
  for (Trial& t : trials) t.output_left = (rng.next() >> 63) != 0;
  return trials;
}

void check_method_name(const std::string& name) {
  bool ok = !name.empty() && name.size() <= 32 && name[0] != '.';
  for (char c : name)
    ok = ok && (std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.');
  IRIS_CHECK(ok, "rate: method name '", name,
             "' is not allowed: use 1-32 letters, digits, '_', '-' or '.' (not starting with '.')");
}

std::string rater_id_problem(const std::string& id) {
  if (id.empty()) return "the rater id is empty: give a name or the rater token you were given";
  if (id.size() > 64) return "the rater id is longer than 64 characters";
  bool blank = true;
  for (char c : id) {
    const bool ok = std::isalnum(static_cast<unsigned char>(c)) || c == ' ' || c == '.' || c == '_' ||
                    c == '-' || c == '@';
    if (!ok) return "the rater id may hold only letters, digits, spaces and . _ - @";
    if (c != ' ') blank = false;
  }
  if (blank) return "the rater id is only spaces";
  return "";
}

void StudyConfig::validate(const std::string& where) const {
  IRIS_CHECK(!methods.empty(), where, ": the study has no methods");
  IRIS_CHECK(images > 0, where, ": the study has no images");
  IRIS_CHECK(images_per_method > 0 && images_per_method <= images, where, ": images_per_method ",
             images_per_method, " is not in [1, ", images, "]");
  IRIS_CHECK(view_ms >= 100 && view_ms <= 600000, where, ": view_ms ", view_ms, " is not in [100, 600000]");
  IRIS_CHECK(display_px >= 16 && display_px <= 4096, where, ": display_px ", display_px,
             " is not in [16, 4096]");
  IRIS_CHECK(height > 0 && width > 0 && (channels == 1 || channels == 3), where, ": bad image size ", height,
             "x", width, "x", channels);
  IRIS_CHECK(static_cast<int64_t>(image_names.size()) == images, where, ": ", image_names.size(),
             " image names for ", images, " images");
  for (size_t i = 0; i < methods.size(); ++i) {
    check_method_name(methods[i].name);
    for (size_t j = 0; j < i; ++j)
      IRIS_CHECK(methods[j].name != methods[i].name, where, ": method '", methods[i].name, "' appears twice");
  }
}

nlohmann::ordered_json study_to_json(const StudyConfig& s) {
  nlohmann::ordered_json j;
  j["format"] = kStudyFormat;
  j["format_version"] = kStudyFormatVersion;
  j["created"] = s.created;
  j["question"] = s.question;
  j["seed"] = s.seed;
  j["view_ms"] = s.view_ms;
  j["images"] = s.images;
  j["images_per_method"] = s.images_per_method;
  j["display_px"] = s.display_px;
  j["show_input"] = s.show_input;
  j["height"] = s.height;
  j["width"] = s.width;
  j["channels"] = s.channels;
  j["token_hash"] =
      s.token_hash.empty() ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(s.token_hash);
  j["truth"] = {{"source", s.truth_source}, {"crc32c", s.truth_crc32c}};
  j["methods"] = nlohmann::ordered_json::array();
  for (const auto& m : s.methods)
    j["methods"].push_back(
        {{"name", m.name}, {"source", m.source}, {"crc32c", m.crc32c}, {"attrs", m.attrs}});
  j["image_names"] = s.image_names;
  return j;
}

StudyConfig study_from_json(const nlohmann::json& j, const std::string& where) {
  IRIS_CHECK(j.is_object(), where, ": not a JSON object");
  IRIS_CHECK(j.value("format", "") == kStudyFormat, where, ": not an Iris study (format '",
             j.value("format", ""), "', expected '", kStudyFormat, "')");
  const int version = get<int>(j, "format_version", where);
  IRIS_CHECK(version == kStudyFormatVersion, where, ": format_version ", version,
             " is not supported (this Iris reads ", kStudyFormatVersion, ")");
  StudyConfig s;
  s.created = get<std::string>(j, "created", where);
  s.question = get<std::string>(j, "question", where);
  s.seed = get<uint64_t>(j, "seed", where);
  s.view_ms = get<int>(j, "view_ms", where);
  s.images = get<int64_t>(j, "images", where);
  s.images_per_method = get<int64_t>(j, "images_per_method", where);
  s.display_px = get<int>(j, "display_px", where);
  s.show_input = get<bool>(j, "show_input", where);
  s.height = get<int>(j, "height", where);
  s.width = get<int>(j, "width", where);
  s.channels = get<int>(j, "channels", where);
  if (j.contains("token_hash") && !j["token_hash"].is_null())
    s.token_hash = get<std::string>(j, "token_hash", where);
  const auto& truth = j.at("truth");
  s.truth_source = get<std::string>(truth, "source", where + " truth");
  s.truth_crc32c = get<uint32_t>(truth, "crc32c", where + " truth");
  IRIS_CHECK(j.contains("methods") && j["methods"].is_array(), where, ": no 'methods' list");
  for (const auto& m : j["methods"]) {
    StudyMethod sm;
    sm.name = get<std::string>(m, "name", where + " method");
    sm.source = get<std::string>(m, "source", where + " method '" + sm.name + "'");
    sm.crc32c = get<uint32_t>(m, "crc32c", where + " method '" + sm.name + "'");
    if (m.contains("attrs")) sm.attrs = m["attrs"];
    s.methods.push_back(std::move(sm));
  }
  s.image_names = get<std::vector<std::string>>(j, "image_names", where);
  s.validate(where);
  return s;
}

std::string study_file(const std::string& dir) {
  return (fs::path(dir) / "study.json").string();
}
std::string answers_file(const std::string& dir) {
  return (fs::path(dir) / "answers.jsonl").string();
}
std::string truth_image_file(const std::string& dir, int64_t image) {
  return (fs::path(dir) / "images" / "truth" / image_stem(image)).string();
}
std::string input_image_file(const std::string& dir, int64_t image) {
  return (fs::path(dir) / "images" / "input" / image_stem(image)).string();
}
std::string method_image_file(const std::string& dir, const std::string& method, int64_t image) {
  return (fs::path(dir) / "images" / "methods" / method / image_stem(image)).string();
}

bool study_exists(const std::string& dir) {
  return fs::exists(study_file(dir));
}

StudyConfig load_study(const std::string& dir) {
  const std::string path = study_file(dir);
  IRIS_CHECK(fs::exists(path), "rate: '", dir,
             "' is not a study folder (no study.json); create one with `iris rate "
             "serve --study ",
             dir, " --method NAME=FILE ...`");
  std::ifstream in(path);
  IRIS_CHECK(in, "rate: cannot read '", path, "'");
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    IRIS_THROW("rate: '", path, "' is not valid JSON: ", e.what());
  }
  return study_from_json(j, "rate: '" + path + "'");
}

void save_study(const std::string& dir, const StudyConfig& s) {
  s.validate("rate: study '" + dir + "'");
  h5::write_file_atomic(study_file(dir), study_to_json(s).dump(2) + "\n");
}

std::string utc_now_iso() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

StudyLock::StudyLock(const std::string& dir) {
  const std::string path = (fs::path(dir) / ".lock").string();
  fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  IRIS_CHECK(fd_ >= 0, "rate: cannot create the study lock '", path, "': ", std::strerror(errno));
  if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
    char buf[64] = {0};
    const ssize_t n = ::pread(fd_, buf, sizeof(buf) - 1, 0);
    ::close(fd_);
    fd_ = -1;
    IRIS_THROW("rate: the study '", dir, "' is being served by another process (",
               n > 0 ? "pid " + std::string(buf, static_cast<size_t>(n)) : std::string("holder unknown"),
               "; lock file '", path, "'): one server per study");
  }
  const std::string pid = std::to_string(static_cast<long>(::getpid()));
  // The flock is what excludes; the pid is only for the message above, so failing to write it is harmless.
  const bool written = ::ftruncate(fd_, 0) == 0 &&
                       ::pwrite(fd_, pid.data(), pid.size(), 0) == static_cast<ssize_t>(pid.size());
  (void)written;
}

StudyLock::~StudyLock() {
  if (fd_ >= 0) ::close(fd_);
}

}  // namespace iris::rate
