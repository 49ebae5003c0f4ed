// TensorBoard event files (data/tensorboard.h) read back with the tests' own reader
// (tests/common/event_file.h): every record's framing and CRCs, the fields of scalars, images, text and
// restart markers, file names that never collide, the folder checks, and EventLog's one warning when writing
// fails mid-work.
#include <signal.h>
#include <sys/resource.h>

#include <filesystem>
#include <fstream>

#include "data/tensorboard.h"
#include "tests/common/event_file.h"
#include "tests/common/test_util.h"
#include "tests/data/data_test_util.h"

using namespace iris;
using namespace iris::test;
namespace fs = std::filesystem;

TEST_CASE("EventWriter's records read back: scalars, an image, text and a restart marker at their steps") {
  TempDir dir("tb-writer");
  const std::string logdir = dir.file("tb");
  const data::Image img = pattern_image(5, 7, 3, 1);
  std::string path;
  {
    data::EventWriter w(logdir);
    path = w.path();
    w.scalar("train/loss", 0.25, 3);
    w.scalar("train/lr", 1.5e-4, 3);
    w.scalar("big/step", -2.5, int64_t{1} << 40);  // a step past 32 bits, a negative value
    w.image("samples", img, 4);
    w.text("config", "```\n[train]\n```", 0);
    w.session_start(5);
    w.flush();
  }
  REQUIRE(event_files(logdir) == std::vector<std::string>{path});
  CHECK(fs::path(path).filename().string().rfind("events.out.tfevents.", 0) == 0);
  const std::vector<Event> events = read_event_file(path);
  REQUIRE(events.size() == 7);  // the file_version record first
  CHECK(events[0].values.empty());
  CHECK(events[1].step == 3);
  REQUIRE(events[1].values.size() == 1);
  CHECK(events[1].values[0].tag == "train/loss");
  CHECK(events[1].values[0].kind == EventValue::scalar);
  CHECK(events[1].values[0].value == 0.25f);
  CHECK(events[2].values[0].value == static_cast<float>(1.5e-4));  // stored as float32
  CHECK(events[3].step == int64_t{1} << 40);
  CHECK(events[3].values[0].value == -2.5f);
  const EventValue& im = events[4].values[0];
  CHECK(events[4].step == 4);
  CHECK(im.kind == EventValue::image);
  CHECK(im.height == 5);
  CHECK(im.width == 7);
  CHECK(im.colorspace == 3);
  const std::vector<uint8_t> png = data::encode_png(img);
  CHECK(im.png == std::string(png.begin(), png.end()));
  const EventValue& text = events[5].values[0];
  CHECK(text.kind == EventValue::text);
  CHECK(text.tag == "config");
  CHECK(text.plugin == "text");
  CHECK(text.str == "```\n[train]\n```");
  CHECK(events[6].session_start);
  CHECK(events[6].step == 5);
  for (const Event& e : events) CHECK(e.wall_time > 1.6e9);  // seconds since 1970, now

  // The reader checks what it reads: a flipped payload byte breaks that record's CRC.
  const auto size = static_cast<int64_t>(fs::file_size(path));
  flip_byte(path, size - 6);
  CHECK_THROWS_WITH_AS(read_event_file(path), doctest::Contains("the payload's CRC is wrong"),
                       std::runtime_error);
}

TEST_CASE("a restart marker drops the earlier events at and after its step, as TensorBoard does") {
  TempDir dir("tb-restart");
  const std::string logdir = dir.file("tb");
  {
    data::EventWriter first(logdir);
    for (int s = 1; s <= 4; ++s) first.scalar("loss", s, s);
    first.flush();
    // Same process, same second: a second file of its own, named to sort after the first.
    data::EventWriter second(logdir);
    CHECK(second.path() != first.path());
    CHECK(second.path() > first.path());
    second.session_start(3);
    second.scalar("loss", 30, 3);
    second.flush();
  }
  CHECK(event_files(logdir).size() == 2);
  const EventView view(logdir);
  CHECK(view.scalars("loss") == std::vector<std::pair<int64_t, double>>{{1, 1}, {2, 2}, {3, 30}});
}

TEST_CASE("a TensorBoard folder that cannot be made or written is an error naming it") {
  TempDir dir("tb-folder");
  const std::string blocked = dir.file("tb");
  std::ofstream(blocked) << "a file where the folder should be";
  check_throws_with([&] { data::EventWriter w(blocked); }, {"tensorboard", blocked});
  check_throws_with([&] { data::EventWriter::check_folder(blocked + "/sub"); }, {"tensorboard", blocked});
  data::EventLog log(blocked, nullptr, "the work");
  check_throws_with([&] { log.open("run"); }, {"tensorboard", blocked + "/run"});
  // A good folder: made, and the probe leaves nothing behind.
  const std::string good = dir.file("good/tb");
  data::EventWriter::check_folder(good);
  CHECK(fs::is_directory(good));
  CHECK(fs::is_empty(good));
}

TEST_CASE("EventLog writes runs into subfolders and says a failed write once, then stops writing") {
  TempDir dir("tb-log");
  const std::string logdir = dir.file("tb");
  std::vector<std::string> said;
  data::EventLog log(
      logdir, [&](const std::string& line) { said.push_back(line); }, "the sweep");
  log.open();
  log.write("", [](data::EventWriter& w) { w.scalar("m", 1, 0); });
  log.write("a=1", [](data::EventWriter& w) { w.scalar("m", 2, 0); });
  CHECK(EventView(logdir).scalars("m") == std::vector<std::pair<int64_t, double>>{{0, 1}});
  CHECK(EventView(logdir + "/a=1").scalars("m") == std::vector<std::pair<int64_t, double>>{{0, 2}});

  // A file-size limit below the next record makes the write fail as a full disk would (SIGXFSZ ignored,
  // so the write returns EFBIG instead of ending the process).
  struct rlimit before {};
  REQUIRE(getrlimit(RLIMIT_FSIZE, &before) == 0);
  const auto old_handler = signal(SIGXFSZ, SIG_IGN);
  struct rlimit low = before;
  low.rlim_cur = 4096;
  REQUIRE(setrlimit(RLIMIT_FSIZE, &low) == 0);
  data::Image big(96, 96, 3);  // noise: a PNG of about 27 KB
  uint32_t x = 1;
  for (uint8_t& p : big.pixels) p = static_cast<uint8_t>((x = x * 1664525u + 1013904223u) >> 24);
  log.write("", [&](data::EventWriter& w) { w.image("grid", big, 1); });
  log.write("", [&](data::EventWriter& w) { w.image("grid", big, 2); });
  REQUIRE(setrlimit(RLIMIT_FSIZE, &before) == 0);
  signal(SIGXFSZ, old_handler);

  REQUIRE(said.size() == 1);
  CHECK(said[0].find("warning: tensorboard: writing '" + logdir) == 0);
  CHECK(said[0].find("TensorBoard logging stops here, the sweep goes on") != std::string::npos);
  CHECK_FALSE(log.active());
  const auto files_before = event_files(logdir);
  log.write("", [](data::EventWriter& w) { w.scalar("m", 3, 5); });  // dropped: nothing more is written
  log.write("b=2", [](data::EventWriter& w) { w.scalar("m", 3, 5); });
  CHECK(event_files(logdir) == files_before);
  CHECK_FALSE(fs::exists(logdir + "/b=2"));
  CHECK(said.size() == 1);
}
