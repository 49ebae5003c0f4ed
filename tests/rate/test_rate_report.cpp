// tools/rate/report.h: fool rates counted by hand, too-fast answers left out, agreement on a worked example,
// bootstrap intervals that are reproducible and cover a known rate, and the table, JSON and chart.
#include <doctest/doctest.h>

#include <cmath>
#include <random>

#include "framework/core/error.h"
#include "tests/common/test_util.h"
#include "tools/rate/report.h"

using namespace iris;
using namespace iris::rate;

namespace {

StudyConfig study(int64_t images) {
  StudyConfig s;
  s.images = images;
  s.images_per_method = images;
  s.display_px = 256;
  s.height = s.width = 8;
  s.channels = 1;
  for (int64_t i = 0; i < images; ++i) s.image_names.push_back(std::to_string(i));  // names are not used
  s.methods = {{"A", "a.h5", 0, {}}, {"B", "b.h5", 0, {}}};
  return s;
}

Answer ans(const std::string& rater, const std::string& method, int64_t image, bool fooled, double ms = 900,
           bool output_left = true) {
  static int64_t trial = 0;
  Answer a;
  a.rater = rater;
  a.trial = trial++;
  a.method = method;
  a.image = image;
  a.output_left = output_left;
  a.choice_left = fooled ? output_left : !output_left;
  a.response_ms = ms;
  return a;
}

// Three raters, methods A and B: A fools half the time, B never; one answer too fast to count.
std::vector<Answer> worked_example() {
  return {ans("r1", "A", 0, true),     ans("r1", "A", 1, true),  ans("r1", "B", 0, false),
          ans("r2", "A", 0, true),     ans("r2", "A", 1, false), ans("r2", "B", 0, false),
          ans("r3", "A", 0, false),    ans("r3", "A", 1, false), ans("r3", "B", 0, false, 900, false),
          ans("r3", "B", 1, true, 120)};
}

}  // namespace

TEST_CASE("make_report: fool rates per method, too-fast answers not counted") {
  const Report r = make_report(study(2), worked_example(), {});
  CHECK(r.answers == 10);
  CHECK(r.too_fast == 1);
  CHECK(r.counted == 9);
  REQUIRE(r.methods.size() == 2);
  CHECK(r.methods[0].name == "A");
  CHECK(r.methods[0].counted == 6);
  CHECK(r.methods[0].fooled == 3);
  CHECK(r.methods[0].rate == doctest::Approx(0.5));
  CHECK(r.methods[0].raters == 3);
  CHECK(r.methods[0].images == 2);
  CHECK(r.methods[1].counted == 3);
  CHECK(r.methods[1].too_fast == 1);
  CHECK(r.methods[1].rate == 0.0);
  CHECK(r.methods[1].lo == 0.0);  // never fooled in any resample
  CHECK(r.methods[1].hi == 0.0);
  CHECK(r.methods[0].lo <= 0.5);
  CHECK(r.methods[0].hi >= 0.5);
  CHECK(r.methods[0].lo >= 0.0);
  CHECK(r.methods[0].hi <= 1.0);
}

TEST_CASE("make_report: per-rater scores and agreement with the others' majority (worked example)") {
  const Report r = make_report(study(2), worked_example(), {});
  REQUIRE(r.raters.size() == 3);
  const RaterResult& r1 = r.raters[0];
  CHECK(r1.rater == "r1");
  CHECK(r1.counted == 3);
  CHECK(r1.fooled == 2);
  CHECK(r1.left_share == doctest::Approx(2.0 / 3));  // outputs on the left: fooled answers chose left
  CHECK(r1.method_rates.at("A") == 1.0);
  CHECK(r1.method_rates.at("B") == 0.0);
  // (A,0): the others split 1-1, left out; (A,1): the others were not fooled, r1 was; (B,0): all agree.
  CHECK(r1.compared == 2);
  CHECK(r1.agreed == 1);
  CHECK(r1.agreement == 0.5);
  const RaterResult& r3 = r.raters[2];
  CHECK(r3.answered == 4);
  CHECK(r3.too_fast == 1);
  CHECK(r3.median_ms == doctest::Approx(900));
  CHECK(r3.finished);  // 4 answers: every trial of the study (2 methods x 2 images)
  CHECK_FALSE(r1.finished);
  // Pairs on shared trials: (A,0) 1 of 3 agree, (A,1) 1 of 3, (B,0) 3 of 3.
  CHECK(r.pairs == 9);
  CHECK(r.pairwise_agreement == doctest::Approx(5.0 / 9));
  CHECK(r.chance_agreement == doctest::Approx(5.0 / 9));  // p = 3/9
  CHECK(r.kappa == doctest::Approx(0.0).epsilon(1e-12));
}

