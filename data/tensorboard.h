// TensorBoard event files, written by Iris itself.
//
// An event file is a sequence of TFRecords: [length u64 LE][masked CRC-32C of the 8 length bytes, u32 LE]
// [payload][masked CRC-32C of the payload, u32 LE], where masked(crc) = ((crc >> 15) | (crc << 17)) +
// 0xa282ead8. Each payload is a tensorflow.Event protocol buffer; the few fields used are encoded here by hand:
//   Event         1 wall_time (double)  2 step (int64)  3 file_version (string)  5 summary  7 session_log
//   Summary       1 value (repeated)
//   Summary.Value 1 tag  2 simple_value (float)  4 image  8 tensor  9 metadata
//   Summary.Image 1 height  2 width  3 colorspace (1 grey, 3 RGB)  4 encoded_image_string (PNG)
//   SessionLog    1 status (START = 1)
//   text: Value.tensor = TensorProto{1 dtype DT_STRING (7), 2 tensor_shape {} (a scalar), 8 string_val} with
//         Value.metadata = SummaryMetadata{1 plugin_data {1 plugin_name "text"}}
// TensorBoard reads every file of a folder whose name contains "tfevents". A resumed training run writes a
// SessionLog START at the first step it logs (one past its checkpoint's): TensorBoard then drops the earlier
// process's events from that step on (those it logged after that checkpoint), so the curves have no
// duplicates.
//
// EventLog is the writer of a log kept beside work that must not stop for it (training, a sweep): a failed
// write is said once and TensorBoard is dropped for the rest of the work. Its folder may hold runs: DIR
// itself and subfolders DIR/<run>, which TensorBoard draws as separate curves in one chart per tag.
#pragma once

#include <cstdint>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "data/image.h"

namespace iris::data {

class EventWriter {
 public:
  // Creates DIR (if needed) and DIR/events.out.tfevents.<unix seconds>.<host>.<pid>[.<n>] (n when this
  // process already made one of that name this second), which starts with the file_version record. Throws
  // naming the folder or the file when it cannot be written.
  explicit EventWriter(const std::string& dir);
  // What the constructor checks, without leaving an event file behind: DIR is made if needed and a file can
  // be created in it (a probe, removed again). For commands that write their events once the work is done.
  static void check_folder(const std::string& dir);

  const std::string& path() const { return path_; }
  void scalar(const std::string& tag, double value, int64_t step);
  void image(const std::string& tag, const Image& img, int64_t step);        // stored as PNG
  void text(const std::string& tag, const std::string& text, int64_t step);  // markdown in TensorBoard
  // Marks a (re)start at `step`: TensorBoard discards events of earlier files at steps >= `step`.
  void session_start(int64_t step);
  // Pushes what was written to the file; throws naming it when the write failed (e.g. a full disk).
  void flush();

 private:
  void write_event(const std::string& event_payload);

  std::string path_;
  std::ofstream out_;
};

class EventLog {
 public:
  // `warn` says the one warning (a line); `work` names what goes on without TensorBoard ("training").
  EventLog(std::string dir, std::function<void(const std::string&)> warn, std::string work);
  const std::string& dir() const { return dir_; }
  bool active() const { return active_; }
  // Opens the event file of `run` ("" for DIR itself, else DIR/<run>); throws naming the folder or file when
  // it cannot write (a start-up error: call it before the work). Returns the writer for first records.
  EventWriter& open(const std::string& run = "");
  // Runs `fn` on the writer of `run` (opened if needed) and flushes. When that fails: the warning, once, and
  // every later write does nothing.
  void write(const std::string& run, const std::function<void(EventWriter&)>& fn);

 private:
  std::string dir_, work_;
  std::function<void(const std::string&)> warn_;
  std::map<std::string, std::unique_ptr<EventWriter>> writers_;
  bool active_ = true;
};

// The masked CRC-32C of TFRecord framing (exposed for tests).
uint32_t tfrecord_masked_crc(const void* data, size_t size);

}  // namespace iris::data
