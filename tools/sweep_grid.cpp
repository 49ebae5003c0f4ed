#include "tools/sweep_grid.h"

#include <algorithm>
#include <cctype>
#include <cmath>

#include "framework/core/error.h"
#include "tools/stage_settings.h"

namespace iris::tools {

namespace {

// Whether the whole of `text` is a number (then in *v).
bool parse_number(const std::string& text, double* v) {
  size_t used = 0;
  try {
    *v = std::stod(text, &used);
  } catch (const std::exception&) {
    return false;
  }
  return used == text.size();
}

void check_value(const std::string& key, const std::string& v, const std::string& spec) {
  if (key == "sampler") {
    IRIS_CHECK(v == "ddpm" || v == "ddim" || v == "dpmpp2m", "--vary '", spec,
               "': sampler must be ddpm, ddim or dpmpp2m, got '", v, "'");
    return;
  }
  if (key == "schedule") {
    IRIS_CHECK(v == "linear" || v == "cosine" || v == "respaced", "--vary '", spec,
               "': schedule must be linear, cosine or respaced, got '", v, "'");
    return;
  }
  double x = 0;
  IRIS_CHECK(parse_number(v, &x), "--vary '", spec, "': ", key, " takes numbers, got '", v, "'");
  if (key == "steps")
    IRIS_CHECK(x >= 1 && x == std::floor(x) && x < 1e9, "--vary '", spec,
               "': steps must be whole numbers of at least 1, got '", v, "'");
  else if (key == "eta" || key == "aug_level")
    IRIS_CHECK(x >= 0 && x <= 1, "--vary '", spec, "': ", key, " must be in [0, 1], got '", v, "'");
  else if (key == "guidance")
    IRIS_CHECK(x >= 0, "--vary '", spec, "': guidance must be at least 0, got '", v, "'");
  else if (key == "truncated")
    IRIS_CHECK(v == "0" || v == "1", "--vary '", spec, "': truncated takes 0 or 1, got '", v, "'");
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> parts;
  size_t start = 0;
  for (;;) {
    const size_t end = s.find(sep, start);
    parts.push_back(s.substr(start, end == std::string::npos ? std::string::npos : end - start));
    if (end == std::string::npos) return parts;
    start = end + 1;
  }
}

std::string keys_list() {
  std::string s;
  for (const auto& k : setting_keys()) s += (s.empty() ? "" : ", ") + k;
  return s;
}

bool applies(const SweepAxis& a, const LoadedStage& L, size_t i) {
  return (a.stage < 0 || static_cast<size_t>(a.stage) == i) && setting_missing(L, a.key, i).empty();
}

}  // namespace

std::string SweepAxis::name() const {
  return stage < 0 ? key : std::to_string(stage) + ":" + key;
}

SweepAxis parse_axis(const std::string& spec) {
  const size_t eq = spec.find('=');
  IRIS_CHECK(eq != std::string::npos && eq > 0, "--vary '", spec,
             "' must be KEY=V1,V2,... (or STAGE:KEY=...), KEY one of ", keys_list());
  SweepAxis a;
  std::string key = spec.substr(0, eq);
  if (const size_t colon = key.find(':'); colon != std::string::npos) {
    const std::string index = key.substr(0, colon);
    IRIS_CHECK(!index.empty() && index.size() < 6 &&
                   std::all_of(index.begin(), index.end(), [](char c) { return std::isdigit(c) != 0; }),
               "--vary '", spec, "': the stage prefix must be a stage index (0 for the first), got '", index,
               "'");
    a.stage = std::stoi(index);
    key = key.substr(colon + 1);
  }
  const auto& keys = setting_keys();
  IRIS_CHECK(std::find(keys.begin(), keys.end(), key) != keys.end(), "--vary '", spec, "': unknown setting '",
             key, "'; the settings are ", keys_list());
  a.key = key;
  const std::string list = spec.substr(eq + 1);
  IRIS_CHECK(!list.empty(), "--vary '", spec, "' gives no values");
  for (const std::string& v : split(list, ',')) {
    IRIS_CHECK(!v.empty(), "--vary '", spec, "' has an empty value");
    IRIS_CHECK(std::find(a.values.begin(), a.values.end(), v) == a.values.end(), "--vary '", spec,
               "' gives the value '", v, "' twice");
    check_value(key, v, spec);
    a.values.push_back(v);
  }
  return a;
}

void check_axes(const std::vector<SweepAxis>& axes, const std::vector<LoadedStage>& stages) {
  IRIS_CHECK(!axes.empty(), "give at least one --vary KEY=V1,V2,... (the settings to sweep)");
  for (size_t a = 0; a < axes.size(); ++a) {
    const SweepAxis& x = axes[a];
    for (size_t b = 0; b < a; ++b)
      IRIS_CHECK(axes[b].name() != x.name(), "--vary ", x.name(),
                 " is given twice: give all its values in one");
    if (x.stage >= 0) {
      IRIS_CHECK(static_cast<size_t>(x.stage) < stages.size(), "--vary ", x.name(), ": there is no stage ",
                 x.stage, " (", stages.size(), " stage", stages.size() == 1 ? "" : "s", ", numbered from 0)");
      const LoadedStage& L = stages[static_cast<size_t>(x.stage)];
      const std::string why = setting_missing(L, x.key, static_cast<size_t>(x.stage));
      IRIS_CHECK(why.empty(), "--vary ", x.name(), ": stage ", x.stage, " ('", L.path, "') has no setting ",
                 x.key, ": ", why);
      continue;
    }
    std::string reasons;
    bool any = false;
    for (size_t i = 0; i < stages.size(); ++i) {
      const std::string why = setting_missing(stages[i], x.key, i);
      any = any || why.empty();
      reasons += (reasons.empty() ? "" : "; ") + std::string("stage ") + std::to_string(i) + " ('" +
                 stages[i].path + "'): " + why;
    }
    IRIS_CHECK(any, "--vary ", x.name(), ": no stage has the setting ", x.key, " (", reasons, ")");
  }
}

std::vector<SweepPoint> grid_points(const std::vector<SweepAxis>& axes) {
  std::vector<SweepPoint> points{SweepPoint{}};
  for (const SweepAxis& a : axes) {
    std::vector<SweepPoint> next;
    for (const SweepPoint& p : points)
      for (size_t v = 0; v < a.values.size(); ++v) {
        SweepPoint q = p;
        q.push_back(v);
        next.push_back(std::move(q));
      }
    points = std::move(next);
  }
  return points;
}

nlohmann::json point_values(const std::vector<SweepAxis>& axes, const SweepPoint& point) {
  nlohmann::json j = nlohmann::json::object();
  for (size_t a = 0; a < axes.size(); ++a) j[axes[a].name()] = axes[a].values[point[a]];
  return j;
}

std::vector<StageChoice> point_settings(const std::vector<SweepAxis>& axes, const SweepPoint& point,
                                        const std::vector<LoadedStage>& stages) {
  std::vector<StageChoice> out;
  for (size_t i = 0; i < stages.size(); ++i) {
    StageSettingLists lists;
    bool truncated = false;
    // Unprefixed axes first, then this stage's own: a prefixed value wins.
    for (int pass = 0; pass < 2; ++pass)
      for (size_t a = 0; a < axes.size(); ++a) {
        const SweepAxis& x = axes[a];
        if ((pass == 0) != (x.stage < 0) || !applies(x, stages[i], i)) continue;
        const std::string& v = x.values[point[a]];
        if (x.key == "sampler") lists.samplers = {v};
        if (x.key == "schedule") lists.schedules = {v};
        if (x.key == "steps") lists.steps = {std::stoll(v)};
        if (x.key == "eta") lists.etas = {std::stod(v)};
        if (x.key == "guidance") lists.guidances = {std::stod(v)};
        if (x.key == "aug_level") lists.aug_levels = {std::stod(v)};
        if (x.key == "truncated") truncated = v == "1";
      }
    out.push_back({stage_settings(stages[i], lists, i, stages.size()), truncated});
  }
  return out;
}

nlohmann::json choice_json(const StageChoice& c) {
  return {{"sampler", c.settings.sampler},   {"schedule", c.settings.schedule},   {"steps", c.settings.steps},
          {"eta", c.settings.eta},
          {"guidance", c.settings.guidance}, {"aug_level", c.settings.aug_level}, {"truncated", c.truncated}};
}

void check_eta(const std::vector<SweepAxis>& axes, const std::vector<std::vector<StageChoice>>& choices,
               const std::vector<LoadedStage>& stages) {
  for (const SweepAxis& x : axes) {
    if (x.key != "eta") continue;
    bool any = false;
    std::string samplers;
    for (size_t i = 0; i < stages.size(); ++i) {
      if (!applies(x, stages[i], i)) continue;
      for (const auto& point : choices) any = any || point[i].settings.sampler == "ddim";
      samplers += (samplers.empty() ? "" : "; ") + std::string("stage ") + std::to_string(i) + " ('" +
                  stages[i].path + "') uses " + choices.front()[i].settings.sampler;
    }
    IRIS_CHECK(any, "--vary ", x.name(), ": eta applies to the ddim sampler, and no point samples with it (",
               samplers, "): add --vary sampler=ddim");
  }
}

}  // namespace iris::tools
