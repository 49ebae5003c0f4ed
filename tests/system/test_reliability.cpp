// Issue 12 as processes: damaged checkpoints (metadata, NaN weights, implausible counters) are refused with
// errors naming them and `--resume auto` falls back past them; pruning never deletes a good checkpoint for a
// damaged one; bad numbers are refused; a run folder has one trainer at a time.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "data/image.h"
#include "diffusion/checkpoint.h"
#include "framework/io/hdf5.h"
#include "tests/common/test_util.h"
#include "tests/data/data_test_util.h"
#include "tests/system/small_checkpoint.h"
#include "tests/system/system_util.h"
#include "tests/system/trained_fixture.h"

using namespace iris;
using namespace iris::test;
namespace fs = std::filesystem;

namespace {

// A fresh folder with the tiny shard set and SR3 config, and the start of an `iris train` command line for
// its run folder; removed at the end of the test.
struct TinyRun {
  std::string root, data, cfg, run, train;
  explicit TinyRun(const std::string& tag) : root(fresh_dir(tag)), data(root + "/data"), run(root + "/run") {
    write_tiny_shards(data, 24);
    cfg = write_tiny_config(root, data);
    train = "train --config " + cfg + " --threads 1 --device cpu --run " + run + " ";
  }
  ~TinyRun() {
    std::error_code ec;
    fs::remove_all(root, ec);
  }
};

std::string ckpt_path(const std::string& run, int64_t step) {
  return (fs::path(run) / "checkpoints" / diffusion::checkpoint_name(step)).string();
}

// Overwrites 4 bytes at `at` of `path` (the reproducer damaged a stored attribute length this way).
void damage(const std::string& path, int64_t at) {
  auto b = read_bytes(path);
  for (int64_t i = at; i < at + 4; ++i) b.at(static_cast<size_t>(i)) ^= static_cast<char>(0x5A);
  write_bytes(path, b);
}

// A copy of the checkpoint `src` as `dst`, changed by `edit` and written (sealed) by save_checkpoint.
void edited_copy(const std::string& src, const std::string& dst,
                 const std::function<void(diffusion::TrainingCheckpoint&)>& edit) {
  diffusion::TrainingCheckpoint c = diffusion::load_checkpoint(src);
  edit(c);
  diffusion::save_checkpoint(dst, c);
}

}  // namespace

TEST_CASE("damaged checkpoint metadata is refused by verify and skipped by resume auto, never a crash") {
  const TinyRun t("rel-meta");
  const RunResult first = run_iris(t.train + "--set train.steps=8");  // checkpoints at 4 and 8
  REQUIRE_MESSAGE(first.exit_code == 0, first.output);
  const std::string newest = ckpt_path(t.run, 8);
  // The crash: 4 bytes at offset 2072 of an unsealed checkpoint, a stored attribute length in the
  // HDF5 metadata. Here the HDF5 part starts after the seal's user block (its size is stored at offset 12).
  const auto bytes = read_bytes(newest);
  uint32_t block = 0;
  std::memcpy(&block, bytes.data() + 12, 4);
  REQUIRE(block >= 512);
  damage(newest, block + 2072);
  const RunResult v = run_iris("ckpt verify " + newest);
  expect_error(v, {"FAILED", "step_000000008.h5", "checksum mismatch"});
  const RunResult r = run_iris(t.train + "--resume auto --set train.steps=10");
  CHECK_MESSAGE(r.exit_code == 0, r.output);
  check_contains(r, "skipping damaged checkpoint '" + newest + "'");
  check_contains(r, "resumed from " + ckpt_path(t.run, 4));
  // Truncation names both lengths.
  fs::resize_file(ckpt_path(t.run, 10), fs::file_size(ckpt_path(t.run, 10)) - 1000);
  expect_error(run_iris("ckpt verify " + ckpt_path(t.run, 10)), {"truncated: ", " of ", " bytes"});
}

