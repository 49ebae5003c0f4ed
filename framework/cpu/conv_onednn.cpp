// f32 convolution through oneDNN, run per image inside Iris's thread pool (conv_onednn.h says why and how
// the work is split).
//
// A Plan is one oneDNN convolution primitive for a problem at a given minibatch, with the reorders between
// Iris's layouts (NHWC activations, [Cout, kh, kw, Cin] weights) and the layouts the primitive chose
// (format_tag::any: usually 16-channel blocks). Plans are built once per problem on the calling thread and
// cached; executing one is thread-safe because every execution brings its own scratchpad
// (scratchpad_mode::user) and its own buffers.
#include "framework/cpu/conv_onednn.h"

#if IRIS_HAVE_ONEDNN

#include <dlfcn.h>

#include <oneapi/dnnl/dnnl.hpp>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "framework/core/error.h"
#include "framework/cpu/parallel.h"

namespace iris::cpu::onednn {

namespace {

using dnnl::memory;
using Tag = memory::format_tag;

// Weight gradient: the batch is cut into at most this many groups (and at most 64 MiB of per-group gradients),
// a number fixed by the shapes. Measured on sr3_cpu_bench_32 (batch 8, 2 cores): 4 groups of 2 images beat 8
// of 1 by 15-20% (fewer partial sums, better kernel efficiency); 2 groups were no faster than 4, and more
// groups than threads keep both cores busy when one of them is also serving another process.
constexpr int64_t kWeightGroups = 4;
constexpr int64_t kMaxPartialBytes = int64_t{64} << 20;

dnnl::engine& cpu_engine() {
  static dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

// OpenMP's thread count is a per-thread setting; oneDNN reads it on the thread that calls it. Set to 1 on
// every thread that runs oneDNN, it never starts an OpenMP team. The function is looked up rather than linked:
// it lives in the OpenMP runtime oneDNN itself loaded.
using omp_set_num_threads_t = void (*)(int);
omp_set_num_threads_t omp_set_num_threads_fn() {
  static const auto fn = reinterpret_cast<omp_set_num_threads_t>(dlsym(RTLD_DEFAULT, "omp_set_num_threads"));
  return fn;
}

void run_single_threaded_here() {
  thread_local bool done = false;
  if (!done) {
    omp_set_num_threads_fn()(1);
    done = true;
  }
}

enum class Pass { forward, backward_data, backward_weight };

struct Key {
  ConvParams p;  // p.N is the primitive's minibatch
  Pass pass;
  bool bias;
  bool winograd;  // oneDNN's Winograd F(4x4, 3x3) instead of the direct method
  bool operator==(const Key&) const = default;
};

struct KeyHash {
  size_t operator()(const Key& k) const {
    return ConvParamsHash{}(k.p) * 31u + static_cast<size_t>(k.pass) * 4u + (k.bias ? 2u : 0u) +
           (k.winograd ? 1u : 0u);
  }
};

// One tensor argument of the primitive: Iris's layout, the primitive's, and the reorder that carries data
// between them in the direction it flows (absent when both are the same).
struct Port {
  int arg = 0;  // DNNL_ARG_* of the primitive
  memory::desc user, inner;
  std::optional<dnnl::reorder> reorder;
  size_t reorder_scratch = 0;

  size_t inner_bytes() const { return reorder ? inner.get_size() : 0; }
};

// forward: a = src, b = weights, c = dst; backward data: a = diff_dst, b = weights, c = diff_src;
// weight gradient: a = src, b = diff_dst, c = diff_weights. a and b flow in, c flows out.
struct Plan {
  dnnl::primitive conv;
  Port a, b, c;
  bool winograd = false;
  std::string implementation;  // oneDNN's name for the kernel it chose
  memory::desc bias;  // forward with a bias only
  size_t conv_scratch = 0;

  // Bytes one execution needs besides the user buffers: a, b and c in the primitive's layouts, scratchpads.
  size_t task_bytes() const {
    return aligned(a.inner_bytes()) + aligned(b.inner_bytes()) + aligned(c.inner_bytes()) +
           aligned(std::max({conv_scratch, a.reorder_scratch, b.reorder_scratch, c.reorder_scratch}));
  }
  static size_t aligned(size_t n) { return (n + 63) / 64 * 64; }
};

dnnl::primitive_attr user_scratchpad() {
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  return attr;
}

Port make_port(int arg, const memory::desc& user, const memory::desc& inner, bool flows_in) {
  Port port{arg, user, inner, std::nullopt, 0};
  if (user == inner) return port;
  const memory::desc& from = flows_in ? user : inner;
  const memory::desc& to = flows_in ? inner : user;
  dnnl::reorder::primitive_desc pd(cpu_engine(), from, cpu_engine(), to, user_scratchpad());
  port.reorder = dnnl::reorder(pd);
  port.reorder_scratch = pd.scratchpad_desc().get_size();
  return port;
}

memory::desc nhwc(int64_t n, int64_t c, int64_t h, int64_t w, Tag tag = Tag::nhwc) {
  return memory::desc({n, c, h, w}, memory::data_type::f32, tag);
}

// oneDNN's right/bottom padding for Iris's floor-rounded output size (may be less than the left padding).
memory::dims right_padding(const ConvParams& p) {
  return {(p.Ho - 1) * p.sh + p.kh - p.H - p.ph, (p.Wo - 1) * p.sw + p.kw - p.W - p.pw};
}

std::shared_ptr<const Plan> build_plan(const Key& k) {
  const ConvParams& p = k.p;
  const auto any = [](int64_t n, int64_t c, int64_t h, int64_t w) { return nhwc(n, c, h, w, Tag::any); };
  const memory::dims strides{p.sh, p.sw}, pad_l{p.ph, p.pw}, pad_r = right_padding(p);
  // Direct: activations stay NHWC (oneDNN 2.6 has NHWC kernels for all three passes on AVX-512: brgconv
  // forward, JIT data and weight gradients, as fast as on its blocked layouts, and no activation is
  // reordered). Winograd works on 16-channel blocks only: activations are reordered in and out per task.
  // The weights take the primitive's preferred layout either way (one reorder per call).
  const dnnl::algorithm algo =
      k.winograd ? dnnl::algorithm::convolution_winograd : dnnl::algorithm::convolution_direct;
  const memory::desc src = k.winograd ? any(p.N, p.Cin, p.H, p.W) : nhwc(p.N, p.Cin, p.H, p.W),
                     dst = k.winograd ? any(p.N, p.Cout, p.Ho, p.Wo) : nhwc(p.N, p.Cout, p.Ho, p.Wo),
                     wei = any(p.Cout, p.Cin, p.kh, p.kw);
  const memory::desc user_src = nhwc(p.N, p.Cin, p.H, p.W), user_dst = nhwc(p.N, p.Cout, p.Ho, p.Wo),
                     user_wei = nhwc(p.Cout, p.Cin, p.kh, p.kw, Tag::ohwi);
  const memory::desc bias = k.bias ? memory::desc({p.Cout}, memory::data_type::f32, Tag::x) : memory::desc();
  const dnnl::convolution_forward::desc fwd(dnnl::prop_kind::forward_training, algo, src, wei, bias, dst,
                                            strides, pad_l, pad_r);
  auto plan = std::make_shared<Plan>();
  plan->winograd = k.winograd;
  const auto attr = user_scratchpad();
  if (k.pass == Pass::forward) {
    const dnnl::convolution_forward::primitive_desc pd(fwd, attr, cpu_engine());
    plan->implementation = pd.impl_info_str();
    plan->conv = dnnl::convolution_forward(pd);
    plan->conv_scratch = pd.scratchpad_desc().get_size();
    plan->a = make_port(DNNL_ARG_SRC, user_src, pd.src_desc(), true);
    plan->b = make_port(DNNL_ARG_WEIGHTS, user_wei, pd.weights_desc(), true);
    plan->c = make_port(DNNL_ARG_DST, user_dst, pd.dst_desc(), false);
    plan->bias = bias;
    return plan;
  }
  const dnnl::convolution_forward::primitive_desc hint(fwd, cpu_engine());
  if (k.pass == Pass::backward_data) {
    const dnnl::convolution_backward_data::desc d(algo, src, wei, dst, strides, pad_l, pad_r);
    const dnnl::convolution_backward_data::primitive_desc pd(d, attr, cpu_engine(), hint);
    plan->implementation = pd.impl_info_str();
    plan->conv = dnnl::convolution_backward_data(pd);
    plan->conv_scratch = pd.scratchpad_desc().get_size();
    plan->a = make_port(DNNL_ARG_DIFF_DST, user_dst, pd.diff_dst_desc(), true);
    plan->b = make_port(DNNL_ARG_WEIGHTS, user_wei, pd.weights_desc(), true);
    plan->c = make_port(DNNL_ARG_DIFF_SRC, user_src, pd.diff_src_desc(), false);
    return plan;
  }
  const dnnl::convolution_backward_weights::desc d(algo, src, wei, dst, strides, pad_l, pad_r);
  const dnnl::convolution_backward_weights::primitive_desc pd(d, attr, cpu_engine(), hint);
  plan->implementation = pd.impl_info_str();
  plan->conv = dnnl::convolution_backward_weights(pd);
  plan->conv_scratch = pd.scratchpad_desc().get_size();
  plan->a = make_port(DNNL_ARG_SRC, user_src, pd.src_desc(), true);
  plan->b = make_port(DNNL_ARG_DIFF_DST, user_dst, pd.diff_dst_desc(), true);
  plan->c = make_port(DNNL_ARG_DIFF_WEIGHTS, user_wei, pd.diff_weights_desc(), false);
  return plan;
}

// The cached plan for `k`, or null when oneDNN cannot run it (it then never will: the answer is cached too).
std::shared_ptr<const Plan> plan_for(const Key& k) {
  static std::mutex mutex;
  static std::unordered_map<Key, std::shared_ptr<const Plan>, KeyHash> plans;
  std::lock_guard<std::mutex> lock(mutex);
  if (auto it = plans.find(k); it != plans.end()) return it->second;
  std::shared_ptr<const Plan> plan;
  const memory::dims pad_r = right_padding(k.p);
  if (pad_r[0] >= 0 && pad_r[1] >= 0) {
    run_single_threaded_here();
    try {
      plan = build_plan(k);
    } catch (const dnnl::error&) {
      plan = nullptr;  // an unsupported problem: the im2col path takes it
    }
  }
  plans.emplace(k, plan);
  return plan;
}

// A thread's scratch memory: 64-byte aligned, kept and only grown between calls, so that a step does not
// map (and the kernel zero) fresh pages for every convolution. At most a few MiB per thread.
char* thread_scratch(size_t bytes) {
  struct Buffer {
    char* data = nullptr;
    size_t size = 0;
    ~Buffer() { std::free(data); }
  };
  thread_local Buffer buf;
  if (buf.size < bytes) {
    std::free(buf.data);
    buf.size = Plan::aligned(bytes);
    buf.data = static_cast<char*>(std::aligned_alloc(64, buf.size));
    if (!buf.data) buf.size = 0;
    IRIS_CHECK(buf.data != nullptr, "conv2d (oneDNN): cannot allocate ", bytes, " bytes of scratch");
  }
  return buf.data;
}

// Runs `plan` on user buffers a, b (in) and c (out), staging through the primitive's layouts in `scratch`
// (plan.task_bytes() bytes). `b_inner`, when given, is b already in the primitive's layout (the weights,
// reordered once per call). `bias` only for a forward plan built with one.
void execute(const Plan& plan, const void* a, const void* b, const void* b_inner, const float* bias, void* c,
             char* scratch) {
  run_single_threaded_here();
  dnnl::engine& eng = cpu_engine();
  dnnl::stream stream(eng);
  char* cursor = scratch;
  auto take = [&](size_t bytes) {
    char* at = cursor;
    cursor += Plan::aligned(bytes);
    return at;
  };
  char* a_in = take(plan.a.inner_bytes());
  char* b_in = take(plan.b.inner_bytes());
  char* c_in = take(plan.c.inner_bytes());
  const size_t scratch_bytes =
      std::max({plan.conv_scratch, plan.a.reorder_scratch, plan.b.reorder_scratch, plan.c.reorder_scratch});
  const memory scratchpad(memory::desc({static_cast<memory::dim>(std::max<size_t>(scratch_bytes, 1))},
                                       memory::data_type::u8, Tag::x),
                          eng, cursor);
  // User data in the primitive's layout: reordered into `inner`, or used in place when the layouts agree.
  auto stage_in = [&](const Port& port, const void* user, char* inner) {
    memory u(port.user, eng, const_cast<void*>(user));
    if (!port.reorder) return u;
    memory i(port.inner, eng, inner);
    port.reorder->execute(stream, {{DNNL_ARG_FROM, u}, {DNNL_ARG_TO, i}, {DNNL_ARG_SCRATCHPAD, scratchpad}});
    return i;
  };
  std::unordered_map<int, memory> args{{DNNL_ARG_SCRATCHPAD, scratchpad}};
  args[plan.a.arg] = stage_in(plan.a, a, a_in);
  args[plan.b.arg] =
      b_inner ? memory(plan.b.inner, eng, const_cast<void*>(b_inner)) : stage_in(plan.b, b, b_in);
  const memory c_user(plan.c.user, eng, c);
  args[plan.c.arg] = plan.c.reorder ? memory(plan.c.inner, eng, c_in) : c_user;
  if (bias) args[DNNL_ARG_BIAS] = memory(plan.bias, eng, const_cast<float*>(bias));
  plan.conv.execute(stream, args);
  if (plan.c.reorder)
    plan.c.reorder->execute(
        stream,
        {{DNNL_ARG_FROM, args[plan.c.arg]}, {DNNL_ARG_TO, c_user}, {DNNL_ARG_SCRATCHPAD, scratchpad}});
  stream.wait();
}

// The weights (b of forward and data-gradient plans) in the primitive's layout, reordered once per call.
std::unique_ptr<char, decltype(&std::free)> weights_inner(const Plan& plan, const float* w) {
  std::unique_ptr<char, decltype(&std::free)> buf(nullptr, &std::free);
  if (!plan.b.reorder || !w) return buf;  // no reorder needed, or (w null) not wanted
  buf.reset(static_cast<char*>(std::aligned_alloc(64, Plan::aligned(plan.b.inner_bytes()))));
  IRIS_CHECK(buf != nullptr, "conv2d (oneDNN): cannot allocate the reordered weights");
  run_single_threaded_here();
  dnnl::engine& eng = cpu_engine();
  dnnl::stream stream(eng);
  std::vector<char> pad(Plan::aligned(std::max<size_t>(plan.b.reorder_scratch, 1)));
  const memory scratchpad(memory::desc({static_cast<memory::dim>(pad.size())}, memory::data_type::u8, Tag::x),
                          eng, pad.data());
  plan.b.reorder->execute(stream, {{DNNL_ARG_FROM, memory(plan.b.user, eng, const_cast<float*>(w))},
                                   {DNNL_ARG_TO, memory(plan.b.inner, eng, buf.get())},
                                   {DNNL_ARG_SCRATCHPAD, scratchpad}});
  stream.wait();
  return buf;
}

// cpu::run_tasks(f) over the pool; oneDNN's exceptions become iris::Error naming the op.
template <class F>
void run_guarded(int64_t tasks, int threads, const char* what, F&& f) {
  run_tasks(tasks, threads, [&](int64_t t, int thread) {
    try {
      f(t, thread);
    } catch (const dnnl::error& e) {
      IRIS_THROW(what, " (oneDNN): ", e.what());
    }
  });
}

// Problems oneDNN runs better than im2col + GEMM (measured with `iris bench-conv --method`, 2 cores): kernels
// larger than 1x1 on outputs of at least 36 pixels (6x6). A pointwise convolution is one GEMM on the input as
// it is; on 4x4 outputs (16 pixels) a task's call has too little work (8 x 64 -> 64: 0.52-0.89 ms forward +
// backward against 0.48), while at 7x7 oneDNN wins (32 x 64 -> 64: 2.05 ms with Winograd against 3.49). A
// head of 1-3 output channels runs its forward and weight gradient faster as GEMMs (28x28, 32 -> 1: 0.7-1.0
// ms against 1.2-1.5 forward), its data gradient 4-8x faster in oneDNN. Decided by the shapes alone, so a
// sample's result never depends on its batch.
bool suits(const ConvParams& p, Pass pass) {
  if (p.kh * p.kw == 1 || p.Ho * p.Wo < 36) return false;
  return p.Cout >= 4 || pass == Pass::backward_data;
}

ConvParams with_batch(ConvParams p, int64_t n) {
  p.N = n;
  return p;
}

// The Winograd plan for `k` when asked for and oneDNN has one (3x3, stride 1, 16-channel multiples, ...),
// else the direct plan (null when oneDNN cannot run the problem at all).
std::shared_ptr<const Plan> best_plan(Key k, bool winograd) {
  if (winograd) {
    k.winograd = true;
    if (auto plan = plan_for(k)) return plan;
  }
  k.winograd = false;
  return plan_for(k);
}

// Images per task of a forward or data-gradient pass. Direct: one (what makes a sample's result independent
// of its batch and of the thread count by construction). Winograd needs more output pixels per call to be
// efficient (~2,000: 190-240 GFLOP/s per core against ~130 at 256), so a task takes several images: as many
// as give each thread one task, at most what reaches ~2,000 pixels. A sample's result is still independent of
// how the batch is cut: each image's tiles are transformed, multiplied and summed over channels on their own
// (tests/framework/test_conv.cpp checks it bit for bit).
int64_t images_per_task(const ConvParams& p, bool winograd) {
  if (!winograd) return 1;
  const int64_t for_threads = (p.N + num_threads() - 1) / num_threads();
  const int64_t for_efficiency = (2048 + p.Ho * p.Wo - 1) / (p.Ho * p.Wo);
  return std::max<int64_t>(1, std::min(for_threads, for_efficiency));
}

// Runs a forward or data-gradient pass in tasks of whole images: a [N, ...] in, c [N, ...] out, b the weights.
bool by_images(Pass pass, const float* a, const float* w, const float* bias, float* c, const ConvParams& p,
               int64_t a_image, int64_t c_image, bool winograd, const char* what) {
  const Key base{with_batch(p, 1), pass, bias != nullptr, false};
  const auto single = best_plan(base, winograd);
  if (!single) return false;
  const int64_t per = images_per_task(p, single->winograd);
  const int64_t tasks = (p.N + per - 1) / per, last = p.N - (tasks - 1) * per;
  // Plans for the full tasks and the last one (all Winograd when the single-image plan is).
  Key full = base, tail = base;
  full.p.N = per;
  tail.p.N = last;
  const auto full_plan = per == 1 ? single : best_plan(full, single->winograd);
  const auto tail_plan = last == per ? full_plan : best_plan(tail, single->winograd);
  if (!full_plan || !tail_plan || full_plan->winograd != single->winograd ||
      tail_plan->winograd != single->winograd)
    return false;
  const auto w_inner = weights_inner(*full_plan, w);
  const auto w_inner_tail = weights_inner(*tail_plan, tail_plan == full_plan ? nullptr : w);
  const size_t task_bytes = std::max(full_plan->task_bytes(), tail_plan->task_bytes());
  run_guarded(tasks, task_threads(tasks), what, [&](int64_t t, int) {
    const bool is_tail = t == tasks - 1 && tail_plan != full_plan;
    const Plan& plan = is_tail ? *tail_plan : *full_plan;
    const void* b_inner = is_tail ? w_inner_tail.get() : w_inner.get();
    execute(plan, a + t * per * a_image, w, b_inner, bias, c + t * per * c_image, thread_scratch(task_bytes));
  });
  return true;
}

}  // namespace

bool available() {
  return omp_set_num_threads_fn() != nullptr;
}

std::string forward_implementation(const ConvParams& p, bool winograd) {
  if (!available() || !suits(p, Pass::forward)) return "";
  const auto plan = best_plan({with_batch(p, 1), Pass::forward, true, false}, winograd);
  return plan ? plan->implementation : "";
}

bool conv2d_forward(const float* x, const float* w, const float* bias, float* out, const ConvParams& p,
                    bool winograd) {
  if (!available() || !suits(p, Pass::forward)) return false;
  return by_images(Pass::forward, x, w, bias, out, p, p.H * p.W * p.Cin, p.Ho * p.Wo * p.Cout, winograd,
                   "conv2d");
}

bool conv2d_backward_data(const float* gout, const float* w, float* dx, const ConvParams& p, bool winograd) {
  if (!available() || !suits(p, Pass::backward_data)) return false;
  return by_images(Pass::backward_data, gout, w, nullptr, dx, p, p.Ho * p.Wo * p.Cout, p.H * p.W * p.Cin,
                   winograd, "conv2d backward");
}

bool conv2d_backward_weight(const float* gout, const float* x, float* dw, const ConvParams& p, bool winograd) {
  if (!available() || !suits(p, Pass::backward_weight)) return false;
  const int64_t size = p.Cout * p.kh * p.kw * p.Cin;
  const int64_t by_memory = std::max<int64_t>(1, kMaxPartialBytes / (size * int64_t{sizeof(float)}));
  const int64_t groups = std::min({p.N, kWeightGroups, by_memory});
  // Group g holds images [g*N/G, (g+1)*N/G): two sizes at most, so at most two plans.
  auto first = [&](int64_t g) { return g * p.N / groups; };
  ConvParams small = p, large = p;
  small.N = p.N / groups;
  large.N = small.N + (p.N % groups ? 1 : 0);
  const auto small_plan = best_plan({small, Pass::backward_weight, false, false}, winograd);
  const auto large_plan =
      large.N == small.N ? small_plan : best_plan({large, Pass::backward_weight, false, false}, winograd);
  if (!small_plan || !large_plan) return false;
  const size_t task_bytes = std::max(small_plan->task_bytes(), large_plan->task_bytes());
  // The other groups' gradients (group 0's goes straight into dw), in the calling thread's kept scratch.
  // (A thread_local is named through a pointer: inside the tasks, the name would mean each worker's own.)
  thread_local std::vector<float> kept;
  kept.resize(static_cast<size_t>(std::max<int64_t>(1, (groups - 1) * size)));
  float* const partials = kept.data();
  run_guarded(groups, task_threads(groups), "conv2d backward", [&](int64_t g, int) {
    const int64_t n0 = first(g), n = first(g + 1) - n0;
    const Plan& plan = n == small.N ? *small_plan : *large_plan;
    float* acc = g == 0 ? dw : partials + (g - 1) * size;
    execute(plan, x + n0 * p.H * p.W * p.Cin, gout + n0 * p.Ho * p.Wo * p.Cout, nullptr, nullptr, acc,
            thread_scratch(task_bytes));
  });
  // dw += the other groups' gradients, in group order.
  for (int64_t g = 1; g < groups; ++g) {
    const float* part = partials + (g - 1) * size;
    for (int64_t e = 0; e < size; ++e) dw[e] += part[e];
  }
  return true;
}

}  // namespace iris::cpu::onednn

#else  // built without oneDNN: every problem takes the im2col path

namespace iris::cpu::onednn {
std::string forward_implementation(const ConvParams&, bool) {
  return "";
}
bool available() {
  return false;
}
bool conv2d_forward(const float*, const float*, const float*, float*, const ConvParams&) {
  return false;
}
bool conv2d_backward_data(const float*, const float*, float*, const ConvParams&) {
  return false;
}
bool conv2d_backward_weight(const float*, const float*, float*, const ConvParams&) {
  return false;
}
}  // namespace iris::cpu::onednn

#endif  // IRIS_HAVE_ONEDNN
