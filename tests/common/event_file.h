// A reader of TensorBoard event files for the tests, written from the format (data/tensorboard.h lists the
// records and fields) and independent of Iris's writer: it frames the TFRecords, checks both masked CRC-32Cs
// of every record, and decodes the protocol-buffer fields Iris writes, skipping any other field by its wire
// type. Anything malformed throws std::runtime_error naming the file and the offset (the test fails with it,
// or checks it with CHECK_THROWS).
//
// EventView replays a folder as TensorBoard does (its files in name order, purge_orphaned_data on): a
// SessionLog START at step s drops the events read so far at steps >= s. The interop tests check the same
// files with TensorBoard's own reader.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "framework/io/hdf5.h"

namespace iris::test {

struct EventValue {
  std::string tag;
  enum Kind { scalar, image, text, other } kind = other;
  float value = 0;                                // scalar
  int64_t height = 0, width = 0, colorspace = 0;  // image
  std::string png;                                // image: the encoded PNG
  std::string str;                                // text
  std::string plugin;                             // metadata's plugin name ("text")
};

struct Event {
  double wall_time = 0;
  int64_t step = 0;
  std::string file_version;    // set on a file's first record
  bool session_start = false;  // a SessionLog START
  std::vector<EventValue> values;
};

namespace event_detail {

template <typename... Args>
[[noreturn]] void fail(const Args&... parts) {
  std::string s;
  ((s += parts), ...);
  throw std::runtime_error(s);
}

// A protocol-buffer message being decoded: fields one by one.
struct Fields {
  const std::string& buf;
  size_t pos = 0;
  std::string where;

  bool more() const { return pos < buf.size(); }
  uint64_t varint() {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (pos >= buf.size()) fail(where, ": a varint runs past the end");
      const auto b = static_cast<uint8_t>(buf[pos++]);
      v |= static_cast<uint64_t>(b & 0x7F) << shift;
      if (!(b & 0x80)) return v;
    }
    fail(where, ": a varint longer than ten bytes");
    return 0;
  }
  // The next field: its number and wire type.
  std::pair<uint32_t, uint32_t> key() {
    const uint64_t k = varint();
    return {static_cast<uint32_t>(k >> 3), static_cast<uint32_t>(k & 7)};
  }
  std::string bytes() {
    const uint64_t n = varint();
    if (n > buf.size() - pos) fail(where, ": a length-delimited field runs past the end");
    std::string s = buf.substr(pos, n);
    pos += n;
    return s;
  }
  template <typename T>
  T fixed() {
    if (sizeof(T) > buf.size() - pos) fail(where, ": a fixed field runs past the end");
    T v;
    std::memcpy(&v, buf.data() + pos, sizeof(T));
    pos += sizeof(T);
    return v;
  }
  void skip(uint32_t wire) {
    switch (wire) {
      case 0:
        (void)varint();
        break;
      case 1:
        pos += 8;
        break;
      case 2:
        (void)bytes();
        break;
      case 5:
        pos += 4;
        break;
      default:
        fail(where, ": wire type ", std::to_string(wire));
    }
    if (pos > buf.size()) fail(where, ": a field runs past the end");
  }
};

inline EventValue decode_value(const std::string& b, const std::string& where) {
  EventValue v;
  Fields f{b, 0, where};
  while (f.more()) {
    const auto [field, wire] = f.key();
    if (field == 1 && wire == 2) {
      v.tag = f.bytes();
    } else if (field == 2 && wire == 5) {
      v.kind = EventValue::scalar;
      v.value = f.fixed<float>();
    } else if (field == 4 && wire == 2) {  // Summary.Image
      v.kind = EventValue::image;
      const std::string im = f.bytes();
      Fields g{im, 0, where + " (image)"};
      while (g.more()) {
        const auto [n, w] = g.key();
        if (n == 1 && w == 0)
          v.height = static_cast<int64_t>(g.varint());
        else if (n == 2 && w == 0)
          v.width = static_cast<int64_t>(g.varint());
        else if (n == 3 && w == 0)
          v.colorspace = static_cast<int64_t>(g.varint());
        else if (n == 4 && w == 2)
          v.png = g.bytes();
        else
          g.skip(w);
      }
    } else if (field == 8 && wire == 2) {  // TensorProto: the text's string_val
      v.kind = EventValue::text;
      const std::string t = f.bytes();
      Fields g{t, 0, where + " (tensor)"};
      while (g.more()) {
        const auto [n, w] = g.key();
        if (n == 8 && w == 2)
          v.str = g.bytes();
        else
          g.skip(w);
      }
    } else if (field == 9 && wire == 2) {  // SummaryMetadata.plugin_data.plugin_name
      const std::string m = f.bytes();
      Fields g{m, 0, where + " (metadata)"};
      while (g.more()) {
        const auto [n, w] = g.key();
        if (n != 1 || w != 2) {
          g.skip(w);
          continue;
        }
        const std::string pd = g.bytes();
        Fields h{pd, 0, where + " (plugin data)"};
        while (h.more()) {
          const auto [k, kw] = h.key();
          if (k == 1 && kw == 2)
            v.plugin = h.bytes();
          else
            h.skip(kw);
        }
      }
    } else {
      f.skip(wire);
    }
  }
  return v;
}

inline Event decode_event(const std::string& b, const std::string& where) {
  Event e;
  Fields f{b, 0, where};
  while (f.more()) {
    const auto [field, wire] = f.key();
    if (field == 1 && wire == 1) {
      e.wall_time = f.fixed<double>();
    } else if (field == 2 && wire == 0) {
      e.step = static_cast<int64_t>(f.varint());
    } else if (field == 3 && wire == 2) {
      e.file_version = f.bytes();
    } else if (field == 5 && wire == 2) {  // Summary: repeated Value
      const std::string s = f.bytes();
      Fields g{s, 0, where + " (summary)"};
      while (g.more()) {
        const auto [n, w] = g.key();
        if (n == 1 && w == 2)
          e.values.push_back(decode_value(g.bytes(), where));
        else
          g.skip(w);
      }
    } else if (field == 7 && wire == 2) {  // SessionLog: status
      const std::string s = f.bytes();
      Fields g{s, 0, where + " (session log)"};
      while (g.more()) {
        const auto [n, w] = g.key();
        if (n == 1 && w == 0)
          e.session_start = g.varint() == 1;
        else
          g.skip(w);
      }
    } else {
      f.skip(wire);
    }
  }
  return e;
}

inline uint32_t masked_crc(const char* data, size_t size) {
  const uint32_t c = h5::crc32c(data, size);
  return ((c >> 15) | (c << 17)) + 0xa282ead8u;
}

}  // namespace event_detail

