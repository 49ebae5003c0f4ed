// Run configuration: TOML parsing against the schema, typed --set overrides, clear errors for misspelt or
// mistyped keys, a resolved TOML that parses back to the same values; the typed [train]/[data] settings and
// the [model] comparison of a resume.
#include "diffusion/config.h"
#include "diffusion/train_settings.h"
#include "tests/common/test_util.h"

using namespace iris;
using iris::test::check_throws_with;

TEST_CASE("defaults, TOML values and --set overrides") {
  const Config c = Config::from_toml(R"(
[model]
base_channels = 64
channel_mults = [1, 2, 4]
dropout = 0          # an integer is accepted for a number
[train]
lr = 2e-4
)",
                                     "test.toml");
  CHECK(c.get_int("model.base_channels") == 64);
  CHECK(c.get_int_list("model.channel_mults") == std::vector<int64_t>{1, 2, 4});
  CHECK(c.get_float("model.dropout") == 0.0);
  CHECK(c.get_float("train.lr") == 2e-4);
  CHECK(c.get_int("train.batch_size") == 32);  // default
  CHECK(c.is_set("train.lr"));
  CHECK(!c.is_set("train.batch_size"));
  Config d = c;
  d.set("train.lr=3e-4");
  d.set("data.dir=/some/path");
  d.set("model.channel_mults=1,2,2,4");
  d.set("model.attention_resolutions=[16, 8]");
  d.set("train.precision=bf16");
  d.set("model.skip_rescale=true");
  CHECK(d.get_float("train.lr") == 3e-4);
  CHECK(d.get_string("data.dir") == "/some/path");
  CHECK(d.get_int_list("model.channel_mults") == std::vector<int64_t>{1, 2, 2, 4});
  CHECK(d.get_int_list("model.attention_resolutions") == std::vector<int64_t>{16, 8});
  CHECK(d.get_string("train.precision") == "bf16");
  CHECK(d.get_bool("model.skip_rescale"));
}

TEST_CASE("misspelt and mistyped keys are errors naming the key") {
  check_throws_with(
      [] { (void)Config::from_toml("[model]\nchanel_mults = [1, 2]\n", "a.toml"); },
      {"a.toml", "unknown config key 'model.chanel_mults'", "did you mean 'model.channel_mults'"});
  check_throws_with([] { (void)Config::from_toml("[train]\nlr = \"fast\"\n", "b.toml"); },
                    {"b.toml", "train.lr", "expects a number"});
  check_throws_with([] { (void)Config::from_toml("[train]\nsteps = 1.5\n", "c.toml"); },
                    {"train.steps", "integer"});
  check_throws_with([] { (void)Config::from_toml("[model]\nchannel_mults = [1, \"x\"]\n", "d.toml"); },
                    {"model.channel_mults", "list of integers"});
  check_throws_with([] { (void)Config::from_toml("[train\nlr = 1\n", "e.toml"); },
                    {"invalid TOML", "e.toml:1"});
  Config c;
  check_throws_with([&] { c.set("train.lrr=1e-4"); }, {"unknown config key 'train.lrr'", "train.lr"});
  check_throws_with([&] { c.set("train.steps=ten"); }, {"train.steps", "integer", "ten"});
  check_throws_with([&] { c.set("train.steps"); }, {"key=value"});
  check_throws_with([&] { c.set("model.skip_rescale=maybe"); }, {"model.skip_rescale", "true or false"});
  check_throws_with([] { (void)Config::load("no/such/file.toml"); }, {"no/such/file.toml"});
}

TEST_CASE("the resolved TOML parses back to the same configuration") {
  Config c;
  c.set("train.lr=1.25e-4");
  c.set("model.channel_mults=1,2,4,8");
  c.set("augment.blur_sigma=0.3,0.7");
  c.set("data.dir=with \"quotes\" and spaces");
  const std::string text = c.to_toml();
  CHECK(text.find("[model]") != std::string::npos);
  const Config back = Config::from_toml(text, "resolved");
  CHECK(back.to_toml() == text);
  for (const auto& k : config_schema()) CHECK_MESSAGE(back.is_set(k.key), k.key);
  CHECK(back.get_float("train.lr") == 1.25e-4);
  CHECK(back.get_string("data.dir") == "with \"quotes\" and spaces");
}

TEST_CASE("TrainSettings reads [train] once and refuses bad values naming the key") {
  Config c;
  c.set("train.steps=7");
  c.set("train.lr_schedule=cosine");
  c.set("train.log_every=0");
  const diffusion::TrainSettings t = diffusion::TrainSettings::from_config(c);
  CHECK(t.steps == 7);
  CHECK(t.lr.total_steps == 7);
  CHECK(t.lr.decay == optim::LRScheduleOptions::Decay::cosine);
  CHECK(t.log_every == 1);  // at least every step
  for (const char* bad :
       {"train.steps=0", "train.batch_size=-1", "train.microbatch=-2", "train.keep_every=-1",
        "train.grad_clip=-1", "train.precision=f16", "train.lr_schedule=step"}) {
    CAPTURE(bad);
    Config b;
    b.set(bad);
    const std::string key = std::string(bad).substr(0, std::string(bad).find('='));
    check_throws_with([&] { (void)diffusion::TrainSettings::from_config(b); }, {key});
  }
  Config v;
  CHECK(diffusion::DataSettings::from_config(v).val_dir == diffusion::DataSettings::from_config(v).dir);
}

TEST_CASE("model_difference names the first [model] key that differs, ignoring memory-only keys") {
  Config a, b;
  CHECK(diffusion::model_difference(a, b).empty());
  b.set("model.zero_init=true");
  b.set("model.checkpoint_res_blocks=true");
  CHECK(diffusion::model_difference(a, b).empty());  // step 0 and memory only: the same model
  b.set("train.lr=0.5");
  CHECK(diffusion::model_difference(a, b).empty());  // not a model key
  b.set("model.channel_mults=1,2");
  CHECK(diffusion::model_difference(a, b) ==
        "model.channel_mults is " + a.value_text("model.channel_mults") + " in the checkpoint, [1, 2] now");
}
