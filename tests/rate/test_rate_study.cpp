// tools/rate/study.h: every rater's trials are a fixed function of (seed, rater), balanced over methods,
// with both sides used; ids and names are checked; study.json round-trips; one server per study.
#include <doctest/doctest.h>

#include <map>
#include <set>

#include "framework/core/error.h"
#include "tests/common/test_util.h"
#include "tests/rate/rate_test_util.h"
#include "tools/rate/study.h"
#include "tools/rate/token.h"

using namespace iris;
using namespace iris::rate;

namespace {

StudyConfig config(int methods, int64_t images, int64_t per_method, uint64_t seed = 0) {
  StudyConfig s;
  s.seed = seed;
  s.images = images;
  s.images_per_method = per_method;
  s.display_px = 256;
  s.height = s.width = 8;
  s.channels = 1;
  // (std::string(x).append(...): GCC 12 warns falsely (-Wrestrict) about "literal" + std::string here.)
  for (int64_t i = 0; i < images; ++i) s.image_names.push_back(std::string("img").append(std::to_string(i)));
  for (int m = 0; m < methods; ++m)
    s.methods.push_back({std::string("m").append(std::to_string(m)), "x.h5", 0, {}});
  return s;
}

}  // namespace

TEST_CASE("plan_trials: each method on images_per_method distinct images, shuffled, both sides used") {
  const StudyConfig s = config(3, 20, 12);
  const auto plan = plan_trials(s, "ann");
  REQUIRE(plan.size() == 36);
  std::map<int, std::set<int64_t>> images;
  int left = 0;
  for (const Trial& t : plan) {
    CHECK(t.image >= 0);
    CHECK(t.image < 20);
    images[t.method].insert(t.image);
    left += t.output_left ? 1 : 0;
  }
  for (int m = 0; m < 3; ++m) CHECK(images[m].size() == 12);  // no image twice for one method
  CHECK(left > 6);                                            // sides are random, not fixed
  CHECK(left < 30);
  // Shuffled: the methods are interleaved, not in blocks.
  int changes = 0;
  for (size_t i = 1; i < plan.size(); ++i) changes += plan[i].method != plan[i - 1].method;
  CHECK(changes > 10);
}

TEST_CASE("plan_trials is fixed by seed and rater: a restarted server draws the same trials") {
  const StudyConfig s = config(2, 10, 10, 7);
  CHECK(plan_trials(s, "ann") == plan_trials(s, "ann"));
  CHECK(plan_trials(s, "ann") != plan_trials(s, "bob"));
  CHECK(plan_trials(s, "ann") != plan_trials(config(2, 10, 10, 8), "ann"));
  // Pinned: the plan must not change with the compiler or standard library (answers record trial numbers).
  const auto p = plan_trials(config(2, 4, 2, 0), "ann");
  std::string got;
  for (const Trial& t : p)
    got += std::to_string(t.method) + ":" + std::to_string(t.image) + (t.output_left ? "L " : "R ");
  CHECK(got == "1:0L 1:1R 0:3R 0:0L ");
}

TEST_CASE("rater ids: names or tokens, no paths or markup") {
  CHECK(rater_id_problem("ann").empty());
  CHECK(rater_id_problem("Ann Lee").empty());
  CHECK(rater_id_problem("rater-07_x@lab.org").empty());
  CHECK(rater_id_problem("").find("empty") != std::string::npos);
  CHECK(rater_id_problem("   ").find("only spaces") != std::string::npos);
  CHECK(!rater_id_problem("../etc/passwd").empty());
  CHECK(!rater_id_problem("<script>").empty());
  CHECK(!rater_id_problem(std::string(65, 'a')).empty());
  CHECK(!rater_id_problem("caf\xc3\xa9").empty());
}

TEST_CASE("method names name cache folders: no paths") {
  check_method_name("sr3");
  check_method_name("sr3-ddim.50_steps");
  test::check_throws_with([] { check_method_name("../x"); }, {"method name '../x'", "not allowed"});
  test::check_throws_with([] { check_method_name(".hidden"); }, {"not allowed"});
  test::check_throws_with([] { check_method_name(""); }, {"not allowed"});
  test::check_throws_with([] { check_method_name("a/b"); }, {"not allowed"});
}

TEST_CASE("study.json round-trips and a malformed one is refused naming the problem") {
  StudyConfig s = config(2, 3, 2, 5);
  s.view_ms = 1500;
  s.token_hash = hash_token("secret-token");
  s.created = "2026-01-01T00:00:00Z";
  s.methods[0].attrs["sampler"] = "ddpm";
  const StudyConfig back = study_from_json(study_to_json(s), "x");
  CHECK(study_to_json(back) == study_to_json(s));
  auto j = study_to_json(s);
  j["format"] = "something-else";
  test::check_throws_with([&] { study_from_json(j, "'d/study.json'"); },
                          {"'d/study.json'", "not an Iris study"});
  j = study_to_json(s);
  j["images_per_method"] = 9;
  test::check_throws_with([&] { study_from_json(j, "'d/study.json'"); }, {"images_per_method 9"});
  j = study_to_json(s);
  j["methods"][1]["name"] = "m0";
  test::check_throws_with([&] { study_from_json(j, "'d/study.json'"); }, {"method 'm0' appears twice"});
  j = study_to_json(s);
  j.erase("seed");
  test::check_throws_with([&] { study_from_json(j, "'d/study.json'"); }, {"no 'seed'"});
}

TEST_CASE("load_study names a folder that is not a study") {
  test::TempDir dir("rate-nostudy");
  test::check_throws_with([&] { load_study(dir.path().string()); }, {"is not a study folder", "--method"});
}

TEST_CASE("tokens: salted hashes, matched in constant time, weak tokens refused") {
  const std::string h1 = hash_token("correct horse"), h2 = hash_token("correct horse");
  CHECK(h1 != h2);  // salted
  CHECK(h1.rfind("sha256:", 0) == 0);
  CHECK(h1.find("correct") == std::string::npos);
  CHECK(token_matches("correct horse", h1));
  CHECK(token_matches("correct horse", h2));
  CHECK_FALSE(token_matches("correct hors", h1));
  CHECK_FALSE(token_matches("", h1));
  CHECK_FALSE(token_matches("correct horse", "garbage"));
  test::check_throws_with([] { check_token("short"); }, {"8-256 characters"});
  test::check_throws_with([] { check_token("has a space"); }, {"without spaces"});
  check_token(random_token());
  CHECK(random_token() != random_token());
}

TEST_CASE("StudyLock: one server per study, the lock frees when its holder ends") {
  test::TempDir dir("rate-lock");
  {
    StudyLock first(dir.path().string());
    test::check_throws_with([&] { StudyLock second(dir.path().string()); },
                            {"being served by another process", "pid"});
  }
  StudyLock again(dir.path().string());
}
