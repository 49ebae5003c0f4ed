// nn: Module naming, modes, placement, checkpoints; initialisation bounds and statistics; small layers.
#include <cmath>
#include <memory>

#include "tests/common/test_util.h"

using namespace iris;
using namespace iris::test;
using namespace iris::nn;

namespace {
// A block with its own parameter registered between two children, and an integer buffer.
struct Block : Module {
  std::shared_ptr<Linear> conv1, conv2;
  Tensor scale, count;
  explicit Block(Generator& gen) {
    conv1 = register_module("conv1", std::make_shared<Linear>(3, 4, gen));
    scale = register_parameter("scale", Tensor::ones({4}));
    conv2 = register_module("conv2", std::make_shared<Linear>(4, 3, gen, /*bias=*/false));
    count = register_buffer("count", Tensor::zeros({1}, DType::i64));
  }
};

// embed, then down.0 and down.1 (Blocks in a plain container module), then a float buffer.
struct Net : Module {
  std::shared_ptr<Linear> embed;
  std::shared_ptr<Module> down;
  std::shared_ptr<Block> b0, b1;
  Tensor running;
  explicit Net(uint64_t seed) {
    Generator gen(seed);
    embed = register_module("embed", std::make_shared<Linear>(2, 3, gen));
    down = register_module("down", std::make_shared<Module>());
    b0 = down->register_module("0", std::make_shared<Block>(gen));
    b1 = down->register_module("1", std::make_shared<Block>(gen));
    running = register_buffer("running", Tensor::full({3}, 0.5));
  }
};

std::vector<std::string> names(const NamedTensors& list) {
  std::vector<std::string> out;
  for (const auto& [n, t] : list) out.push_back(n);
  return out;
}
}  // namespace

TEST_CASE("named_parameters gives dotted names, own tensors first, in registration order") {
  Net net(1);
  const std::vector<std::string> want{"embed.weight",        "embed.bias",          "down.0.scale",
                                      "down.0.conv1.weight", "down.0.conv1.bias",   "down.0.conv2.weight",
                                      "down.1.scale",        "down.1.conv1.weight", "down.1.conv1.bias",
                                      "down.1.conv2.weight"};
  CHECK(names(net.named_parameters()) == want);
  CHECK(names(net.named_buffers()) == std::vector<std::string>{"running", "down.0.count", "down.1.count"});
  CHECK(net.num_parameters() == (6 + 3) + 2 * (4 + 12 + 4 + 12));
  // The listed tensors are the modules' own handles, and they require grad.
  const auto params = net.parameters();
  REQUIRE(params.size() == 10);
  CHECK(params[3].same(net.b0->conv1->weight));
  for (const Tensor& p : params) CHECK(p.requires_grad());
  CHECK(!net.running.requires_grad());
  CHECK(net.state_dict().size() == 13);
}

TEST_CASE("a tied parameter is listed once and names are validated") {
  Generator gen(2);
  Module m;
  auto a = m.register_module("a", std::make_shared<Linear>(3, 3, gen));
  auto b = m.register_module("b", std::make_shared<Module>());
  b->register_parameter("tied", a->weight);
  CHECK(names(m.named_parameters()) == std::vector<std::string>{"a.weight", "a.bias"});
  CHECK(m.state_dict().count("b.tied") == 1);  // every name is a checkpoint key
  check_throws_with([&] { m.register_parameter("a", Tensor::ones({1})); },
                    {"register_parameter", "'a'", "already"});
  check_throws_with([&] { m.register_buffer("x.y", Tensor::ones({1})); },
                    {"register_buffer", "'x.y'", "'.'"});
  check_throws_with([&] { m.register_parameter("i", Tensor::ones({1}, DType::i32)); },
                    {"register_parameter", "'i'", "floating"});
  check_throws_with([&] { m.register_module("n", std::shared_ptr<Module>()); },
                    {"register_module", "'n'", "null"});
}

TEST_CASE("train and eval propagate to every descendant") {
  Net net(3);
  CHECK(net.is_training());
  net.eval();
  CHECK(!net.is_training());
  CHECK(!net.down->is_training());
  CHECK(!net.b1->conv2->is_training());
  net.down->train();  // a subtree only
  CHECK(!net.is_training());
  CHECK(!net.embed->is_training());
  CHECK(net.b0->is_training());
  CHECK(net.b1->conv1->is_training());
  net.train(false);
  CHECK(!net.b0->conv1->is_training());
}

TEST_CASE("state_dict round trip copies values into another model") {
  Net a(4), b(5);
  CHECK(max_abs_diff(a.embed->weight, b.embed->weight) > 0);
  {
    NoGradGuard ng;
    a.b1->count.fill_(7);
  }
  b.load_state_dict(a.state_dict());
  for (const auto& [name, t] : a.state_dict())
    CHECK(b.state_dict().at(name).to_vector<double>() == t.to_vector<double>());
  CHECK(b.b1->count.to_vector<int64_t>() == std::vector<int64_t>{7});
  // Loaded values are copies: changing a does not change b.
  {
    NoGradGuard ng;
    a.embed->weight.fill_(0);
  }
  CHECK(max_abs_diff(b.embed->weight, a.embed->weight) > 0);
}

