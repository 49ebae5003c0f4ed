// Loader: deterministic epoch orders, rank slices of global batches, background prefetching, resumable
// cursor. See loader.h for the contract.
#include "data/loader.h"

#include <algorithm>
#include <condition_variable>
#include <map>
#include <mutex>
#include <numeric>
#include <thread>

#include "framework/core/philox.h"

namespace iris::data {

std::vector<int64_t> epoch_order(int64_t n, uint64_t seed, int64_t epoch, bool shuffle) {
  IRIS_CHECK(n >= 0 && epoch >= 0, "epoch_order: bad size ", n, " or epoch ", epoch);
  std::vector<int64_t> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), int64_t{0});
  if (!shuffle) return order;
  const uint64_t stream = kShuffleStreamBase | static_cast<uint64_t>(epoch);
  for (int64_t i = n - 1; i > 0; --i) {
    const philox::Block b = philox::block(seed, stream, static_cast<uint64_t>(i));
    const uint64_t r = (static_cast<uint64_t>(b.v[1]) << 32) | b.v[0];
    // j uniform in [0, i] by 64x64 -> 128-bit multiply-shift (bias < 2^-30 for any realistic n).
    const auto j =
        static_cast<int64_t>((static_cast<unsigned __int128>(r) * static_cast<uint64_t>(i + 1)) >> 64);
    std::swap(order[static_cast<size_t>(i)], order[static_cast<size_t>(j)]);
  }
  return order;
}

struct Loader::Impl {
  ShardSet set;
  LoaderOptions opt;
  int64_t n = 0, batch = 0, steps = 0;
  std::vector<int> lowres;

  std::mutex order_mutex;
  std::map<int64_t, std::shared_ptr<const std::vector<int64_t>>> orders;

  struct Slot {
    Batch batch;
    std::exception_ptr error;
  };
  std::mutex mutex;
  std::condition_variable work_cv, ready_cv;
  LoaderCursor base;                  // the cursor of ticket 0
  int64_t claimed = 0, returned = 0;  // tickets (batches after base) claimed by workers / given to the caller
  uint64_t generation = 0;            // bumped by restore(): results of older generations are dropped
  bool stop = false;
  std::map<int64_t, Slot> ready;
  std::vector<std::thread> workers;

  // (epoch, step) of the batch `t` batches after cursor c.
  std::pair<int64_t, int64_t> step_of(const LoaderCursor& c, int64_t t) const {
    const int64_t a = c.epoch * steps + c.position / batch + t;
    return {a / steps, a % steps};
  }
  LoaderCursor cursor_of(const LoaderCursor& c, int64_t t) const {
    const auto [e, k] = step_of(c, t);
    return {e, k * batch};
  }

  std::shared_ptr<const std::vector<int64_t>> order(int64_t epoch) {
    std::lock_guard<std::mutex> lock(order_mutex);
    auto it = orders.find(epoch);
    if (it != orders.end()) return it->second;
    auto o = std::make_shared<const std::vector<int64_t>>(epoch_order(n, opt.seed, epoch, opt.shuffle));
    orders.emplace(epoch, o);
    while (orders.size() > 3)
      orders.erase(orders.begin()->first == epoch ? std::next(orders.begin()) : orders.begin());
    return o;
  }

  Batch build(int64_t epoch, int64_t step) {
    const auto ord = order(epoch);
    const int64_t start = step * batch;
    const int64_t m = std::min(batch, n - start);
    const int64_t R = opt.world_size, r = opt.rank;
    const int64_t lo = start + r * m / R, hi = start + (r + 1) * m / R;
    Batch b;
    b.epoch = epoch;
    b.step = step;
    b.lowres_sizes = lowres;
    b.indices.assign(ord->begin() + lo, ord->begin() + hi);
    std::vector<Sample> samples = set.samples(b.indices, lowres);
    const ShardSpec& spec = set.spec();
    if (opt.augment) {
      for (size_t i = 0; i < samples.size(); ++i) {
        const int64_t idx = b.indices[i];
        opt.augment(samples[i], AugmentContext{opt.seed, epoch, idx});
        IRIS_CHECK(samples[i].lowres.size() == lowres.size(),
                   "Loader: the augmentation hook changed the number of "
                   "low-res images of sample ",
                   idx, " from ", lowres.size(), " to ", samples[i].lowres.size());
      }
    }
    // Shapes: those of the first sample (after augmentation), or of the set for an empty slice.
    auto shape_of = [&](const Image* im, int h, int w) -> Shape {
      return im ? Shape{static_cast<int64_t>(samples.size()), im->height, im->width, im->channels}
                : Shape{0, h, w, spec.channels};
    };
    const Sample* first = samples.empty() ? nullptr : &samples[0];
    b.hr = Tensor::empty(shape_of(first ? &first->image : nullptr, spec.height, spec.width), DType::f32,
                         Device::cpu(), opt.pin_memory);
    for (size_t k = 0; k < lowres.size(); ++k)
      b.lowres.push_back(Tensor::empty(
          shape_of(first ? &first->lowres[k] : nullptr, lowres[k], spec.lowres_width(lowres[k])), DType::f32,
          Device::cpu(), opt.pin_memory));
    if (spec.has_labels) b.labels = Tensor::empty({static_cast<int64_t>(samples.size())}, DType::i32);
    auto put = [&](const Image& im, Tensor& t, size_t row, const char* what, int64_t idx) {
      IRIS_CHECK(im.height == t.size(1) && im.width == t.size(2) && im.channels == t.size(3) &&
                     im.pixels.size() == static_cast<size_t>(t.numel() / t.size(0)),
                 "Loader: ", what, " of sample ", idx, " is ", im.str(), " but the batch holds ",
                 shape_str(t.shape()), " (images of one batch must have one size)");
      u8_to_float(im.pixels.data(), t.data<float>() + row * im.pixels.size(), im.pixels.size());
    };
    for (size_t i = 0; i < samples.size(); ++i) {
      put(samples[i].image, b.hr, i, "image", b.indices[i]);
      for (size_t k = 0; k < lowres.size(); ++k)
        put(samples[i].lowres[k], b.lowres[k], i, "low-res image", b.indices[i]);
      if (spec.has_labels) b.labels.data<int32_t>()[i] = samples[i].label;
    }
    return b;
  }

