#include "tools/rate/report.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <random>
#include <set>

#include "data/bar_chart.h"
#include "framework/core/error.h"

namespace iris::rate {

namespace {

struct Cell {
  int rater = 0;
  int64_t image = 0;
  int64_t fooled = 0, n = 0;
};

// q-quantile of sorted values, interpolating linearly between neighbours.
double quantile(const std::vector<double>& sorted, double q) {
  if (sorted.empty()) return kNaN;
  const double pos = q * static_cast<double>(sorted.size() - 1);
  const size_t i = static_cast<size_t>(std::floor(pos));
  const size_t j = std::min(i + 1, sorted.size() - 1);
  return sorted[i] + (pos - static_cast<double>(i)) * (sorted[j] - sorted[i]);
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return quantile(v, 0.5);
}

// Uniform in [0, n) from a 64-bit Mersenne Twister (whose output the standard fixes), by rejection.
uint64_t below(std::mt19937_64& rng, uint64_t n) {
  const uint64_t limit = UINT64_MAX - UINT64_MAX % n;
  for (;;) {
    const uint64_t v = rng();
    if (v < limit) return v % n;
  }
}

double ratio(int64_t a, int64_t b) {
  return b > 0 ? static_cast<double>(a) / static_cast<double>(b) : kNaN;
}

// Resamples raters and images with replacement `B` times; each replicate's rate per method is the pooled
// share of fooled trials over the drawn (rater, image) cells, counted as often as both were drawn.
void bootstrap(const std::vector<std::vector<Cell>>& cells, int n_raters, const std::vector<int64_t>& images,
               const ReportOptions& o, std::vector<MethodResult>& out) {
  if (o.bootstrap <= 0 || n_raters == 0 || images.empty()) return;
  std::mt19937_64 rng(o.seed);
  std::map<int64_t, size_t> image_slot;
  for (size_t k = 0; k < images.size(); ++k) image_slot[images[k]] = k;
  std::vector<std::vector<double>> reps(cells.size());
  std::vector<double> wr(static_cast<size_t>(n_raters)), wi(images.size());
  for (int b = 0; b < o.bootstrap; ++b) {
    std::fill(wr.begin(), wr.end(), 0.0);
    std::fill(wi.begin(), wi.end(), 0.0);
    for (int k = 0; k < n_raters; ++k) wr[below(rng, static_cast<uint64_t>(n_raters))] += 1;
    for (size_t k = 0; k < images.size(); ++k) wi[below(rng, images.size())] += 1;
    for (size_t m = 0; m < cells.size(); ++m) {
      double num = 0, den = 0;
      for (const Cell& c : cells[m]) {
        const double w = wr[static_cast<size_t>(c.rater)] * wi[image_slot[c.image]];
        num += w * static_cast<double>(c.fooled);
        den += w * static_cast<double>(c.n);
      }
      if (den > 0) reps[m].push_back(num / den);  // a draw without this method's trials says nothing of it
    }
  }
  for (size_t m = 0; m < cells.size(); ++m) {
    std::sort(reps[m].begin(), reps[m].end());
    out[m].lo = quantile(reps[m], 0.025);
    out[m].hi = quantile(reps[m], 0.975);
  }
}

std::string percent(double v) {
  if (!std::isfinite(v)) return "-";
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.1f%%", 100 * v);
  return buf;
}

nlohmann::ordered_json number(double v) {
  return std::isfinite(v) ? nlohmann::ordered_json(v) : nlohmann::ordered_json(nullptr);
}

}  // namespace

Report make_report(const StudyConfig& study, const std::vector<Answer>& answers, const ReportOptions& o) {
  IRIS_CHECK(o.min_ms >= 0, "rate report: --min-ms must not be negative (got ", o.min_ms, ")");
  IRIS_CHECK(o.bootstrap >= 0, "rate report: --bootstrap must not be negative (got ", o.bootstrap, ")");
  Report r;
  r.options = o;
  r.view_ms = study.view_ms;
  r.trials_per_rater = study.trials_per_rater();
  std::map<std::string, int> method_index;
  for (size_t m = 0; m < study.methods.size(); ++m) {
    method_index[study.methods[m].name] = static_cast<int>(m);
    r.methods.push_back({});
    r.methods.back().name = study.methods[m].name;
  }
  std::map<std::string, int> rater_index;
  for (const Answer& a : answers) rater_index.emplace(a.rater, 0);
  int next = 0;
  for (auto& [name, idx] : rater_index) {
    idx = next++;
    r.raters.push_back({});
    r.raters.back().rater = name;
  }

  // Counted answers per (method, rater, image), and per (method, image) across raters for agreement.
  std::vector<std::map<std::pair<int, int64_t>, Cell>> cell_maps(study.methods.size());
  std::map<std::pair<int, int64_t>, std::pair<int64_t, int64_t>> item;  // (method, image) -> (fooled, n)
  std::vector<std::vector<double>> times(r.raters.size());
  std::vector<std::map<int, std::pair<int64_t, int64_t>>> rater_method(r.raters.size());
  std::set<int64_t> images_seen;
  for (size_t k = 0; k < answers.size(); ++k) {
    const Answer& a = answers[k];
    const auto mi = method_index.find(a.method);
    IRIS_CHECK(mi != method_index.end(), "rate report: answer ", k + 1, " (rater '", a.rater, "', trial ",
               a.trial, ") is for method '", a.method, "', which the study does not have");
    const int m = mi->second, ri = rater_index[a.rater];
    MethodResult& mr = r.methods[static_cast<size_t>(m)];
    RaterResult& rr = r.raters[static_cast<size_t>(ri)];
    ++r.answers, ++mr.answered, ++rr.answered;
    times[static_cast<size_t>(ri)].push_back(a.response_ms);
    if (a.response_ms < o.min_ms) {
      ++r.too_fast, ++mr.too_fast, ++rr.too_fast;
      continue;
    }
    ++r.counted, ++mr.counted, ++rr.counted;
    const int64_t f = a.fooled() ? 1 : 0;
    mr.fooled += f, rr.fooled += f, rr.left += a.choice_left ? 1 : 0;
    Cell& c = cell_maps[static_cast<size_t>(m)][{ri, a.image}];
    c.rater = ri, c.image = a.image, c.fooled += f, ++c.n;
    auto& it = item[{m, a.image}];
    it.first += f, ++it.second;
    auto& rm = rater_method[static_cast<size_t>(ri)][m];
    rm.first += f, ++rm.second;
    images_seen.insert(a.image);
  }

  std::vector<std::vector<Cell>> cells(study.methods.size());
  for (size_t m = 0; m < cells.size(); ++m) {
    std::set<int> raters;
    std::set<int64_t> imgs;
    for (const auto& [key, c] : cell_maps[m]) {
      cells[m].push_back(c);
      raters.insert(c.rater);
      imgs.insert(c.image);
    }
    MethodResult& mr = r.methods[m];
    mr.rate = ratio(mr.fooled, mr.counted);
    mr.raters = static_cast<int64_t>(raters.size());
    mr.images = static_cast<int64_t>(imgs.size());
  }
  bootstrap(cells, static_cast<int>(r.raters.size()),
            std::vector<int64_t>(images_seen.begin(), images_seen.end()), o, r.methods);

  // Agreement: each counted answer against the majority of the other raters' counted answers on its trial.
  for (const Answer& a : answers) {
    if (a.response_ms < o.min_ms) continue;
    const auto& [f, n] = item[{method_index[a.method], a.image}];
    const int64_t mine = a.fooled() ? 1 : 0, of = f - mine, on = n - 1;
    if (on <= 0 || 2 * of == on) continue;
    RaterResult& rr = r.raters[static_cast<size_t>(rater_index[a.rater])];
    ++rr.compared;
    rr.agreed += (mine == 1) == (2 * of > on) ? 1 : 0;
  }
  int64_t agree_pairs = 0;
  for (const auto& [key, fn] : item) {
    const auto [f, n] = fn;
    r.pairs += n * (n - 1) / 2;
    agree_pairs += f * (f - 1) / 2 + (n - f) * (n - f - 1) / 2;
  }
  if (r.pairs > 0) {
    int64_t fooled = 0;
    for (const auto& m : r.methods) fooled += m.fooled;
    const double p = ratio(fooled, r.counted);
    r.pairwise_agreement = ratio(agree_pairs, r.pairs);
    r.chance_agreement = p * p + (1 - p) * (1 - p);
    if (r.chance_agreement < 1)
      r.kappa = (r.pairwise_agreement - r.chance_agreement) / (1 - r.chance_agreement);
  }
  for (size_t k = 0; k < r.raters.size(); ++k) {
    RaterResult& rr = r.raters[k];
    rr.rate = ratio(rr.fooled, rr.counted);
    rr.left_share = ratio(rr.left, rr.counted);
    rr.median_ms = median(times[k]);
    rr.agreement = ratio(rr.agreed, rr.compared);
    rr.finished = rr.answered >= r.trials_per_rater;
    for (const auto& [m, fn] : rater_method[k])
      rr.method_rates[study.methods[static_cast<size_t>(m)].name] = ratio(fn.first, fn.second);
  }
  return r;
}

std::string format_report(const Report& r) {
  std::string out;
  char line[512];
  auto add = [&](const char* fmt, auto... args) {
    std::snprintf(line, sizeof(line), fmt, args...);
    out += line;
  };
  add("Fool rate: how often raters took a method's output for the camera image (2AFC, %.1f s viewing; 50%% = "
      "indistinguishable)\n",
      r.view_ms / 1000.0);
  add("%lld answers from %zu raters; %lld answered in under %.0f ms are not counted\n\n",
      static_cast<long long>(r.answers), r.raters.size(), static_cast<long long>(r.too_fast),
      r.options.min_ms);
  size_t w = 6;
  for (const auto& m : r.methods) w = std::max(w, m.name.size());
  for (const auto& rr : r.raters) w = std::max(w, rr.rater.size());
  const int W = static_cast<int>(w);
  add("%-*s %8s %8s %8s %10s  %s\n", W, "method", "counted", "fooled", "too fast", "fool rate",
      r.raters.size() == 1 ? "95% CI (bootstrap over images; one rater)"
                           : "95% CI (bootstrap over raters and images)");
  for (const auto& m : r.methods) {
    const std::string ci = std::isfinite(m.lo) ? "[" + percent(m.lo) + ", " + percent(m.hi) + "]" : "-";
    add("%-*s %8lld %8lld %8lld %10s  %s\n", W, m.name.c_str(), static_cast<long long>(m.counted),
        static_cast<long long>(m.fooled), static_cast<long long>(m.too_fast), percent(m.rate).c_str(),
        ci.c_str());
  }
  add("\n%-*s %8s %8s %10s %6s %10s  %s\n", W, "rater", "answered", "too fast", "fool rate", "left",
      "median ms", "agrees with the others' majority");
  for (const auto& rr : r.raters) {
    std::string agree = "- (no shared trials)";
    if (rr.compared > 0) {
      std::snprintf(line, sizeof(line), "%s of %lld trials", percent(rr.agreement).c_str(),
                    static_cast<long long>(rr.compared));
      agree = line;
    }
    add("%-*s %8lld %8lld %10s %6s %10.0f  %s%s\n", W, rr.rater.c_str(), static_cast<long long>(rr.answered),
        static_cast<long long>(rr.too_fast), percent(rr.rate).c_str(), percent(rr.left_share).c_str(),
        rr.median_ms, agree.c_str(), rr.finished ? "" : "  (unfinished)");
  }
  if (r.pairs > 0)
    add("\npairwise agreement between raters: %s over %lld pairs of answers on the same trial (chance %s, "
        "kappa %.2f)\n",
        percent(r.pairwise_agreement).c_str(), static_cast<long long>(r.pairs),
        percent(r.chance_agreement).c_str(), r.kappa);
  else
    add("\npairwise agreement between raters: no trial was answered by two raters\n");
  return out;
}

nlohmann::ordered_json report_to_json(const Report& r) {
  nlohmann::ordered_json j;
  j["min_ms"] = r.options.min_ms;
  j["bootstrap"] = r.options.bootstrap;
  j["bootstrap_seed"] = r.options.seed;
  j["view_ms"] = r.view_ms;
  j["trials_per_rater"] = r.trials_per_rater;
  j["answers"] = r.answers;
  j["too_fast"] = r.too_fast;
  j["counted"] = r.counted;
  j["methods"] = nlohmann::ordered_json::array();
  for (const auto& m : r.methods)
    j["methods"].push_back({{"name", m.name},
                            {"answered", m.answered},
                            {"too_fast", m.too_fast},
                            {"counted", m.counted},
                            {"fooled", m.fooled},
                            {"fool_rate", number(m.rate)},
                            {"ci95", {number(m.lo), number(m.hi)}},
                            {"raters", m.raters},
                            {"images", m.images}});
  j["raters"] = nlohmann::ordered_json::array();
  for (const auto& rr : r.raters) {
    nlohmann::ordered_json rates = nlohmann::ordered_json::object();
    for (const auto& [name, v] : rr.method_rates) rates[name] = number(v);
    j["raters"].push_back({{"rater", rr.rater},
                           {"answered", rr.answered},
                           {"finished", rr.finished},
                           {"too_fast", rr.too_fast},
                           {"counted", rr.counted},
                           {"fooled", rr.fooled},
                           {"fool_rate", number(rr.rate)},
                           {"fool_rate_by_method", rates},
                           {"left_share", number(rr.left_share)},
                           {"median_response_ms", number(rr.median_ms)},
                           {"agreement", number(rr.agreement)},
                           {"agreement_trials", rr.compared}});
  }
  j["agreement"] = {{"pairs", r.pairs},
                    {"pairwise", number(r.pairwise_agreement)},
                    {"chance", number(r.chance_agreement)},
                    {"kappa", number(r.kappa)}};
  return j;
}

data::Image report_chart(const Report& r) {
  std::vector<data::Bar> bars;
  for (const auto& m : r.methods) {
    data::Bar b;
    b.label = m.name;
    b.note = "n=" + std::to_string(m.counted);
    b.value = 100 * m.rate;
    b.lo = 100 * m.lo;
    b.hi = 100 * m.hi;
    bars.push_back(b);
  }
  data::BarChartOptions o;
  char title[128];
  std::snprintf(title, sizeof(title), "Fool rate (2AFC, %.1f s), 95%% CI", r.view_ms / 1000.0);
  o.title = title;
  o.y_label = "fool rate (%)";
  o.value_suffix = "%";
  o.y_max = 60;
  o.reference = 50;
  o.reference_label = "50%: indistinguishable";
  o.width = std::max(560, 160 + 130 * static_cast<int>(bars.size()));
  return data::bar_chart(bars, o);
}

}  // namespace iris::rate