TEST_CASE("ckpt verify and iris sample refuse NaN weights, and verify refuses implausible counters") {
  TrainedFixture fx("rel-nan", {.sr3 = true});
  const std::string nan = fx.path("nan.h5"), far = fx.path("far.h5"), cursor = fx.path("cursor.h5");
  edited_copy(fx.sr3_ckpt, nan, [](diffusion::TrainingCheckpoint& c) {
    Tensor& w = c.ema.begin()->second;
    w = w.contiguous();
    w.data<float>()[0] = std::nanf("");
  });
  const RunResult v = run_iris("ckpt verify " + nan);
  expect_error(v, {"nan.h5", "/ema/", "NaN or infinite"});
  const RunResult s = run_iris("sample --ckpt " + nan + " --device cpu --threads 1 --out " + fx.path("s") +
                               " --shard " + fx.data + " --count 2 --steps 2");
  expect_error(s, {"nan.h5", "NaN or infinite"});
  CHECK_FALSE(fs::exists(fx.path("s") + "/samples.h5"));
  const std::string sample = "sample --ckpt " + fx.sr3_ckpt + " --device cpu --threads 1 --shard " + fx.data;
  expect_error(run_iris(sample + " --out " + fx.path("c") + " --count -2 --steps 2"),
               {"--count must be positive (or -1", "-2"});
  CHECK(run_iris(sample + " --out " + fx.path("z") + " --count 2 --steps 0").exit_code != 0);
  CHECK_FALSE(fs::exists(fx.path("c") + "/samples.h5"));
  CHECK_FALSE(fs::exists(fx.path("z") + "/samples.h5"));
  edited_copy(fx.sr3_ckpt, far, [](diffusion::TrainingCheckpoint& c) { c.step = 999999; });
  expect_error(run_iris("ckpt verify " + far), {"far.h5", "step 999999 is outside [0, 2]"});
  edited_copy(fx.sr3_ckpt, cursor, [](diffusion::TrainingCheckpoint& c) { c.cursor.position = 5000; });
  expect_error(run_iris("ckpt verify " + cursor), {"cursor.h5", "data cursor", "position 5000"});
  // A good checkpoint says it carries a whole-file checksum.
  const RunResult good = run_iris("ckpt verify " + fx.sr3_ckpt);
  CHECK_MESSAGE(good.exit_code == 0, good.output);
  check_contains(good, "seal (whole-file checksum) matches");
  // A checkpoint without a seal (as older Iris versions wrote them) still verifies and loads, and verify
  // says what could not be checked. Opening a file for writing removes its seal.
  const std::string old_style = fx.path("old.h5");
  fs::copy_file(fx.sr3_ckpt, old_style);
  (void)h5::File::open(old_style, h5::File::Mode::read_write);
  const RunResult unsealed = run_iris("ckpt verify " + old_style);
  CHECK_MESSAGE(unsealed.exit_code == 0, unsealed.output);
  check_contains(unsealed, "no whole-file checksum");
  CHECK(diffusion::load_checkpoint(old_style).step == 2);
}

TEST_CASE("pruning keeps the newest checkpoints that verify and never deletes the one just written") {
  const TinyRun t("rel-prune");
  const std::string train = t.train + " --set train.keep_checkpoints=1 --set train.checkpoint_every=2 ";
  REQUIRE(run_iris(train + "--set train.steps=4").exit_code == 0);
  // A damaged checkpoint from the future (a later step than the run will reach next) must not displace the
  // good ones: the run resumes from step 4, and every checkpoint it writes stays.
  fs::copy_file(ckpt_path(t.run, 4), ckpt_path(t.run, 20));
  damage(ckpt_path(t.run, 20), 2072);
  const std::string backup = (fs::path(t.root) / "backup.h5").string();
  fs::copy_file(ckpt_path(t.run, 4), backup);
  const RunResult r = run_iris(train + "--resume auto --set train.steps=8");
  REQUIRE_MESSAGE(r.exit_code == 0, r.output);
  check_contains(r, "skipping damaged checkpoint");
  CHECK(fs::exists(ckpt_path(t.run, 8)));
  CHECK(fs::exists(ckpt_path(t.run, 20)));  // older than no good checkpoint: left for the user to look at
  CHECK_FALSE(fs::exists(ckpt_path(t.run, 4)));  // older than step 8, which verifies
  check_contains(r, "checkpoint " + ckpt_path(t.run, 8));
  // Resuming an older backup into the folder: the checkpoints it writes are kept, the final line names one
  // that exists.
  const RunResult b =
      run_iris(train + "--resume " + backup + " --set train.steps=6 --set train.keep_every=6");
  REQUIRE_MESSAGE(b.exit_code == 0, b.output);
  CHECK(fs::exists(ckpt_path(t.run, 6)));
  check_contains(b, "checkpoint " + ckpt_path(t.run, 6));
  CHECK(fs::exists(ckpt_path(t.run, 8)));  // newer than what this run wrote and good: kept
}