// Every event of one file, in order; the first must be the file_version record.
inline std::vector<Event> read_event_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in.good()) event_detail::fail("cannot open '", path, "'");
  const std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<Event> events;
  size_t pos = 0;
  while (pos < all.size()) {
    const std::string where = path + " at byte " + std::to_string(pos);
    if (all.size() - pos < 12) event_detail::fail(where, ": a truncated record header");
    uint64_t length = 0;
    uint32_t crc = 0;
    std::memcpy(&length, all.data() + pos, 8);
    std::memcpy(&crc, all.data() + pos + 8, 4);
    if (crc != event_detail::masked_crc(all.data() + pos, 8))
      event_detail::fail(where, ": the length's CRC is wrong");
    if (length + 4 > all.size() - pos - 12) event_detail::fail(where, ": a truncated record");
    const std::string payload = all.substr(pos + 12, length);
    std::memcpy(&crc, all.data() + pos + 12 + length, 4);
    if (crc != event_detail::masked_crc(payload.data(), payload.size()))
      event_detail::fail(where, ": the payload's CRC is wrong");
    events.push_back(event_detail::decode_event(payload, where));
    pos += 12 + length + 4;
  }
  if (events.empty()) event_detail::fail("'", path, "' holds no record");
  if (events.front().file_version != "brain.Event:2")
    event_detail::fail(path, ": the first record's file_version is '", events.front().file_version, "'");
  return events;
}

// The event files of a folder (names containing "tfevents", not its subfolders), in name order: the order
// TensorBoard reads them in.
inline std::vector<std::string> event_files(const std::string& dir) {
  std::vector<std::string> files;
  if (!std::filesystem::is_directory(dir)) return files;
  for (const auto& e : std::filesystem::directory_iterator(dir))
    if (e.is_regular_file() && e.path().filename().string().find("tfevents") != std::string::npos)
      files.push_back(e.path().string());
  std::sort(files.begin(), files.end());
  return files;
}

// What TensorBoard shows of one run (a folder): the values of its files after the restart purges.
class EventView {
 public:
  explicit EventView(const std::string& dir) {
    for (const std::string& file : event_files(dir))
      for (Event& e : read_event_file(file)) {
        if (e.session_start)
          events_.erase(std::remove_if(events_.begin(), events_.end(),
                                       [&](const Event& old) { return old.step >= e.step; }),
                        events_.end());
        if (!e.values.empty()) events_.push_back(std::move(e));
      }
  }
  // (step, value) of every scalar of `tag`, in the order read.
  std::vector<std::pair<int64_t, double>> scalars(const std::string& tag) const {
    std::vector<std::pair<int64_t, double>> out;
    for (const Event& e : events_)
      for (const EventValue& v : e.values)
        if (v.tag == tag && v.kind == EventValue::scalar) out.emplace_back(e.step, v.value);
    return out;
  }
  // Every value of `tag` with its event's step.
  std::vector<std::pair<int64_t, EventValue>> values(const std::string& tag) const {
    std::vector<std::pair<int64_t, EventValue>> out;
    for (const Event& e : events_)
      for (const EventValue& v : e.values)
        if (v.tag == tag) out.emplace_back(e.step, v);
    return out;
  }
  // The tags seen, each once.
  std::vector<std::string> tags() const {
    std::vector<std::string> out;
    for (const Event& e : events_)
      for (const EventValue& v : e.values)
        if (std::find(out.begin(), out.end(), v.tag) == out.end()) out.push_back(v.tag);
    return out;
  }

 private:
  std::vector<Event> events_;
};

}  // namespace iris::test
