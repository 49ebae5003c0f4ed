#include "tools/sample_run.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "data/image.h"
#include "framework/core/error.h"
#include "framework/dist/communicator.h"
#include "framework/io/hdf5.h"
#include "tools/sampling.h"

namespace iris::tools {

namespace fs = std::filesystem;

void add_sampling_run_options(CLI::App& cmd, SamplingRunOptions& o) {
  cmd.add_option("--seed", o.seed, "seed of all noise (default 0)");
  cmd.add_option("--batch", o.batch, "samples per batch (default 16; results do not depend on it)");
  cmd.add_option("--device", o.device, "auto, cpu, cuda or cuda:N (default auto)");
  cmd.add_option("--threads", o.threads, "CPU threads (default: all cores)")->check(CLI::NonNegativeNumber);
  cmd.add_option("--out", o.out, "output folder")->required();
  cmd.add_flag("--resume", o.resume,
               "continue the run in --out (after preemption): keep its finished samples, sample the rest");
  cmd.add_flag("--overwrite", o.overwrite, "replace the run in --out instead of refusing");
}

ConditionOptions StageInputOptions::conditions() const {
  IRIS_CHECK(!stages.empty(), "give at least one --stage CHECKPOINT");
  IRIS_CHECK(!per_class_opt->count() || cond.per_class > 0, "--per-class must be positive, got ",
             cond.per_class);
  ConditionOptions c = cond;
  c.count_given = count_opt->count() > 0;
  return c;
}

void add_stage_input_options(CLI::App& cmd, StageInputOptions& o) {
  cmd.add_option("--stage", o.stages, "a stage's checkpoint, in cascade order (repeat: --stage A --stage B)")
      ->required();
  cmd.add_flag("--raw", o.raw, "use the raw weights instead of the EMA");
  cmd.add_option("--labels", o.cond.labels, "class labels for a base first stage: indices or names")
      ->delimiter(',');
  o.per_class_opt = cmd.add_option("--per-class", o.cond.per_class, "K samples of every class (default 4)");
  o.count_opt = cmd.add_option(
      "--count", o.cond.input.count,
      "samples of an unconditional base stage, or shard samples to take (-1: to the end; default 16)");
  cmd.add_option("--shard", o.cond.input.shard,
                 "shard folder to take the first stage's inputs (and truth, labels) from");
  cmd.add_option("--start", o.cond.input.start, "first shard sample (default 0)");
  cmd.add_option("--input", o.cond.input.files, "low-res image files for an sr3 first stage");
  cmd.add_option("--input-dir", o.cond.input.dir, "folder of low-res images for an sr3 first stage");
}

std::vector<LoadedStage> load_stages(const StageInputOptions& o, Device device) {
  std::vector<LoadedStage> stages;
  for (const std::string& path : o.stages) stages.push_back(load_stage(path, o.raw, {}, device));
  return stages;
}

// ---- SampleSplit
// --------------------------------------------------------------------------------------------

SampleSplit::SampleSplit(std::vector<int64_t> pending, int64_t batch,
                         std::shared_ptr<dist::Communicator> comm)
    : pending_(std::move(pending)), comm_(std::move(comm)) {
  IRIS_CHECK(batch > 0, "SampleSplit: batch must be positive, got ", batch);
  if (comm_) {
    rank_ = comm_->rank();
    ranks_ = comm_->size();
  }
  const auto n = static_cast<int64_t>(pending_.size());
  per_ = (n + ranks_ - 1) / ranks_;
  chunk_ = std::max<int64_t>(1, std::min(batch, per_));
  rounds_ = (per_ + chunk_ - 1) / chunk_;
}

std::vector<int64_t> SampleSplit::rows(int64_t round, int rank) const {
  if (rank < 0) rank = rank_;
  const auto n = static_cast<int64_t>(pending_.size());
  const int64_t own_end = std::min(n, (rank + 1) * per_);
  const int64_t lo = std::min(own_end, rank * per_ + round * chunk_);
  const int64_t hi = std::min(own_end, lo + chunk_);
  return std::vector<int64_t>(pending_.begin() + lo, pending_.begin() + hi);
}

std::vector<int64_t> SampleSplit::gather(int64_t round, const std::vector<Tensor>& mine,
                                         const std::vector<Shape>& row_shapes, int64_t total,
                                         std::vector<Tensor>& outputs) {
  const std::vector<int64_t> own = rows(round);
  IRIS_CHECK(mine.empty() ? own.empty() : mine.size() == row_shapes.size(),
             "SampleSplit::gather: ", mine.size(), " outputs for ", row_shapes.size(), " row shapes");
  outputs.resize(row_shapes.size());
  if (!comm_) {
    for (size_t i = 0; i < mine.size(); ++i) put_rows(outputs[i], total, own, mine[i]);
    return own;
  }
  const auto n_own = static_cast<int64_t>(own.size());
  for (size_t i = 0; i < row_shapes.size(); ++i) {
    // Every rank sends chunk_ rows (its own, then zeros); rank 0 keeps the real ones.
    Shape padded{chunk_};
    padded.insert(padded.end(), row_shapes[i].begin(), row_shapes[i].end());
    Tensor send = Tensor::zeros(padded, DType::u8, comm_->device());
    if (n_own > 0) {
      Tensor dst = send.slice(0, 0, n_own);
      IRIS_CHECK(mine[i].dtype() == DType::u8 && mine[i].shape() == dst.shape(),
                 "SampleSplit::gather: output ", i, " is ", mine[i].summary(), ", expected u8 ",
                 shape_str(dst.shape()));
      dst.copy_(mine[i].to(comm_->device()));
    }
    Shape all{static_cast<int64_t>(ranks_)};
    all.insert(all.end(), padded.begin(), padded.end());
    Tensor gathered = Tensor::empty(all, DType::u8, comm_->device());
    comm_->all_gather(send, gathered);
    if (!is_root()) continue;
    const Tensor host = gathered.cpu();
    for (int q = 0; q < ranks_; ++q) {
      const std::vector<int64_t> theirs = rows(round, q);
      if (!theirs.empty())
        put_rows(outputs[i], total, theirs,
                 host.select(0, q).slice(0, 0, static_cast<int64_t>(theirs.size())));
    }
  }
  std::vector<int64_t> got;
  if (is_root())
    for (int q = 0; q < ranks_; ++q)
      for (int64_t r : rows(round, q)) got.push_back(r);
  return got;
}

void print_run_status(const dist::Communicator* comm, const SampleRecord& record, bool resume,
                      const std::string& out) {
  if (comm) std::printf(", split over %d ranks (%s)", comm->size(), comm->describe().c_str());
  std::printf("\n");
  if (resume)
    std::printf("resuming: %lld of %lld samples already in %s\n", static_cast<long long>(record.done()),
                static_cast<long long>(record.total()), out.c_str());
  std::fflush(stdout);
}

std::vector<int64_t> share_rows(const std::shared_ptr<dist::Communicator>& comm,
                                const std::vector<int64_t>& pending, int64_t total) {
  if (!comm || comm->size() == 1) return pending;
  // A mask of the samples to do, rank 0's, broadcast (u8 [max(total, 1)]: collectives need an element).
  std::vector<uint8_t> mask(static_cast<size_t>(std::max<int64_t>(total, 1)), 0);
  if (comm->rank() == 0)
    for (int64_t r : pending) mask.at(static_cast<size_t>(r)) = 1;
  Tensor t = Tensor::from_vector<uint8_t>(mask, {static_cast<int64_t>(mask.size())}).to(comm->device());
  comm->broadcast(t, 0);
  const auto got = t.cpu().to_vector<uint8_t>();
  std::vector<int64_t> out;
  for (int64_t r = 0; r < total; ++r)
    if (got[static_cast<size_t>(r)]) out.push_back(r);
  return out;
}

// ---- SampleRecord
// -------------------------------------------------------------------------------------------

namespace {
constexpr const char* kRecordName = "run.json";
}  // namespace

JsonDifference first_difference(const nlohmann::json& saved, const nlohmann::json& now,
                                const std::string& at) {
  if (saved.is_object() && now.is_object()) {
    for (const auto& [key, value] : now.items()) {
      const std::string path = at.empty() ? key : at + "." + key;
      if (!saved.contains(key)) return {path, nullptr, value};
      JsonDifference d = first_difference(saved[key], value, path);
      if (!d.path.empty()) return d;
    }
    for (const auto& [key, value] : saved.items())
      if (!now.contains(key)) return {at.empty() ? key : at + "." + key, value, nullptr};
    return {};
  }
  if (saved.is_array() && now.is_array() && saved.size() == now.size()) {
    for (size_t i = 0; i < now.size(); ++i) {
      JsonDifference d = first_difference(saved[i], now[i], at + "[" + std::to_string(i) + "]");
      if (!d.path.empty()) return d;
    }
    return {};
  }
  if (saved != now) return {at, saved, now};
  return {};
}

std::string JsonDifference::describe() const {
  return "'" + path + "' was " + (saved.is_null() ? "absent" : saved.dump()) + ", now " +
         (now.is_null() ? "absent" : now.dump());
}

SampleRecord::SampleRecord(std::string out, std::vector<std::string> dirs, std::vector<Shape> row_shapes,
                           std::vector<std::string> names, nlohmann::json identity, bool resume,
                           bool overwrite)
    : out_(std::move(out)),
      dirs_(std::move(dirs)),
      row_shapes_(std::move(row_shapes)),
      names_(std::move(names)),
      have_(names_.size(), 0),
      outputs_(dirs_.size()) {
  IRIS_ASSERT(dirs_.size() == row_shapes_.size());
  const fs::path record = fs::path(out_) / kRecordName;
  if (resume) {
    IRIS_CHECK(fs::exists(record), "--resume: '", out_, "' holds no sampling run (no ", kRecordName,
               "); run without --resume to start one");
    nlohmann::json saved;
    try {
      std::ifstream f(record);
      saved = nlohmann::json::parse(f);
    } catch (const std::exception& e) {
      IRIS_THROW("--resume: cannot read '", record.string(), "': ", e.what());
    }
    const JsonDifference d = first_difference(saved, identity);
    IRIS_CHECK(d.path.empty(), "--resume: '", out_, "' holds a run with other settings (", d.describe(),
               "); resume with the same command, or choose another --out");
    // Temporary files of PNGs a killed run was writing: never complete, never renamed; remove them.
    for (const auto& d : dirs_) {
      std::error_code ec;
      if (!fs::is_directory(d, ec)) continue;
      for (const auto& e : fs::directory_iterator(d, ec))
        if (e.path().filename().string().find(".png.tmp-") != std::string::npos) fs::remove(e.path(), ec);
    }
    // A sample is done when every one of its PNGs is there and decodes to the expected shape (they are
    // written atomically, so a PNG that exists is complete unless something else damaged it).
    for (size_t k = 0; k < names_.size(); ++k) {
      std::vector<data::Image> images;
      for (size_t i = 0; i < dirs_.size(); ++i) {
        const fs::path png = fs::path(dirs_[i]) / (names_[k] + ".png");
        if (!fs::exists(png)) break;
        try {
          data::Image img = data::read_png(png.string());
          const Shape& s = row_shapes_[i];
          if (img.height != s[0] || img.width != s[1] || img.channels != s[2]) {
            std::fprintf(stderr, "warning: %s is %dx%dx%d, not %lldx%lldx%lld: sampled again\n", png.c_str(),
                         img.height, img.width, img.channels, static_cast<long long>(s[0]),
                         static_cast<long long>(s[1]), static_cast<long long>(s[2]));
            break;
          }
          images.push_back(std::move(img));
        } catch (const Error& e) {
          std::fprintf(stderr, "warning: %s cannot be read (%s): sampled again\n", png.c_str(),
                       e.message().c_str());
          break;
        }
      }
      if (images.size() != dirs_.size()) continue;
      for (size_t i = 0; i < dirs_.size(); ++i)
        put_rows(outputs_[i], total(), {static_cast<int64_t>(k)}, data::stack_images({images[i]}));
      have_[k] = 1;
      ++done_;
    }
  } else {
    IRIS_CHECK(!fs::exists(record) || overwrite, "'", out_, "' already holds a sampling run (", kRecordName,
               "): pass --resume to continue it, --overwrite to replace it, or choose another --out");
  }
  fs::create_directories(out_);
  for (const auto& d : dirs_) fs::create_directories(d);
  h5::write_file_atomic(record.string(), identity.dump(2) + "\n");
}

std::vector<int64_t> SampleRecord::pending() const {
  std::vector<int64_t> rows;
  for (size_t k = 0; k < have_.size(); ++k)
    if (!have_[k]) rows.push_back(static_cast<int64_t>(k));
  return rows;
}

void SampleRecord::write(const std::vector<int64_t>& rows) {
  for (size_t i = 0; i < dirs_.size(); ++i) {
    const Tensor picked = take_rows(outputs_[i], rows);
    const auto images = data::unstack_images(picked);
    for (size_t k = 0; k < rows.size(); ++k)
      write_sample_png(dirs_[i], names_.at(static_cast<size_t>(rows[k])), images[k]);
  }
}

nlohmann::json stage_identity(const LoadedStage& stage, const diffusion::SampleSettings& s) {
  const std::string toml = stage.config.to_toml();
  return {{"checkpoint", fs::absolute(stage.path).lexically_normal().string()},
          {"step", stage.info.step},
          {"weights", stage.ema ? "ema" : "raw"},
          {"config_crc32c", h5::crc32c(toml.data(), toml.size())},
          {"sampler", s.sampler},
          {"schedule", s.schedule},
          {"steps", s.steps},
          {"eta", s.eta},
          {"guidance", s.guidance},
          {"aug_level", s.aug_level},
          {"renoise_condition", s.renoise_condition},
          {"stop_gamma", s.stop_gamma},
          {"clip_x0", s.clip_x0}};
}

uint32_t inputs_checksum(const std::vector<std::string>& names, const Tensor& lowres,
                         const std::vector<int64_t>& labels) {
  uint32_t crc = 0;
  for (const auto& n : names)
    crc = h5::crc32c(n.data(), n.size() + 1, crc);  // with the NUL: names stay apart
  if (lowres.defined()) {
    const Tensor c = lowres.cpu().contiguous();
    crc = h5::crc32c(c.data_ptr(), c.nbytes(), crc);
  }
  if (!labels.empty()) crc = h5::crc32c(labels.data(), labels.size() * sizeof(int64_t), crc);
  return crc;
}

}  // namespace iris::tools