TEST_CASE("train.keep_best keeps the state of the best validation PSNR as best.h5, across resumes") {
  const TinyRun t("rel-best");
  const std::string train = t.train + " --set train.keep_checkpoints=1 --set train.sample_every=1 ";
  // The best validation PSNR of metrics.jsonl and its step.
  const auto best_in_metrics = [&] {
    std::ifstream f((fs::path(t.run) / "metrics.jsonl").string());
    std::pair<int64_t, double> best{-1, -1e300};
    for (std::string line; std::getline(f, line);)
      if (const auto j = nlohmann::json::parse(line); j.contains("val_psnr") && j["val_psnr"] > best.second)
        best = {j["step"].get<int64_t>(), j["val_psnr"].get<double>()};
    return best;
  };
  const std::string best = (fs::path(t.run) / "checkpoints" / diffusion::kBestCheckpointName).string();
  const RunResult r = run_iris(train + "--set train.steps=6");
  REQUIRE_MESSAGE(r.exit_code == 0, r.output);
  check_contains(r, "best so far, kept as " + best);
  const auto [step, psnr] = best_in_metrics();
  REQUIRE(step > 0);
  diffusion::verify_checkpoint(best);
  CHECK(diffusion::read_checkpoint_info(best).step == step);
  CHECK(diffusion::read_checkpoint_info(best).val_psnr == psnr);
  CHECK(diffusion::list_checkpoints((fs::path(t.run) / "checkpoints").string()).size() ==
        1);  // pruned, not it

  // A resumed run reads the score of best.h5 and does not replace a better state with a worse one.
  edited_copy(best, best, [](diffusion::TrainingCheckpoint& c) { c.val_psnr = 99; });
  const RunResult more = run_iris(train + "--resume auto --set train.steps=8");
  REQUIRE_MESSAGE(more.exit_code == 0, more.output);
  CHECK(more.output.find("best so far") == std::string::npos);
  CHECK(diffusion::read_checkpoint_info(best).val_psnr == 99);
  CHECK(diffusion::read_checkpoint_info(best).step == step);

  // A damaged best.h5 is named and replaced by the next score; resume itself never takes it.
  damage(best, 2072);
  const RunResult again = run_iris(train + "--resume auto --set train.steps=9");
  REQUIRE_MESSAGE(again.exit_code == 0, again.output);
  check_contains(again, best);
  check_contains(again, "resumed from " + ckpt_path(t.run, 8));
  diffusion::verify_checkpoint(best);
  CHECK(diffusion::read_checkpoint_info(best).step == 9);

  // Off: no best.h5.
  const TinyRun off("rel-best-off");
  REQUIRE(run_iris(off.train + "--set train.sample_every=1 --set train.steps=2 --set train.keep_best=false")
              .exit_code == 0);
  CHECK_FALSE(fs::exists(fs::path(off.run) / "checkpoints" / diffusion::kBestCheckpointName));
}

TEST_CASE("a TensorBoard folder that cannot be made is an error naming it, and train.tensorboard=false writes none") {
  const TinyRun t("rel-tb");
  fs::create_directories(t.run);
  std::ofstream(fs::path(t.run) / "tensorboard") << "a file where the folder should be";
  expect_error(run_iris(t.train + "--set train.steps=1"), {"tensorboard", t.run + "/tensorboard"});
  const TinyRun off("rel-tb-off");
  REQUIRE(run_iris(off.train + "--set train.steps=1 --set train.tensorboard=false").exit_code == 0);
  CHECK_FALSE(fs::exists(fs::path(off.run) / "tensorboard"));
  CHECK(fs::exists(fs::path(off.run) / "metrics.jsonl"));
}

TEST_CASE("prune_checkpoints: keep counts only checkpoints that verify, milestones and the newest stay") {
  TempDir dir("rel-prune-unit");
  const std::string d = dir.path().string();
  auto at = [&](int64_t step) { return (dir.path() / diffusion::checkpoint_name(step)).string(); };
  for (int64_t step : {10, 20, 30, 40, 50}) diffusion::save_checkpoint(at(step), small_checkpoint(step));
  damage(at(50), 600);
  std::vector<std::string> warnings;
  diffusion::prune_checkpoints(
      d, {.keep = 2, .keep_every = 20, .just_written = at(40), .warn = [&](const std::string& w) {
            warnings.push_back(w);
          }});
  // 50 is damaged: it does not count, and is newer than every good one, so it stays; 40 and 30 are the two
  // newest good ones; 20 is a milestone; 10 goes.
  CHECK(fs::exists(at(50)));
  CHECK(fs::exists(at(40)));
  CHECK(fs::exists(at(30)));
  CHECK(fs::exists(at(20)));
  CHECK_FALSE(fs::exists(at(10)));
  REQUIRE(warnings.size() == 1);
  CHECK(warnings[0].find(at(50)) != std::string::npos);
  // With fewer good checkpoints than `keep`, nothing is deleted.
  damage(at(40), 600);
  diffusion::prune_checkpoints(d, {.keep = 3, .keep_every = 0, .just_written = at(30), .warn = nullptr});
  for (int64_t step : {20, 30, 40, 50}) CHECK(fs::exists(at(step)));
}