TEST_CASE("load_state_dict reports every missing, unexpected and mis-shaped key in one error") {
  Net net(6);
  StateDict sd = net.state_dict();
  sd.erase("down.0.conv1.bias");
  sd.erase("running");
  sd["down.2.scale"] = Tensor::ones({4});
  sd["extra"] = Tensor::ones({1});
  sd["down.1.conv2.weight"] = Tensor::zeros({4, 3});  // transposed shape
  sd["embed.weight"] = Tensor::zeros({3, 2, 1});
  const Tensor before = net.b1->scale.clone();
  sd["down.1.scale"] = Tensor::full({4}, 9.0);  // valid entry: must not be applied when others fail
  check_throws_with(
      [&] { net.load_state_dict(sd); },
      {"load_state_dict", "2 missing", "down.0.conv1.bias", "running", "2 unexpected", "down.2.scale",
       "extra", "2 mis-shaped", "'down.1.conv2.weight': checkpoint [4, 3], model [3, 4]",
       "'embed.weight': checkpoint [3, 2, 1], model [3, 2]"});
  check_close(net.b1->scale, before, 0, 0);
  // Not strict: missing and unexpected keys are fine, shape mismatches are not.
  check_throws_with([&] { net.load_state_dict(sd, false); }, {"down.1.conv2.weight", "embed.weight"});
  sd.erase("down.1.conv2.weight");
  sd.erase("embed.weight");
  net.load_state_dict(sd, /*strict=*/false);
  CHECK(net.b1->scale.to_vector<float>() == std::vector<float>(4, 9.0f));
}

TEST_CASE("to(dtype) converts in place and keeps every handle valid") {
  Net net(7);
  Tensor w = net.b0->conv1->weight;  // a handle held elsewhere (as an optimizer would)
  const std::vector<float> values = w.to_vector<float>();
  sum(net.b0->conv1->forward(Tensor::ones({2, 3}))).backward();
  REQUIRE(w.grad().defined());
  net.to(DType::f64);
  CHECK(w.same(net.b0->conv1->weight));
  CHECK(w.same(net.named_parameters()[3].second));
  CHECK(w.dtype() == DType::f64);
  CHECK(w.requires_grad());
  CHECK(w.grad().dtype() == DType::f64);
  CHECK(net.running.dtype() == DType::f64);
  CHECK(net.b0->count.dtype() == DType::i64);  // integer buffers keep their dtype
  const std::vector<double> as_f64 = w.to_vector<double>();
  for (size_t i = 0; i < values.size(); ++i) CHECK(as_f64[i] == static_cast<double>(values[i]));
  // The model computes in f64 now, and gradients reach the same handle.
  net.zero_grad();
  CHECK(!w.grad().defined());
  const Tensor y = net.b0->conv1->forward(Tensor::ones({2, 3}, DType::f64));
  CHECK(y.dtype() == DType::f64);
  sum(y).backward();
  CHECK(w.grad().dtype() == DType::f64);
  net.to(DType::f32);
  CHECK(w.to_vector<float>() == values);
  net.to(Device::cpu());  // already there: nothing changes
  CHECK(w.same(net.b0->conv1->weight));
  check_throws_with([&] { net.to(DType::i32); }, {"Module::to", "i32"});
}

TEST_CASE("fans follow the [out, ..., in] layouts") {
  CHECK(init::fan_in(Tensor::empty({7, 5})) == 5);
  CHECK(init::fan_out(Tensor::empty({7, 5})) == 7);
  CHECK(init::fan_in(Tensor::empty({64, 3, 3, 32})) == 3 * 3 * 32);  // conv [Cout, kh, kw, Cin]
  CHECK(init::fan_out(Tensor::empty({64, 3, 3, 32})) == 64 * 3 * 3);
  check_throws_with([] { (void)init::fan_in(Tensor::empty({5})); }, {"fan_in", "f32[5]"});
}

