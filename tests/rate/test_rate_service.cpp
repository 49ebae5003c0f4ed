// tools/rate/service.h: the study server's logic without HTTP. Raters get their planned trials in order,
// images only of their current trial, answers only for it; every refusal leaves the record as it was; a new
// service on the same folder (a restarted server) continues each rater where they stopped.
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include "framework/core/error.h"
#include "tests/common/test_util.h"
#include "tests/rate/rate_test_util.h"
#include "tools/rate/service.h"

using namespace iris;
using namespace iris::rate;
using nlohmann::json;

namespace {

json body(const Reply& r) {
  return json::parse(r.body);
}

std::string answer_body(const std::string& rater, int64_t trial, const std::string& choice, double ms = 800) {
  return json{{"rater", rater}, {"trial", trial}, {"choice", choice}, {"response_ms", ms}}.dump();
}

// The refusal's status and message (the callers check that the record did not change).
void check_refused(const Reply& r, int status, const std::string& text) {
  INFO(r.body);
  CHECK(r.status == status);
  CHECK(body(r).value("error", "").find(text) != std::string::npos);
}

struct Fixture {
  test::TempDir root{"rate-service"};
  std::string dir = root.file("study");
  StudyConfig study;
  Fixture(bool show_input = false) {
    study = test::make_study(dir, test::write_two_methods(root.path(), 4), 2, 3, show_input);
  }
};

}  // namespace

TEST_CASE("a rater's trials come in the planned order, answers are recorded with what was shown") {
  Fixture f;
  RateService s(f.dir, f.study, [](const std::string&) {});
  const json info = body(s.study_info());
  CHECK(info["trials"] == 4);
  CHECK(info["view_ms"] == 3000);
  CHECK(info["pixelated"] == true);
  CHECK(info.dump().find("sr3") == std::string::npos);  // raters never learn the methods
  const auto plan = plan_trials(f.study, "ann");
  for (int64_t t = 0; t < 4; ++t) {
    const json n = body(s.next("ann"));
    CHECK(n["trial"] == t);
    CHECK(n["answered"] == t);
    CHECK(n["total"] == 4);
    CHECK(n["done"] == false);
    // The output is on its planned side; the other side is the truth.
    const Trial& p = plan[static_cast<size_t>(t)];
    const std::string method = f.study.methods[static_cast<size_t>(p.method)].name;
    const Reply left = s.image("ann", std::to_string(t), "left"),
                right = s.image("ann", std::to_string(t), "right");
    CHECK(left.content_type == "image/png");
    CHECK(left.body == test::read_text(p.output_left ? method_image_file(f.dir, method, p.image)
                                                     : truth_image_file(f.dir, p.image)));
    CHECK(right.body == test::read_text(p.output_left ? truth_image_file(f.dir, p.image)
                                                      : method_image_file(f.dir, method, p.image)));
    const json a = body(s.answer(answer_body("ann", t, t % 2 ? "left" : "right")));
    CHECK(a["ok"] == true);
    CHECK(a["answered"] == t + 1);
  }
  CHECK(body(s.next("ann"))["done"] == true);
  const auto answers = read_answers(answers_file(f.dir), [](const std::string&) {});
  REQUIRE(answers.size() == 4);
  for (int64_t t = 0; t < 4; ++t) {
    const Answer& a = answers[static_cast<size_t>(t)];
    const Trial& p = plan[static_cast<size_t>(t)];
    CHECK(a.rater == "ann");
    CHECK(a.trial == t);
    CHECK(a.method == f.study.methods[static_cast<size_t>(p.method)].name);
    CHECK(a.image == p.image);
    CHECK(a.image_name == "img" + std::to_string(p.image));
    CHECK(a.output_left == p.output_left);
    CHECK(a.choice_left == (t % 2 == 1));
    CHECK(a.response_ms == 800);
    CHECK(a.server_ms >= 0);
  }
}