  void worker() {
    while (true) {
      int64_t t = 0;
      uint64_t gen = 0;
      LoaderCursor c;
      {
        std::unique_lock<std::mutex> lock(mutex);
        work_cv.wait(lock, [&] { return stop || claimed < returned + opt.prefetch; });
        if (stop) return;
        t = claimed++;
        gen = generation;
        c = base;
      }
      Slot slot;
      try {
        const auto [e, k] = step_of(c, t);
        slot.batch = build(e, k);
        slot.batch.next = cursor_of(c, t + 1);
      } catch (...) {
        slot.error = std::current_exception();
      }
      std::lock_guard<std::mutex> lock(mutex);
      if (gen == generation) {
        ready.emplace(t, std::move(slot));
        ready_cv.notify_all();
      }
    }
  }
};

Loader::Loader(ShardSet set, LoaderOptions options) : impl_(std::make_unique<Impl>()) {
  Impl& m = *impl_;
  m.set = std::move(set);
  m.opt = std::move(options);
  const LoaderOptions& o = m.opt;
  const std::string where = "Loader over '" + m.set.dir() + "'";
  IRIS_CHECK(o.batch_size > 0, where, ": batch_size must be positive, got ", o.batch_size);
  IRIS_CHECK(o.world_size >= 1 && o.rank >= 0 && o.rank < o.world_size, where, ": rank ", o.rank,
             " is not in [0, ", o.world_size, ")");
  IRIS_CHECK(o.batch_size % o.world_size == 0, where, ": global batch ", o.batch_size, " does not divide by ",
             o.world_size, " ranks");
  IRIS_CHECK(o.num_workers >= 0 && o.prefetch >= 1, where, ": num_workers must be >= 0 and prefetch >= 1");
  m.n = m.set.size();
  m.batch = o.batch_size;
  m.steps = o.drop_last ? m.n / m.batch : (m.n + m.batch - 1) / m.batch;
  IRIS_CHECK(m.steps > 0, where, ": ", m.n, " samples make no batch of ", m.batch);
  const auto& avail = m.set.spec().lowres_sizes;
  m.lowres = o.lowres_sizes ? *o.lowres_sizes : avail;
  for (int h : m.lowres)
    IRIS_CHECK(std::find(avail.begin(), avail.end(), h) != avail.end(), where,
               ": the set has no low-res size ", h);
  for (int i = 0; i < o.num_workers; ++i) m.workers.emplace_back([&m] { m.worker(); });
}

Loader::~Loader() {
  {
    std::lock_guard<std::mutex> lock(impl_->mutex);
    impl_->stop = true;
  }
  impl_->work_cv.notify_all();
  for (auto& t : impl_->workers) t.join();
}

Batch Loader::next() {
  Impl& m = *impl_;
  if (m.opt.num_workers == 0) {
    const auto [e, k] = m.step_of(m.base, m.returned);
    Batch b = m.build(e, k);
    b.next = m.cursor_of(m.base, m.returned + 1);
    ++m.returned;
    return b;
  }
  std::unique_lock<std::mutex> lock(m.mutex);
  const int64_t t = m.returned;
  m.ready_cv.wait(lock, [&] { return m.ready.count(t) > 0; });
  Impl::Slot slot = std::move(m.ready.at(t));
  m.ready.erase(t);
  ++m.returned;
  lock.unlock();
  m.work_cv.notify_all();
  if (slot.error) std::rethrow_exception(slot.error);
  return std::move(slot.batch);
}

LoaderCursor Loader::cursor() const {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  return impl_->cursor_of(impl_->base, impl_->returned);
}

void Loader::restore(const LoaderCursor& c) {
  Impl& m = *impl_;
  const int64_t epoch_samples = m.steps * m.batch;  // with drop_last, the samples an epoch uses
  IRIS_CHECK(c.epoch >= 0 && c.position >= 0 && c.position % m.batch == 0 && c.position / m.batch <= m.steps,
             "Loader::restore: cursor (epoch ", c.epoch, ", position ", c.position,
             ") is not on a boundary of ", "global batches of ", m.batch, " in an epoch of ", m.steps,
             " steps (", std::min(epoch_samples, m.n), " samples)");
  std::lock_guard<std::mutex> lock(m.mutex);
  ++m.generation;
  m.ready.clear();
  m.base = m.cursor_of(c, 0);  // normalises "end of epoch e" to (e + 1, 0)
  m.claimed = m.returned = 0;
  m.work_cv.notify_all();
}

int64_t Loader::steps_per_epoch() const {
  return impl_->steps;
}
int64_t Loader::local_batch_size() const {
  return impl_->batch / impl_->opt.world_size;
}
const ShardSet& Loader::set() const {
  return impl_->set;
}

}  // namespace iris::data
