#include "framework/dist/reducer.h"

#include <chrono>
#include <cstdio>
#include <utility>

#include "framework/autograd/grad_mode.h"

namespace iris::dist {

namespace {

using Clock = std::chrono::steady_clock;

double seconds(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

// Each parameter's slot in a bucket starts at a multiple of this many elements (64 bytes for f32), so that
// the gradient views handed out are aligned for vectorised kernels.
constexpr int64_t kAlign = 16;

int64_t align_up(int64_t n) {
  return (n + kAlign - 1) / kAlign * kAlign;
}

// FNV-1a over bytes: a fingerprint of the model's structure, compared across ranks.
struct Fnv {
  uint64_t h = 1469598103934665603ull;
  void add(const void* p, size_t n) {
    const auto* b = static_cast<const unsigned char*>(p);
    for (size_t i = 0; i < n; ++i) h = (h ^ b[i]) * 1099511628211ull;
  }
  void add(const std::string& s) { add(s.data(), s.size() + 1); }
  void add(int64_t v) { add(&v, sizeof v); }
};

}  // namespace

// ---- broadcast_parameters ---------------------------------------------------------------------------------

void broadcast_parameters(Communicator& comm, const nn::NamedTensors& tensors, int root) {
  if (comm.size() == 1) return;
  Fnv fp;
  for (const auto& [name, t] : tensors) {
    check_defined(t, "broadcast_parameters", name.c_str());
    fp.add(name);
    fp.add(static_cast<int64_t>(t.dtype()));
    for (int64_t d : t.shape()) fp.add(d);
  }
  // Compare structures first: broadcasting into a different model would hang or scramble silently.
  const int64_t mine[2] = {static_cast<int64_t>(fp.h), static_cast<int64_t>(tensors.size())};
  Tensor local = Tensor::from_vector(std::vector<int64_t>(mine, mine + 2), {2}, DType::i64, Device::cpu());
  if (comm.device().is_cuda()) local = local.to(comm.device());
  Tensor all = Tensor::empty({comm.size(), 2}, DType::i64, comm.device());
  comm.all_gather(local, all);
  const std::vector<int64_t> v = all.to_vector<int64_t>();
  for (int r = 0; r < comm.size(); ++r) {
    IRIS_CHECK(v[2 * r] == v[2 * root] && v[2 * r + 1] == v[2 * root + 1], "broadcast_parameters: rank ", r,
               " has a different model from rank ", root, " (", v[2 * r + 1], " vs ", v[2 * root + 1],
               " tensors, or different names, shapes or dtypes); every rank must build the same model");
  }
  NoGradGuard no_grad;
  for (const auto& [name, t] : tensors) {
    Tensor handle = t;
    comm.broadcast(handle, root);
  }
}

void broadcast_parameters(Communicator& comm, const nn::Module& module, int root) {
  nn::NamedTensors all = module.named_parameters();
  const nn::NamedTensors buffers = module.named_buffers();
  all.insert(all.end(), buffers.begin(), buffers.end());
  broadcast_parameters(comm, all, root);
}

// ---- stats ------------------------------------------------------------------------------------------------

std::string ReducerStats::str() const {
  const double n = steps > 0 ? static_cast<double>(steps) : 1.0;
  char buf[320];
  std::snprintf(buf, sizeof buf,
                "%lld steps: all-reduce %.3f ms/step, exposed in finish %.3f ms/step (%.0f%% hidden under "
                "backward), hooks %.3f ms/step, buckets launched in backward %lld, in finish %lld",
                static_cast<long long>(steps), 1e3 * comm_s / n, 1e3 * exposed_s / n, 100 * hidden_fraction(),
                1e3 * hook_s / n, static_cast<long long>(buckets_launched_in_backward),
                static_cast<long long>(buckets_launched_in_finish));
  return buf;
}

// ---- GradReducer ------------------------------------------------------------------------------------------

struct GradReducer::State {
  struct Slot {
    Tensor param;
    size_t bucket = 0;
    int64_t offset = 0;        // first element of its gradient in the bucket
    size_t position = 0;       // index within the bucket (its flag is at bucket.flags_offset + position)
    bool ready = false;        // its gradient of this pass is in the bucket
    bool accumulated = false;  // an unsynced backward since the last finish() gave it a gradient
  };
  struct Bucket {
    Tensor flat;  // [flags_offset + params.size()]: gradients, padding (zeros), one flag per parameter
    int64_t flags_offset = 0;
    std::vector<size_t> params;
    size_t pending = 0;           // parameters whose gradient has not arrived in this pass
    std::vector<size_t> missing;  // positions zero-filled by finish() (no gradient on this rank)
    bool launched = false, completion_seen = false;
    Work work;
    Clock::time_point launched_at, completed_at;
  };