TEST_CASE("bad numbers are refused, naming the value") {
  const TinyRun t("rel-values");
  const std::string base = "train --config " + t.cfg + " --device cpu --run " + t.root + "/run ";
  expect_error(run_iris(base + "--set train.steps=-5"), {"train.steps must be positive", "-5"});
  expect_error(run_iris(base + "--set train.checkpoint_every=-1"), {"train.checkpoint_every", "-1"});
  expect_error(run_iris(base + "--set train.grad_clip=-1"), {"train.grad_clip", "-1"});
  expect_error(run_iris(base + "--set train.keep_checkpoints=0"), {"train.keep_checkpoints"});
  CHECK(run_iris(base + "--threads -3").exit_code != 0);
  CHECK(run_iris(base + "--time-limit -5").exit_code != 0);
  CHECK(run_iris(base + "--time-limit 0").exit_code != 0);
  ::setenv("IRIS_NUM_THREADS", "abc", 1);
  const RunResult env = run_iris(base);
  ::unsetenv("IRIS_NUM_THREADS");
  expect_error(env, {"IRIS_NUM_THREADS='abc'"});
  CHECK_FALSE(fs::exists(t.root + "/run/checkpoints"));  // none of these trained
}

TEST_CASE("shard labels outside the model's classes fail naming the shard, the index and the label") {
  TrainedFixture fx("rel-labels", {});
  // The tiny shards hold labels 0, 1, 2: a model of 2 classes must not train label 2 as its null class.
  const RunResult r =
      run_iris("train --config " + fx.path("tiny_base.toml") + " --threads 1 --device cpu --run " +
               fx.path("run") + " --set model.num_classes=2");
  expect_error(r, {"shard-00000.h5", "sample 2 (index 2 of the set) has label 2", "outside [0, 2)",
                   "model.num_classes is 2"});
}