TEST_CASE("kaiming_uniform and bias init: PyTorch's bounds and uniform statistics") {
  Generator gen(11);
  Linear lin(50, 400, gen);
  const double bound = 1.0 / std::sqrt(50.0);
  const auto w = lin.weight.to_vector<double>();
  const auto b = lin.bias.to_vector<double>();
  double mean = 0, sq = 0, lo = 0, hi = 0;
  for (double x : w) {
    mean += x;
    sq += x * x;
    lo = std::min(lo, x);
    hi = std::max(hi, x);
  }
  mean /= w.size();
  const double var = sq / w.size() - mean * mean;
  CHECK(lo >= -bound);
  CHECK(hi <= bound);
  CHECK(hi > 0.99 * bound);  // 20000 draws reach the ends of the range
  CHECK(lo < -0.99 * bound);
  CHECK(std::abs(mean) < 0.03 * bound);                       // ~5 sigma
  CHECK(std::abs(var / (bound * bound / 3.0) - 1.0) < 0.05);  // U(-b, b) has variance b^2 / 3
  for (double x : b) CHECK(std::abs(x) <= bound);
  CHECK(*std::max_element(b.begin(), b.end()) > 0.5 * bound);
  // The same seed gives the same model; another seed another one.
  Generator same(11), other(12);
  CHECK(Linear(50, 400, same).weight.to_vector<float>() == lin.weight.to_vector<float>());
  CHECK(Linear(50, 400, other).weight.to_vector<float>() != lin.weight.to_vector<float>());
  // kaiming with a = 0 (ReLU gain): bound sqrt(6 / fan_in).
  Tensor t = Tensor::empty({300, 6, 6, 3});
  init::kaiming_uniform_(t, gen, 0.0);
  const auto tv = t.to_vector<double>();
  const double relu_bound = std::sqrt(6.0 / 108.0);
  CHECK(*std::max_element(tv.begin(), tv.end()) <= relu_bound);
  CHECK(*std::max_element(tv.begin(), tv.end()) > 0.99 * relu_bound);
}

TEST_CASE("xavier_uniform, normal_ and zeros_ statistics and values") {
  Generator gen(13);
  Tensor w = Tensor::empty({64, 3, 3, 32}).set_requires_grad();  // grad mode on: init must not record
  init::xavier_uniform_(w, gen, 2.0);
  CHECK(w.is_leaf());
  const double bound = 2.0 * std::sqrt(6.0 / (288.0 + 576.0));
  const auto wv = w.to_vector<double>();
  CHECK(*std::max_element(wv.begin(), wv.end()) <= bound);
  CHECK(*std::min_element(wv.begin(), wv.end()) >= -bound);
  CHECK(*std::max_element(wv.begin(), wv.end()) > 0.99 * bound);

  Tensor n = Tensor::empty({100, 200}, DType::f64);
  init::normal_(n, gen, 0.5, 0.02);
  const double m = mean(n).item();
  const double sd = std::sqrt(var(n).item());
  CHECK(std::abs(m - 0.5) < 5 * 0.02 / std::sqrt(20000.0));
  CHECK(std::abs(sd / 0.02 - 1.0) < 0.03);

  init::zeros_(w);
  CHECK(max(abs(w)).item() == 0.0);
  init::constant_(n, 3.0);
  CHECK(min(n).item() == 3.0);
  check_throws_with(
      [&] {
        Tensor i = Tensor::empty({2}, DType::i32);
        init::zeros_(i);
      },
      {"init::constant_", "i32"});
}

TEST_CASE("Linear, activations and Sequential compute what their ops compute") {
  Generator gen(14);
  Sequential mlp;
  auto l1 = mlp.push_back(std::make_shared<Linear>(3, 5, gen));
  mlp.push_back(std::make_shared<SiLU>());
  auto l2 = mlp.push_back(std::make_shared<Linear>(5, 2, gen, false));
  mlp.push_back(std::make_shared<Tanh>());
  mlp.push_back(std::make_shared<Identity>());
  CHECK(names(mlp.named_parameters()) == std::vector<std::string>{"0.weight", "0.bias", "2.weight"});
  CHECK(!l2->bias.defined());
  mlp.to(DType::f64);
  const Tensor x = randn({4, 3}, 15);
  const Tensor want = tanh(linear(silu(linear(x, l1->weight, l1->bias)), l2->weight));
  const Tensor y = mlp(x);
  check_close(y, want, 0, 0);
  sum(y).backward();
  for (const Tensor& p : mlp.parameters()) {
    REQUIRE(p.grad().defined());
    CHECK(p.grad().shape() == p.shape());
  }
  check_throws_with([&] { (void)l1->forward(randn({4, 4}, 1)); }, {"Linear", "[4, 4]", "[5, 3]"});
  check_throws_with([&] { (void)mlp[5]; }, {"Sequential", "5"});
  check_throws_with([&] { Linear bad(0, 3, gen); }, {"Linear", "in = 0"});
}

TEST_CASE("Dropout drops in training and is the identity in eval mode") {
  Dropout drop(0.25);
  const Tensor x = Tensor::ones({4000}, DType::f64);
  Generator gen(16);
  const auto y = drop.forward(x, gen).to_vector<double>();
  int64_t zeros = 0;
  for (double v : y) {
    CHECK((v == 0.0 || std::abs(v - 1.0 / 0.75) < 1e-12));
    zeros += v == 0.0;
  }
  CHECK(std::abs(zeros / 4000.0 - 0.25) < 0.035);  // ~5 sigma
  drop.eval();
  CHECK(drop.forward(x, gen).same(x));
  check_throws_with([] { Dropout bad(1.0); }, {"Dropout", "[0, 1)"});
}