  std::shared_ptr<Communicator> comm;
  ReducerOptions options;
  std::vector<Slot> slots;
  std::vector<Bucket> buckets;
  size_t next_launch = 0;   // buckets [0, next_launch) have been launched in this pass
  size_t first_unseen = 0;  // buckets before this one were seen complete
  bool sync = true;
  bool in_finish = false;
  std::vector<size_t> launch_order, ready_order, last_launch, last_ready;
  ReducerStats stats;

  void build(const std::vector<Tensor>& params);
  void on_ready(size_t index, const Tensor& grad);
  void launch_ready();
  void poll();
  void finish();
  void reset_pass();
};

void GradReducer::State::build(const std::vector<Tensor>& params) {
  std::vector<const TensorImpl*> seen;
  for (const Tensor& p : params) {
    check_defined(p, "GradReducer", "parameter");
    IRIS_CHECK(p.is_leaf() && p.requires_grad(), "GradReducer: ", p.summary(),
               " is not a trainable leaf (a parameter that requires grad)");
    IRIS_CHECK(is_floating(p.dtype()), "GradReducer: parameter ", p.summary(), " is not floating");
    IRIS_CHECK(comm->backend() == Backend::local || p.device() == comm->device(), "GradReducer: parameter ",
               p.summary(), " is not on the communicator's device ", comm->device().str());
    if (std::find(seen.begin(), seen.end(), p.impl()) != seen.end()) continue;  // tied weights: once
    seen.push_back(p.impl());
    slots.push_back(Slot{p});
  }
  // Reverse registration order: the last layers' gradients come first in backward.
  std::vector<std::pair<size_t, int64_t>> members;  // (slot, offset) of the bucket being filled
  int64_t filled = 0;
  auto close = [&] {
    if (members.empty()) return;
    Bucket b;
    const Tensor& first = slots[members.front().first].param;
    b.flags_offset = filled;
    b.flat = Tensor::zeros({filled + static_cast<int64_t>(members.size())}, first.dtype(), first.device());
    for (size_t k = 0; k < members.size(); ++k) {
      Slot& s = slots[members[k].first];
      s.bucket = buckets.size();
      s.offset = members[k].second;
      s.position = k;
      b.params.push_back(members[k].first);
    }
    b.pending = b.params.size();
    buckets.push_back(std::move(b));
    members.clear();
    filled = 0;
  };
  for (size_t i = slots.size(); i-- > 0;) {
    const Tensor& p = slots[i].param;
    const size_t es = dtype_size(p.dtype());
    const size_t cap = buckets.empty() ? options.first_bucket_bytes : options.bucket_bytes;
    if (!members.empty()) {
      const Tensor& q = slots[members.front().first].param;
      const bool same_kind = q.dtype() == p.dtype() && q.device() == p.device();
      if (!same_kind || static_cast<size_t>(filled + p.numel()) * es > cap) close();
    }
    members.emplace_back(i, filled);
    filled = align_up(filled + p.numel());
  }
  close();
}

void GradReducer::State::on_ready(size_t index, const Tensor& grad) {
  if (!sync) {
    slots[index].accumulated = true;  // an unsynced micro-batch: the gradient stays local for now
    return;
  }
  const auto t0 = Clock::now();
  Slot& s = slots[index];
  IRIS_CHECK(!s.ready, "GradReducer: the gradient of parameter #", index, " ", s.param.summary(),
             " arrived twice before finish(); call finish() after every synced backward (or set_sync(false) "
             "for the micro-batches that only accumulate)");
  Bucket& b = buckets[s.bucket];
  IRIS_ASSERT(!b.launched && b.pending > 0);
  IRIS_CHECK(grad.shape() == s.param.shape(), "GradReducer: gradient ", grad.summary(), " for parameter ",
             s.param.summary());
  NoGradGuard no_grad;
  b.flat.slice(0, s.offset, s.offset + s.param.numel()).view(s.param.shape()).copy_(grad);
  s.ready = true;
  if (--b.pending == 0) {
    ready_order.push_back(s.bucket);
    launch_ready();
  }
  poll();
  stats.hook_s += seconds(t0, Clock::now());
}

void GradReducer::State::launch_ready() {
  NoGradGuard no_grad;
  while (next_launch < buckets.size() && buckets[next_launch].pending == 0) {
    Bucket& b = buckets[next_launch];
    // Flags: 1 for every parameter this rank contributes a gradient to, 0 for the zero-filled ones.
    Tensor flags = b.flat.slice(0, b.flags_offset, b.flat.numel());
    flags.fill_(1.0);
    for (size_t pos : b.missing) flags.slice(0, pos, pos + 1).fill_(0.0);
    b.launched_at = Clock::now();
    b.work = comm->all_reduce_async(b.flat, Reduce::avg);
    b.launched = true;
    (in_finish ? stats.buckets_launched_in_finish : stats.buckets_launched_in_backward)++;
    launch_order.push_back(next_launch);
    ++next_launch;
  }
}

void GradReducer::State::poll() {
  // Noting completions as they happen measures the overlap; for MPI the test also drives progress.
  while (first_unseen < next_launch) {
    Bucket& b = buckets[first_unseen];
    if (!b.work.test()) break;
    b.completion_seen = true;
    b.completed_at = Clock::now();
    ++first_unseen;
  }
}

void GradReducer::State::finish() {
  IRIS_CHECK(sync,
             "GradReducer::finish: synchronisation is off (set_sync(false)); turn it on before the "
             "backward pass whose gradients should be averaged");
  const auto t_enter = Clock::now();
  in_finish = true;
  struct Reset {
    State* s;
    ~Reset() { s->in_finish = false; }
  } reset{this};
  NoGradGuard no_grad;
  // Parameters whose gradient came only from earlier, unsynced micro-batches contribute that accumulated
  // gradient; those that got none on this rank count as zero.
  for (size_t i = 0; i < slots.size(); ++i) {
    Slot& s = slots[i];
    if (!s.ready && s.accumulated && s.param.grad().defined()) on_ready(i, s.param.grad());
  }
  for (size_t i = 0; i < slots.size(); ++i) {
    Slot& s = slots[i];
    if (s.ready) continue;
    Bucket& b = buckets[s.bucket];
    b.flat.slice(0, s.offset, s.offset + s.param.numel()).zero_();
    b.missing.push_back(s.position);
    if (--b.pending == 0) ready_order.push_back(s.bucket);
  }
  launch_ready();
  IRIS_ASSERT(next_launch == buckets.size());
  for (Bucket& b : buckets) {
    b.work.wait();
    if (options.host_timing) b.work.synchronize();
    if (!b.completion_seen) {
      b.completion_seen = true;
      b.completed_at = Clock::now();
    }
  }
  const auto t_done = Clock::now();
  stats.exposed_s += seconds(t_enter, t_done);
  // The all-reduce time of this step: the union of the buckets' in-flight intervals.
  std::vector<std::pair<Clock::time_point, Clock::time_point>> spans;
  for (const Bucket& b : buckets) spans.emplace_back(b.launched_at, b.completed_at);
  std::sort(spans.begin(), spans.end());
  Clock::time_point cur_start{}, cur_end{};
  bool open = false;
  for (const auto& [a, e] : spans) {
    if (open && a <= cur_end) {
      cur_end = std::max(cur_end, e);
      continue;
    }
    if (open) stats.comm_s += seconds(cur_start, cur_end);
    cur_start = a;
    cur_end = e;
    open = true;
  }
  if (open) stats.comm_s += seconds(cur_start, cur_end);

  // Hand out the averages as views. A parameter this rank had no gradient for gets one only when another
  // rank had one (its averaged flag is > 0): the same decision on every rank.
  for (Bucket& b : buckets) {
    std::vector<double> flags;
    if (!b.missing.empty()) flags = b.flat.slice(0, b.flags_offset, b.flat.numel()).to_vector<double>();
    for (size_t pos = 0; pos < b.params.size(); ++pos) {
      Slot& s = slots[b.params[pos]];
      const bool local = std::find(b.missing.begin(), b.missing.end(), pos) == b.missing.end();
      if (local || flags[pos] > 0)
        s.param.set_grad(b.flat.slice(0, s.offset, s.offset + s.param.numel()).view(s.param.shape()));
      else
        s.param.set_grad(Tensor());
    }
  }
  stats.steps++;
  reset_pass();
}

void GradReducer::State::reset_pass() {
  for (Slot& s : slots) s.ready = s.accumulated = false;
  for (Bucket& b : buckets) {
    b.pending = b.params.size();
    b.missing.clear();
    b.launched = b.completion_seen = false;
    b.work = Work();
  }
  next_launch = first_unseen = 0;
  last_launch = std::move(launch_order);
  last_ready = std::move(ready_order);
  launch_order.clear();
  ready_order.clear();
}

GradReducer::GradReducer(std::shared_ptr<Communicator> comm, const nn::Module& module, ReducerOptions options)
    : GradReducer(std::move(comm), module.parameters(), options) {}

GradReducer::GradReducer(std::shared_ptr<Communicator> comm, std::vector<Tensor> params,
                         ReducerOptions options)
    : state_(std::make_shared<State>()) {
  IRIS_CHECK(comm != nullptr, "GradReducer: null communicator");
  IRIS_CHECK(options.bucket_bytes > 0 && options.first_bucket_bytes > 0,
             "GradReducer: bucket sizes must be > 0 bytes");
  state_->comm = std::move(comm);
  state_->options = options;
  state_->build(params);
  std::weak_ptr<State> weak = state_;
  for (size_t i = 0; i < state_->slots.size(); ++i) {
    state_->slots[i].param.register_grad_ready_hook([weak, i](const Tensor& g) {
      if (auto s = weak.lock()) s->on_ready(i, g);
    });
  }
}

GradReducer::~GradReducer() {
  // Reductions still in flight (a backward without finish) are completed by their Work's destructor.
}

void GradReducer::finish() {
  state_->finish();
}
void GradReducer::set_sync(bool on) {
  IRIS_CHECK(state_->next_launch == 0 && std::none_of(state_->slots.begin(), state_->slots.end(),
                                                      [](const State::Slot& s) { return s.ready; }),
             "GradReducer::set_sync: a synced backward is pending; call finish() first");
  state_->sync = on;
}
bool GradReducer::sync() const {
  return state_->sync;
}
size_t GradReducer::num_buckets() const {
  return state_->buckets.size();
}
std::vector<size_t> GradReducer::bucket_params(size_t b) const {
  IRIS_CHECK(b < state_->buckets.size(), "GradReducer::bucket_params: bucket ", b, " of ",
             state_->buckets.size());
  return state_->buckets[b].params;
}
std::vector<size_t> GradReducer::last_launch_order() const {
  return state_->last_launch;
}
std::vector<size_t> GradReducer::last_ready_order() const {
  return state_->last_ready;
}
const ReducerStats& GradReducer::stats() const {
  return state_->stats;
}
void GradReducer::reset_stats() {
  state_->stats = ReducerStats();
}
Communicator& GradReducer::communicator() const {
  return *state_->comm;
}

}  // namespace iris::dist