TEST_CASE("bad answers are refused with a clear message and leave the record unchanged") {
  Fixture f;
  RateService s(f.dir, f.study, [](const std::string&) {});
  body(s.next("ann"));
  REQUIRE(s.answer(answer_body("ann", 0, "left")).status == 200);
  const std::string before = test::read_text(answers_file(f.dir));
  check_refused(s.answer(answer_body("ann", 0, "right")), 409, "trial 0 was already answered");
  check_refused(s.answer(answer_body("ann", 3, "right")), 409, "not the current trial of rater 'ann' (1)");
  check_refused(s.answer(answer_body("ann", 4, "right")), 404, "unknown trial 4");
  check_refused(s.answer(answer_body("ann", 999999, "right")), 404, "unknown trial");
  check_refused(s.answer("{not json"), 400, "not valid JSON");
  check_refused(s.answer("[1,2]"), 400, "must be a JSON object");
  check_refused(s.answer(answer_body("ann", 1, "up")), 400, "'choice' must be");
  check_refused(s.answer(answer_body("ann", 1, "left", -5)), 400, "'response_ms'");
  check_refused(s.answer(answer_body("ann", 1, "left", 1e9)), 400, "'response_ms'");
  check_refused(s.answer(answer_body("../../x", 1, "left")), 400, "rater id");
  check_refused(s.answer(answer_body("", 1, "left")), 400, "empty");
  check_refused(s.answer(R"({"rater":"ann","trial":1,"choice":"left"})"), 400, "no 'response_ms'");
  check_refused(s.answer(R"({"rater":"ann","trial":1.5,"choice":"left","response_ms":3})"), 400,
                "'trial' must be");
  check_refused(s.answer(R"({"rater":"ann","trial":-1,"choice":"left","response_ms":3})"), 400,
                "'trial' must be");
  check_refused(s.answer(R"({"rater":"ann","trial":1,"choice":"left","response_ms":3,"path":"/etc/passwd"})"),
                400, "unknown field 'path'");
  CHECK(test::read_text(answers_file(f.dir)) == before);
  CHECK(s.answers_recorded() == 1);
}

TEST_CASE("images: only the rater's current trial, only its sides, never a path") {
  Fixture f;
  RateService s(f.dir, f.study, [](const std::string&) {});
  CHECK(s.image("ann", "0", "left").status == 200);
  check_refused(s.image("ann", "1", "left"), 404, "unknown trial 1");
  check_refused(s.image("ann", "0", "input"), 400, "'side' must be left or right");
  check_refused(s.image("ann", "0", "../study.json"), 400, "'side'");
  check_refused(s.image("ann", "../../etc/passwd", "left"), 400, "'trial' must be a trial number");
  check_refused(s.image("ann", "+0", "left"), 400, "'trial'");
  check_refused(s.image("ann", "0x1", "left"), 400, "'trial'");
  check_refused(s.image("a/b", "0", "left"), 400, "rater id");
  s.next("ann");
  REQUIRE(s.answer(answer_body("ann", 0, "left")).status == 200);
  check_refused(s.image("ann", "0", "left"), 404, "the current trial of rater 'ann' is 1");  // answered: gone
  CHECK(s.image("ann", "1", "right").status == 200);
}

TEST_CASE("a study that shows the low-res input serves it as side 'input'") {
  Fixture f(true);
  RateService s(f.dir, f.study, [](const std::string&) {});
  CHECK(body(s.study_info())["show_input"] == true);
  const Reply r = s.image("bob", "0", "input");
  CHECK(r.status == 200);
  const Trial t = plan_trials(f.study, "bob")[0];
  CHECK(r.body == test::read_text(input_image_file(f.dir, t.image)));
}

TEST_CASE("a restarted service continues every rater where they stopped") {
  Fixture f;
  {
    RateService s(f.dir, f.study, [](const std::string&) {});
    s.next("ann");
    REQUIRE(s.answer(answer_body("ann", 0, "left")).status == 200);
    s.next("ann");
    REQUIRE(s.answer(answer_body("ann", 1, "right")).status == 200);
    s.next("bob");
    REQUIRE(s.answer(answer_body("bob", 0, "right")).status == 200);
  }
  RateService again(f.dir, load_study(f.dir), [](const std::string&) {});
  CHECK(again.answers_recorded() == 3);
  CHECK(body(again.next("ann"))["trial"] == 2);
  CHECK(body(again.next("bob"))["trial"] == 1);
  CHECK(body(again.next("cy"))["trial"] == 0);
  check_refused(again.answer(answer_body("ann", 1, "left")), 409, "already answered");
  CHECK(again.answer(answer_body("ann", 2, "left")).status == 200);
}

TEST_CASE("answers that do not belong to the study (another seed, an edited file) are refused at start") {
  Fixture f;
  {
    RateService s(f.dir, f.study, [](const std::string&) {});
    s.next("ann");
    REQUIRE(s.answer(answer_body("ann", 0, "left")).status == 200);
    s.next("ann");
    REQUIRE(s.answer(answer_body("ann", 1, "left")).status == 200);
  }
  StudyConfig other = f.study;
  other.seed = 99;
  bool differs = false;
  for (int k = 0; k < 2; ++k)
    differs = differs || !(plan_trials(other, "ann")[k] == plan_trials(f.study, "ann")[k]);
  REQUIRE(differs);
  test::check_throws_with([&] { RateService s(f.dir, other, [](const std::string&) {}); },
                          {"answers.jsonl' line", "belong to another study.json"});
  // A line removed from the middle: trial numbers no longer count up.
  const std::string text = test::read_text(answers_file(f.dir));
  std::ofstream(answers_file(f.dir), std::ios::trunc) << text.substr(text.find('\n') + 1);
  test::check_throws_with([&] { RateService s(f.dir, f.study, [](const std::string&) {}); },
                          {"line 1", "answered trial 1 after 0 answers"});
}