TEST_CASE("a run folder has one trainer: a live holder is named, a dead one's lock is taken over") {
  const TinyRun t("rel-lock");
  fs::create_directories(t.run);
  char host[256] = {0};
  REQUIRE(::gethostname(host, sizeof(host) - 1) == 0);
  // A lock left by a process of this host that is gone.
  const pid_t dead = ::fork();
  if (dead == 0) ::_exit(0);
  REQUIRE(::waitpid(dead, nullptr, 0) == dead);
  std::ofstream(t.run + "/.lock") << host << " " << dead << "\n";
  const RunResult stale = run_iris(t.train + "--set train.steps=2");
  CHECK_MESSAGE(stale.exit_code == 0, stale.output);
  check_contains(stale, "taking over the run-folder lock");
  check_contains(stale, "pid " + std::to_string(dead));
  // A live holder: a long run in the background; a second trainer is refused while it runs.
  const pid_t holder = ::fork();
  if (holder == 0) {
    const std::string cmd =
        std::string(iris_binary()) + " " + t.train +
        "--resume auto --set train.steps=100000 --set train.checkpoint_every=0 >/dev/null 2>&1";
    ::execl("/bin/sh", "sh", "-c", ("exec " + cmd).c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  bool locked = false;
  for (int i = 0; i < 300 && !locked; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    std::ifstream in(t.run + "/.lock");
    std::string h;
    long pid = 0;
    locked = static_cast<bool>(in >> h >> pid) && pid == holder;
  }
  REQUIRE(locked);
  const RunResult second = run_iris(t.train + "--resume auto --set train.steps=4");
  expect_error(second, {"is in use by another iris train", std::string("host ") + host,
                        "pid " + std::to_string(holder)});
  ::kill(holder, SIGTERM);  // it checkpoints and exits 0
  int status = 0;
  REQUIRE(::waitpid(holder, &status, 0) == holder);
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  // A clean exit leaves no holder: the next trainer warns about nothing.
  const RunResult after = run_iris(t.train + "--resume auto --set train.steps=2");
  CHECK(after.output.find("taking over") == std::string::npos);
}

TEST_CASE("a write that runs out of space fails cleanly: an error, no temporary file, no crash at exit") {
  // A file-size limit makes writes fail as a full disk does (EFBIG instead of ENOSPC), without root. HDF5
  // used to segfault at exit cleaning up the file whose close had failed.
  const std::string limited = "trap '' XFSZ; ulimit -f 100;";  // 50-100 KiB (sh counts 512 or 1024 bytes)
  const TinyRun t("rel-full");
  REQUIRE(run_iris(t.train + "--set train.steps=2").exit_code == 0);
  const RunResult r = run_iris_after(limited, t.train + "--resume auto --set train.steps=4");
  CHECK_MESSAGE(r.exit_code == 1, r.output);
  check_contains(r, "step_000000004.h5.tmp-");
  std::vector<std::string> left;
  for (const auto& e : fs::directory_iterator(fs::path(t.run) / "checkpoints"))
    left.push_back(e.path().filename());
  std::sort(left.begin(), left.end());
  // No temporary file; the earlier checkpoint intact (and best.h5, the final grid's score: train.keep_best).
  CHECK(left == std::vector<std::string>{"best.h5", "step_000000002.h5"});
  diffusion::verify_checkpoint(ckpt_path(t.run, 2));
  // The same for `iris shard images`.
  const std::string src = (fs::path(t.root) / "src").string();
  fs::create_directories(src + "/a");
  for (int i = 0; i < 150; ++i)
    data::write_png(src + "/a/" + std::to_string(i) + ".png", pattern_image(16, 16, 3, i));
  const RunResult s = run_iris_after(limited, "shard images " + src + " --out " + t.root +
                                                  "/shards --size 16 --lowres 4 "
                                                  "--val-fraction 0 --samples-per-shard 200");
  CHECK_MESSAGE(s.exit_code == 1, s.output);
  CHECK(fs::is_empty(t.root + "/shards/train"));
}

TEST_CASE("--time-limit stops with a checkpoint that --resume auto continues from") {
  const TinyRun t("rel-time");
  const std::string train = t.train + " --set train.steps=1000000 --set train.checkpoint_every=0 ";
  const RunResult r = run_iris(train + "--time-limit 0.005");  // 0.3 s
  REQUIRE_MESSAGE(r.exit_code == 0, r.output);
  check_contains(r, "(time limit); resume with --resume auto");
  const auto written = diffusion::list_checkpoints(t.run + "/checkpoints");
  REQUIRE(written.size() == 1);
  const int64_t step = diffusion::load_checkpoint(written[0]).step;
  CHECK(step > 0);
  CHECK(step < 1000000);
  const RunResult more = run_iris(train + "--resume auto --time-limit 0.005");
  REQUIRE_MESSAGE(more.exit_code == 0, more.output);
  check_contains(more, "resumed from " + written[0]);
}

TEST_CASE("a NaN gradient in iris train skips that update and training goes on") {
  const TinyRun t("rel-nangrad");
  ::setenv("IRIS_TEST_NAN_GRAD_AT_STEP", "2", 1);
  const RunResult r = run_iris("train --config " + t.cfg + " --threads 1 --device cpu --run " + t.run +
                               " --set train.steps=6 --set train.checkpoint_every=0");
  ::unsetenv("IRIS_TEST_NAN_GRAD_AT_STEP");
  REQUIRE_MESSAGE(r.exit_code == 0, r.output);
  check_contains(r, "warning: step 2: non-finite gradient norm, update skipped");
  check_contains(r, "done: step 6");
  const diffusion::TrainingCheckpoint c =
      diffusion::load_checkpoint(ckpt_path(t.run, 6));  // verifies: finite
  CHECK(c.skipped_updates == 1);
}

TEST_CASE("damaged shard data is found during training, naming the shard") {
  const TinyRun t("rel-shard-data");
  const std::string shard = t.data + "/shard-00000.h5";
  int64_t offset = -1;
  {
    const h5::File f = h5::File::open(shard);
    offset = f.root().open_dataset("images").file_offset();
  }
  REQUIRE(offset > 0);
  damage(shard, offset + 100);  // the data, not the metadata: the file still opens
  expect_error(run_iris(t.train + "--set train.steps=2"), {"shard-00000.h5", "checksum mismatch", "/images"});
}
