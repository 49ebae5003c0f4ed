#include "data/tensorboard.h"

#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>

#include "framework/io/hdf5.h"
#include "framework/iris.h"

namespace iris::data {

namespace fs = std::filesystem;

namespace {

// ---- protocol buffer encoding (the wire format: varints, tags = field << 3 | wire type) ----
enum Wire : uint32_t { kVarint = 0, kFixed64 = 1, kBytes = 2, kFixed32 = 5 };

void put_varint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7F) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}
void put_tag(std::string& out, uint32_t field, Wire wire) {
  put_varint(out, (static_cast<uint64_t>(field) << 3) | wire);
}
void put_int(std::string& out, uint32_t field, int64_t v) {
  put_tag(out, field, kVarint);
  put_varint(out, static_cast<uint64_t>(v));  // negative int64: ten bytes, as protobuf does
}
void put_bytes(std::string& out, uint32_t field, const std::string& bytes) {
  put_tag(out, field, kBytes);
  put_varint(out, bytes.size());
  out += bytes;
}
template <typename T>
void put_fixed(std::string& out, uint32_t field, T v) {
  static_assert(sizeof(T) == 4 || sizeof(T) == 8);
  put_tag(out, field, sizeof(T) == 4 ? kFixed32 : kFixed64);
  char b[sizeof(T)];
  std::memcpy(b, &v, sizeof(T));  // little-endian on every machine Iris runs on
  out.append(b, sizeof(T));
}

// An Event with wall_time and step, plus one more encoded field.
std::string event(int64_t step, const std::string& more) {
  std::string e;
  const double now =
      std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  put_fixed(e, 1, now);
  put_int(e, 2, step);
  return e + more;
}

// Event.summary holding one Summary.Value.
std::string summary_of(const std::string& value) {
  std::string summary;
  put_bytes(summary, 1, value);
  std::string field;
  put_bytes(field, 5, summary);
  return field;
}

void put_u32(std::string& out, uint32_t v) {
  char b[4];
  std::memcpy(b, &v, 4);
  out.append(b, 4);
}

}  // namespace

uint32_t tfrecord_masked_crc(const void* data, size_t size) {
  const uint32_t crc = h5::crc32c(data, size);
  return ((crc >> 15) | (crc << 17)) + 0xa282ead8u;
}

namespace {
void make_folder(const std::string& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  IRIS_CHECK(!ec, "tensorboard: cannot create the folder '", dir, "': ", ec.message());
}
}  // namespace

EventWriter::EventWriter(const std::string& dir) {
  make_folder(dir);
  char host[256] = "host";
  (void)::gethostname(host, sizeof(host) - 1);
  const auto secs =
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
          .count();
  const std::string stem = (fs::path(dir) / ("events.out.tfevents." + std::to_string(secs) + "." + host +
                                             "." + std::to_string(::getpid())))
                               .string();
  // Two writers of one process in one folder within a second must not share a file (they would interleave
  // records): a later one gets a suffix, which also sorts it after the first, as TensorBoard reads them.
  path_ = stem;
  for (int n = 1; fs::exists(path_); ++n) path_ = stem + "." + std::to_string(n);
  out_.open(path_, std::ios::binary | std::ios::app);
  IRIS_CHECK(out_.good(), "tensorboard: cannot write '", path_, "' (is the folder writable?)");
  std::string version;
  put_bytes(version, 3, "brain.Event:2");
  write_event(event(0, version));
  flush();
}

void EventWriter::check_folder(const std::string& dir) {
  make_folder(dir);
  const std::string probe = (fs::path(dir) / (".iris-write-check." + std::to_string(::getpid()))).string();
  {
    std::ofstream f(probe, std::ios::binary);
    IRIS_CHECK(f.good(), "tensorboard: cannot write in the folder '", dir, "'");
  }
  std::error_code ec;
  fs::remove(probe, ec);
}

void EventWriter::write_event(const std::string& payload) {
  std::string record;
  const uint64_t length = payload.size();
  char len[8];
  std::memcpy(len, &length, 8);
  record.append(len, 8);
  put_u32(record, tfrecord_masked_crc(len, 8));
  record += payload;
  put_u32(record, tfrecord_masked_crc(payload.data(), payload.size()));
  out_.write(record.data(), static_cast<std::streamsize>(record.size()));
}

void EventWriter::scalar(const std::string& tag, double value, int64_t step) {
  std::string v;
  put_bytes(v, 1, tag);
  put_fixed(v, 2, static_cast<float>(value));
  write_event(event(step, summary_of(v)));
}

void EventWriter::image(const std::string& tag, const Image& img, int64_t step) {
  const std::vector<uint8_t> png = encode_png(img);
  std::string im;
  put_int(im, 1, img.height);
  put_int(im, 2, img.width);
  put_int(im, 3, img.channels);  // colorspace: 1 grey, 3 RGB
  put_bytes(im, 4, std::string(png.begin(), png.end()));
  std::string v;
  put_bytes(v, 1, tag);
  put_bytes(v, 4, im);
  write_event(event(step, summary_of(v)));
}

void EventWriter::text(const std::string& tag, const std::string& text, int64_t step) {
  std::string tensor;
  put_int(tensor, 1, 7);     // DT_STRING
  put_bytes(tensor, 2, "");  // a scalar: a shape with no dimensions
  put_bytes(tensor, 8, text);
  std::string plugin;
  put_bytes(plugin, 1, "text");
  std::string metadata;
  put_bytes(metadata, 1, plugin);
  std::string v;
  put_bytes(v, 1, tag);
  put_bytes(v, 8, tensor);
  put_bytes(v, 9, metadata);
  write_event(event(step, summary_of(v)));
}

void EventWriter::session_start(int64_t step) {
  std::string log;
  put_int(log, 1, 1);  // SessionLog.START
  std::string field;
  put_bytes(field, 7, log);
  write_event(event(step, field));
}

void EventWriter::flush() {
  out_.flush();
  IRIS_CHECK(out_.good(), "tensorboard: writing '", path_, "' failed (disk full or folder gone?)");
}

EventLog::EventLog(std::string dir, std::function<void(const std::string&)> warn, std::string work)
    : dir_(std::move(dir)), work_(std::move(work)), warn_(std::move(warn)) {}

EventWriter& EventLog::open(const std::string& run) {
  auto& w = writers_[run];
  if (!w) w = std::make_unique<EventWriter>(run.empty() ? dir_ : (fs::path(dir_) / run).string());
  return *w;
}

void EventLog::write(const std::string& run, const std::function<void(EventWriter&)>& fn) {
  if (!active_) return;
  try {
    EventWriter& w = open(run);
    fn(w);
    w.flush();
  } catch (const Error& e) {
    if (warn_) warn_("warning: " + e.message() + "; TensorBoard logging stops here, " + work_ + " goes on");
    writers_.clear();
    active_ = false;
  }
}

}  // namespace iris::data
