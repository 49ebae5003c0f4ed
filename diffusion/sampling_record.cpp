#include "diffusion/sampling_record.h"

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "diffusion/sampling_inputs.h"
#include "framework/core/error.h"
#include "framework/dist/communicator.h"
#include "framework/io/hdf5.h"

namespace iris::diffusion {

namespace fs = std::filesystem;

// ---- RankSplit, SampleSplit ------------------------------------------------------------------------------

RankSplit::RankSplit(std::vector<int64_t> pending, int64_t batch, int ranks)
    : pending_(std::move(pending)), ranks_(ranks) {
  IRIS_CHECK(batch > 0, "RankSplit: batch must be positive, got ", batch);
  IRIS_CHECK(ranks > 0, "RankSplit: ranks must be positive, got ", ranks);
  const auto n = static_cast<int64_t>(pending_.size());
  per_ = (n + ranks_ - 1) / ranks_;
  chunk_ = std::max<int64_t>(1, std::min(batch, per_));
  rounds_ = (per_ + chunk_ - 1) / chunk_;
}

std::vector<int64_t> RankSplit::rows(int64_t round, int rank) const {
  IRIS_CHECK(rank >= 0 && rank < ranks_, "RankSplit: rank ", rank, " of ", ranks_);
  const auto n = static_cast<int64_t>(pending_.size());
  const int64_t own_end = std::min(n, (rank + 1) * per_);
  const int64_t lo = std::min(own_end, rank * per_ + round * chunk_);
  const int64_t hi = std::min(own_end, lo + chunk_);
  return std::vector<int64_t>(pending_.begin() + lo, pending_.begin() + hi);
}

SampleSplit::SampleSplit(std::vector<int64_t> pending, int64_t batch,
                         std::shared_ptr<dist::Communicator> comm)
    : split_(std::move(pending), batch, comm ? comm->size() : 1),
      rank_(comm ? comm->rank() : 0),
      comm_(std::move(comm)) {}

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
  const int ranks = split_.ranks();
  for (size_t i = 0; i < row_shapes.size(); ++i) {
    // Every rank sends chunk rows (its own, then zeros); rank 0 keeps the real ones.
    Shape padded{split_.chunk()};
    padded.insert(padded.end(), row_shapes[i].begin(), row_shapes[i].end());
    Tensor send = Tensor::zeros(padded, DType::u8, comm_->device());
    if (n_own > 0) {
      Tensor dst = send.slice(0, 0, n_own);
      IRIS_CHECK(mine[i].dtype() == DType::u8 && mine[i].shape() == dst.shape(),
                 "SampleSplit::gather: output ", i, " is ", mine[i].summary(), ", expected u8 ",
                 shape_str(dst.shape()));
      dst.copy_(mine[i].to(comm_->device()));
    }
    Shape all{static_cast<int64_t>(ranks)};
    all.insert(all.end(), padded.begin(), padded.end());
    Tensor gathered = Tensor::empty(all, DType::u8, comm_->device());
    comm_->all_gather(send, gathered);
    if (!is_root()) continue;
    const Tensor host = gathered.cpu();
    for (int q = 0; q < ranks; ++q) {
      const std::vector<int64_t> theirs = split_.rows(round, q);
      if (!theirs.empty())
        put_rows(outputs[i], total, theirs,
                 host.select(0, q).slice(0, 0, static_cast<int64_t>(theirs.size())));
    }
  }
  std::vector<int64_t> got;
  if (is_root())
    for (int q = 0; q < ranks; ++q)
      for (int64_t r : split_.rows(round, q)) got.push_back(r);
  return got;
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

// ---- JsonDifference --------------------------------------------------------------------------------------

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

// ---- SampleRecord ----------------------------------------------------------------------------------------

SampleRecord::SampleRecord(std::string out, std::vector<std::string> dirs, std::vector<Shape> row_shapes,
                           std::vector<std::string> names, nlohmann::json identity, bool resume,
                           bool overwrite)
    : out_(std::move(out)),
      dirs_(std::move(dirs)),
      row_shapes_(std::move(row_shapes)),
      names_(std::move(names)),
      have_(names_.size(), 0),
      outputs_(dirs_.size()) {
  IRIS_CHECK(dirs_.size() == row_shapes_.size(), "SampleRecord: ", dirs_.size(), " output folders for ",
             row_shapes_.size(), " output shapes");
  for (const Shape& s : row_shapes_)
    IRIS_CHECK(s.size() == 3, "SampleRecord: an output's row shape must be [H, W, C], got ", shape_str(s));
  const fs::path record = fs::path(out_) / kRunRecordName;
  if (resume) {
    IRIS_CHECK(fs::exists(record), "--resume: '", out_, "' holds no sampling run (no ", kRunRecordName,
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
    for (const auto& dir : dirs_) {
      std::error_code ec;
      if (!fs::is_directory(dir, ec)) continue;
      for (const auto& e : fs::directory_iterator(dir, ec))
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
            warnings_.push_back(png.string() + " is " + img.str() + ", not " + std::to_string(s[0]) + "x" +
                                std::to_string(s[1]) + "x" + std::to_string(s[2]) + ": sampled again");
            break;
          }
          images.push_back(std::move(img));
        } catch (const Error& e) {
          warnings_.push_back(png.string() + " cannot be read (" + e.message() + "): sampled again");
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
    IRIS_CHECK(!fs::exists(record) || overwrite, "'", out_, "' already holds a sampling run (",
               kRunRecordName,
               "): pass --resume to continue it, --overwrite to replace it, or choose another --out");
  }
  fs::create_directories(out_);
  for (const auto& dir : dirs_) fs::create_directories(dir);
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

void write_sample_png(const std::string& dir, const std::string& stem, const data::Image& img) {
  const fs::path target = fs::path(dir) / (stem + ".png");
  const fs::path tmp = fs::path(dir) / (stem + ".png.tmp-" + std::to_string(::getpid()));
  data::write_png(tmp.string(), img);
  std::error_code ec;
  fs::rename(tmp, target, ec);
  if (ec) {
    fs::remove(tmp, ec);
    IRIS_THROW("cannot rename '", tmp.string(), "' to '", target.string(), "': ", ec.message());
  }
}

}  // namespace iris::diffusion
