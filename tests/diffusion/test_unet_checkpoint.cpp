// model.checkpoint_res_blocks: the U-Net with its res blocks checkpointed must train exactly like the plain
// one (same loss, same gradients, same dropout masks, each parameter's gradient-ready hook once) and hold
// less memory (host storage bytes, counted exactly); eval and no-grad forwards are unchanged.
#include <set>

#include "diffusion/unet.h"
#include "framework/autograd/node.h"
#include "framework/core/profiling.h"
#include "tests/common/test_util.h"

using namespace iris;
using namespace iris::diffusion;

namespace {

UNetConfig tiny(bool ckpt, const std::vector<std::string>& extra = {}) {
  Config cfg;
  for (const char* s : {"model.resolution=8", "model.in_channels=3", "model.out_channels=2",
                        "model.base_channels=8", "model.channel_mults=1,2", "model.num_res_blocks=1",
                        "model.attention_resolutions=4", "model.norm_groups=4"})
    cfg.set(s);
  for (const auto& s : extra) cfg.set(s);
  cfg.set(std::string("model.checkpoint_res_blocks=") + (ckpt ? "true" : "false"));
  return UNetConfig::from_config(cfg);
}

struct StepResult {
  double loss = 0;
  std::vector<Tensor> grads;  // per parameter, in named_parameters() order
  std::vector<int> hook_calls;
  Generator::State rng_after;
  size_t peak_forward = 0, peak_step = 0;  // host storage bytes above those alive before the forward
};

// One training step's forward and backward from a fixed init and batch (per-sample dropout generator, as the
// trainer uses).
StepResult train_step(const UNetConfig& cfg, int64_t batch = 2, DType dtype = DType::f32) {
  Generator init(1);
  UNet net(cfg, init);
  net.to(dtype);
  const int64_t R = cfg.resolution;
  Generator data(2);
  const Tensor x = randn({batch, R, R, cfg.in_channels}, data, dtype);
  const Tensor gamma = rand({batch}, data, DType::f32, Device::cpu(), 0.1, 0.9);
  const Tensor target = randn({batch, R, R, cfg.out_channels}, data, dtype);
  std::vector<uint64_t> streams;
  for (int64_t i = 0; i < batch; ++i) streams.push_back(100 + static_cast<uint64_t>(i));
  Generator rng = Generator::per_sample(5, streams);

  StepResult r;
  const auto params = net.parameters();
  r.hook_calls.assign(params.size(), 0);
  for (size_t i = 0; i < params.size(); ++i)
    params[i].register_grad_ready_hook([&r, i](const Tensor&) { r.hook_calls[i]++; });

  const size_t base = host_storage_bytes().live;
  reset_host_storage_peak();
  const Tensor loss = mse_loss(net.forward(x, gamma, Tensor(), Tensor(), &rng), target);
  r.peak_forward = host_storage_bytes().peak - base;
  loss.backward();
  r.peak_step = host_storage_bytes().peak - base;
  r.loss = loss.item();
  for (const Tensor& p : params) r.grads.push_back(p.grad());
  r.rng_after = rng.state();
  return r;
}

// How many checkpoint nodes the graph of `t` holds.
int checkpoint_nodes(const Tensor& t) {
  std::vector<autograd::Node*> stack;
  std::set<autograd::Node*> seen;
  if (t.grad_fn()) stack.push_back(t.grad_fn().get());
  int count = 0;
  while (!stack.empty()) {
    autograd::Node* n = stack.back();
    stack.pop_back();
    if (!seen.insert(n).second) continue;
    count += std::string(n->name()) == "checkpoint";
    for (const auto& e : n->inputs())
      if (e.node) stack.push_back(e.node.get());
  }
  return count;
}

// f32 to `tol` (summation order differs where gradients meet: the embedding, the skips, block inputs), f64
// to 1e-12: the recomputation itself is exact.
void check_same_step(const std::vector<std::string>& extra, DType dtype = DType::f32) {
  const double tol = dtype == DType::f64 ? 1e-12 : 5e-6;  // f32 measured: <= 1e-6
  const StepResult plain = train_step(tiny(false, extra), 2, dtype);
  const StepResult ckpt = train_step(tiny(true, extra), 2, dtype);
  CHECK(std::abs(ckpt.loss - plain.loss) <= tol * std::abs(plain.loss));
  CHECK(ckpt.rng_after == plain.rng_after);
  REQUIRE(ckpt.grads.size() == plain.grads.size());
  double worst = 0;
  for (size_t i = 0; i < plain.grads.size(); ++i) {
    CAPTURE(i);
    REQUIRE(plain.grads[i].defined());
    REQUIRE(ckpt.grads[i].defined());
    const double e = test::rel_l2(ckpt.grads[i], plain.grads[i]);
    worst = std::max(worst, e);
    CHECK(e <= tol);
    CHECK(plain.hook_calls[i] == 1);
    CHECK(ckpt.hook_calls[i] == 1);
  }
  MESSAGE("worst relative L2 gradient difference ", worst, "; forward peak ", plain.peak_forward, " -> ",
          ckpt.peak_forward, " B");
}

}  // namespace

