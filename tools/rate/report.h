// `iris rate report`: the fool rate of each method (SR3 section 4.4: the share of 2AFC trials in which the
// rater took the method's output for the camera image; 50% is a perfect fake), with its uncertainty.
//
// - Trials answered faster than `min_ms` after the pair appeared are not counted (a reflex, a held key, a
//   double press) and are reported per method and per rater.
// - The 95% interval is a percentile bootstrap that resamples raters and images together (both drawn with
//   replacement, the same draw for every method in a replicate): a fool rate generalises over people and over
//   pictures, and trials of one rater or one image are not independent. With a single rater it reflects the
//   images only (and says so).
// - Per rater: the fool rate, the share of "left" answers (a rater pressing one key), the median response
//   time, and agreement: how often the rater's verdict on a (method, image) trial (fooled or not) matches the
//   majority of the other raters who judged the same trial (ties are left out). Overall: the pairwise
//   agreement between raters on shared trials, the agreement chance alone would give, and kappa.
#pragma once

#include <cstdint>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "data/image.h"
#include "tools/rate/answers.h"
#include "tools/rate/study.h"

namespace iris::rate {

inline constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

struct ReportOptions {
  double min_ms = 300;   // answers faster than this are not counted
  int bootstrap = 2000;  // replicates
  uint64_t seed = 0;     // of the bootstrap
};

struct MethodResult {
  std::string name;
  int64_t answered = 0, too_fast = 0, counted = 0, fooled = 0, raters = 0, images = 0;
  double rate = kNaN, lo = kNaN, hi = kNaN;  // fractions in [0, 1]
};

struct RaterResult {
  std::string rater;
  int64_t answered = 0, too_fast = 0, counted = 0, fooled = 0, left = 0;
  int64_t compared = 0, agreed = 0;  // trials shared with other raters that have a majority; agreeing ones
  double rate = kNaN, left_share = kNaN, median_ms = kNaN, agreement = kNaN;
  bool finished = false;                       // answered every trial of the study
  std::map<std::string, double> method_rates;  // counted trials only; methods it saw
};

struct Report {
  ReportOptions options;
  int view_ms = 0;
  int64_t trials_per_rater = 0, answers = 0, too_fast = 0, counted = 0;
  std::vector<MethodResult> methods;  // in the study's order
  std::vector<RaterResult> raters;    // by name
  int64_t pairs = 0;                  // pairs of raters' counted answers on the same trial
  double pairwise_agreement = kNaN, chance_agreement = kNaN, kappa = kNaN;
};

// Throws naming the answer when it refers to a method the study does not have.
Report make_report(const StudyConfig& study, const std::vector<Answer>& answers,
                   const ReportOptions& options);
std::string format_report(const Report& r);  // the tables printed by `iris rate report`
nlohmann::ordered_json report_to_json(const Report& r);
// SR3's Figure 6: a bar per method with its interval, the 50% line.
data::Image report_chart(const Report& r);

}  // namespace iris::rate
