#include "framework/core/replay_graph.h"

#include <optional>

#include "framework/core/device_backend.h"
#include "framework/core/error.h"

namespace iris {

namespace {

// An executable CUDA graph of the backend (destroyed with this object).
class CudaReplayGraph final : public ReplayGraph {
 public:
  CudaReplayGraph(const DeviceBackend& backend, void* exec, int device)
      : backend_(backend), exec_(exec), device_(device) {}
  ~CudaReplayGraph() override { backend_.graph_destroy(exec_); }
  CudaReplayGraph(const CudaReplayGraph&) = delete;
  CudaReplayGraph& operator=(const CudaReplayGraph&) = delete;
  void launch() override { backend_.graph_launch(exec_, device_); }

 private:
  const DeviceBackend& backend_;
  void* exec_;
  int device_;
};

class CudaGraphCapturer final : public GraphCapturer {
 public:
  explicit CudaGraphCapturer(const DeviceBackend& backend) : backend_(backend) {}
  bool supports(Device device) const override { return device.is_cuda(); }
  std::unique_ptr<ReplayGraph> capture(Device device, const std::function<void()>& work) const override {
    IRIS_CHECK(device.is_cuda(), "CUDA graph capture: ", device.str(), " is not a CUDA device");
    backend_.graph_capture_begin(device.index);
    try {
      work();
    } catch (...) {
      // End the capture (its graph is discarded) so that the stream takes eager work again; the work's own
      // error is the one to report.
      try {
        backend_.graph_destroy(backend_.graph_capture_end(device.index));
      } catch (const Error&) {
      }
      throw;
    }
    return std::make_unique<CudaReplayGraph>(backend_, backend_.graph_capture_end(device.index), device.index);
  }

 private:
  const DeviceBackend& backend_;
};

}  // namespace

const GraphCapturer* cuda_graph_capturer() {
  static const GraphCapturer* capturer = [] () -> const GraphCapturer* {
    const DeviceBackend* backend = cuda_backend();
    if (backend == nullptr) return nullptr;
    return new CudaGraphCapturer(*backend);  // leaked: graphs may be destroyed during static destruction
  }();
  return capturer;
}

GraphedFunction::GraphedFunction(std::string name, const GraphCapturer* capturer, size_t capacity, int warmup_runs)
    : name_(std::move(name)), capturer_(capturer), cache_(capacity, warmup_runs) {
  // The static output is shaped after an eager run, so a key runs eagerly at least once before its capture.
  IRIS_CHECK(warmup_runs >= 1, "GraphedFunction: warmup_runs must be >= 1, got ", warmup_runs);
}

// The key: the inputs' shapes and dtypes in order (an undefined input as -1), their device, the variant.
GraphKey GraphedFunction::key_of(const std::vector<Tensor>& inputs, const std::string& variant,
                                 Device device) const {
  GraphKey key;
  key.stage = name_;
  key.device = device.index;
  key.variant = variant;
  bool first = true;
  for (const Tensor& t : inputs) {
    if (!t.defined()) {
      key.shape.push_back(-1);
      continue;
    }
    if (first) {
      key.batch = t.dim() > 0 ? t.size(0) : 1;
      key.dtype = t.dtype();
      first = false;
    }
    key.shape.push_back(t.dim());
    key.shape.insert(key.shape.end(), t.shape().begin(), t.shape().end());
    key.shape.push_back(static_cast<int64_t>(t.dtype()));
  }
  return key;
}

Tensor GraphedFunction::operator()(const std::vector<Tensor>& inputs, const std::string& variant, const Fn& f) {
  IRIS_CHECK(static_cast<bool>(f), "GraphedFunction ", name_, ": no function given");
  std::optional<Device> device;
  for (const Tensor& t : inputs) {
    if (!t.defined()) continue;
    IRIS_CHECK(!device || t.device() == *device, "GraphedFunction ", name_, ": inputs on ", device->str(),
               " and ", t.device().str(), "; they must share one device");
    device = t.device();
  }
  if (capturer_ == nullptr || !device || !capturer_->supports(*device)) return f(inputs);

  const GraphKey key = key_of(inputs, variant, *device);
  switch (cache_.next(key)) {
    case Cache::Action::eager: {
      Tensor out = f(inputs);
      IRIS_CHECK(out.defined() && out.device() == *device, "GraphedFunction ", name_, ": the function's result ",
                 out.defined() ? out.summary() : "(undefined)", " is not on its inputs' device ", device->str());
      outputs_[key] = {out.shape(), out.dtype()};
      return out;
    }
    case Cache::Action::capture: {
      auto entry = std::make_shared<Entry>();
      for (const Tensor& t : inputs)
        entry->inputs.push_back(t.defined() ? Tensor::empty(t.shape(), t.dtype(), *device).copy_(t) : Tensor());
      const auto& [shape, dtype] = outputs_.at(key);
      entry->output = Tensor::empty(shape, dtype, *device);
      // Captured by pointer: the graph lives in the entry, so the entry outlives every launch.
      Entry* e = entry.get();
      const std::function<void()> work = [e, f] {
        const Tensor out = f(e->inputs);
        IRIS_CHECK(out.defined() && out.shape() == e->output.shape() && out.dtype() == e->output.dtype(),
                   "the function's result changed between runs: ",
                   out.defined() ? out.summary() : "(undefined)", " after ", e->output.summary());
        e->output.copy_(out);
      };  // `out` (and every temporary of f) is freed here, inside the capture
      try {
        entry->graph = capturer_->capture(*device, work);
      } catch (const Error& err) {
        cache_.capture_failed(key);
        last_failure_ = key.str() + ": " + err.message();
        return f(inputs);
      }
      cache_.store(key, entry);
      entry->graph->launch();
      return entry->output.clone();
    }
    case Cache::Action::replay: {
      Entry& e = *cache_.graph(key);
      for (size_t i = 0; i < inputs.size(); ++i)
        if (inputs[i].defined()) e.inputs[i].copy_(inputs[i]);
      e.graph->launch();
      return e.output.clone();
    }
  }
  IRIS_THROW("GraphedFunction: unreachable");
}

}  // namespace iris