TEST_CASE("unet checkpoint_res_blocks: same loss and gradients as without") {
  check_same_step({});
  check_same_step({}, DType::f64);
  // BigGAN resampling blocks, scale-shift norm and two heads: every ResBlock path.
  check_same_step({"model.resblock_updown=true", "model.scale_shift_norm=true", "model.skip_rescale=true",
                   "model.attention_heads=2"});
}

TEST_CASE("unet checkpoint_res_blocks: dropout draws the same masks in the recomputation") {
  // With different masks the loss would agree (forward) but the gradients would not.
  check_same_step({"model.dropout=0.3"});
  check_same_step({"model.dropout=0.3"}, DType::f64);
}

TEST_CASE("unet checkpoint_res_blocks: one node per res block in training, none in eval or without grad") {
  Generator init(1), init2(1);
  UNet net(tiny(true, {"model.dropout=0.3"}), init);
  UNet plain(tiny(false, {"model.dropout=0.3"}), init2);
  Generator data(2);
  const Tensor x = randn({2, 8, 8, 3}, data);
  const Tensor gamma = Tensor::from_vector(std::vector<float>{0.3f, 0.7f}, {2});
  {
    Generator rng(4);
    // Res blocks of the tiny config: down 1 + 1, mid 2, up 2 + 2.
    CHECK(checkpoint_nodes(net.forward(x, gamma, Tensor(), Tensor(), &rng)) == 8);
  }
  net.eval();
  plain.eval();
  const Tensor y = net.forward(x, gamma);
  CHECK(checkpoint_nodes(y) == 0);
  test::check_close(y, plain.forward(x, gamma), 0, 0);
  net.train();
  plain.train();
  NoGradGuard ng;
  Generator r1(4), r2(4);
  const Tensor y1 = net.forward(x, gamma, Tensor(), Tensor(), &r1);
  test::check_close(y1, plain.forward(x, gamma, Tensor(), Tensor(), &r2), 0, 0);
  CHECK(!y1.requires_grad());
}

TEST_CASE("unet checkpoint_res_blocks saves memory in a training step") {
  // 16x16, batch 4: activations dominate the parameters. Without checkpointing the forward keeps every
  // block's intermediates until backward; with it only each block's input (and the embedding).
  const std::vector<std::string> cfg{"model.resolution=16", "model.base_channels=16",
                                     "model.attention_resolutions=8"};
  const StepResult plain = train_step(tiny(false, cfg), 4);
  const StepResult ckpt = train_step(tiny(true, cfg), 4);
  MESSAGE("forward peak: plain ", plain.peak_forward, " B, checkpointed ", ckpt.peak_forward,
          " B; forward+backward peak: plain ", plain.peak_step, " B, checkpointed ", ckpt.peak_step, " B");
  CHECK(std::abs(ckpt.loss - plain.loss) <= 1e-6 * std::abs(plain.loss));
  CHECK(ckpt.peak_forward * 2 < plain.peak_forward);
  CHECK(ckpt.peak_step < plain.peak_step);
}