TEST_CASE("make_report: the bootstrap is reproducible and its interval covers a known fool rate") {
  // 20 raters x 40 images, each trial fooled with probability 0.4 for A and 0.1 for B.
  std::mt19937_64 rng(3);
  std::bernoulli_distribution a(0.4), b(0.1);
  std::vector<Answer> answers;
  for (int r = 0; r < 20; ++r) {
    const std::string rater = std::to_string(1000 + r);
    for (int i = 0; i < 40; ++i) {
      answers.push_back(ans(rater, "A", i, a(rng)));
      answers.push_back(ans(rater, "B", i, b(rng)));
    }
  }
  ReportOptions o;
  o.bootstrap = 500;
  const Report r = make_report(study(40), answers, o);
  const Report again = make_report(study(40), answers, o);
  CHECK(r.methods[0].lo == again.methods[0].lo);
  CHECK(r.methods[0].hi == again.methods[0].hi);
  CHECK(r.methods[0].lo < 0.4);
  CHECK(r.methods[0].hi > 0.4);
  CHECK(r.methods[0].hi - r.methods[0].lo < 0.15);
  CHECK(r.methods[1].lo < 0.1);
  CHECK(r.methods[1].hi > 0.1);
  CHECK(r.methods[1].hi < r.methods[0].lo);  // the two methods are told apart
  o.seed = 1;
  const Report other = make_report(study(40), answers, o);
  CHECK(other.methods[0].lo != r.methods[0].lo);
}

TEST_CASE("format_report, report_to_json and report_chart say the same") {
  const Report r = make_report(study(2), worked_example(), {});
  const std::string table = format_report(r);
  CHECK(table.find("10 answers from 3 raters; 1 answered in under 300 ms are not counted") !=
        std::string::npos);
  CHECK(table.find("50.0%") != std::string::npos);
  CHECK(table.find("bootstrap over raters and images") != std::string::npos);
  CHECK(table.find("(unfinished)") != std::string::npos);
  CHECK(table.find("pairwise agreement between raters: 55.6% over 9 pairs") != std::string::npos);
  const auto j = report_to_json(r);
  CHECK(j["methods"][0]["fool_rate"] == 0.5);
  CHECK(j["methods"][1]["too_fast"] == 1);
  CHECK(j["raters"][0]["agreement"] == 0.5);
  CHECK(j["agreement"]["pairs"] == 9);
  const data::Image img = report_chart(r);
  CHECK(img.channels == 3);
  CHECK(img.width >= 560);
  // One rater: the table says the interval covers images only; no pairs.
  const Report one = make_report(study(2), {ans("solo", "A", 0, true), ans("solo", "A", 1, false)}, {});
  CHECK(format_report(one).find("bootstrap over images; one rater") != std::string::npos);
  CHECK(format_report(one).find("no trial was answered by two raters") != std::string::npos);
  CHECK(std::isnan(one.methods[1].rate));
  CHECK(report_to_json(one)["methods"][1]["fool_rate"].is_null());
}

TEST_CASE("make_report refuses answers for a method the study does not have, and bad options") {
  test::check_throws_with([] { make_report(study(2), {ans("r", "C", 0, true)}, {}); },
                          {"method 'C'", "does not have"});
  ReportOptions o;
  o.min_ms = -1;
  test::check_throws_with([&] { make_report(study(2), worked_example(), o); }, {"--min-ms"});
}
