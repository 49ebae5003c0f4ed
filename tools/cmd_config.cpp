// `iris config`: the configuration keys and resolved configurations.
//   iris config --keys [--section S]          every key with its type, default and meaning, by section
//   iris config show CONFIG [--set k=v ...]   the resolved TOML (every key; --changed: only those set)
#include <algorithm>
#include <cstdio>
#include <memory>
#include <sstream>

#include "diffusion/config.h"
#include "framework/core/error.h"
#include "tools/commands.h"

namespace iris::tools {

namespace {

const char* short_type(ConfigType t) {
  switch (t) {
    case ConfigType::integer:
      return "int";
    case ConfigType::number:
      return "float";
    case ConfigType::boolean:
      return "bool";
    case ConfigType::string:
      return "string";
    case ConfigType::int_list:
      return "int list";
    case ConfigType::number_list:
      return "float list";
    case ConfigType::string_list:
      return "string list";
  }
  return "?";
}

std::string number(double v) {
  std::ostringstream os;
  os.precision(15);
  os << v;
  return os.str();
}

// A default as it would be written in TOML.
std::string value_str(const ConfigValue& v) {
  return std::visit(
      [](const auto& x) -> std::string {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, int64_t>) {
          return std::to_string(x);
        } else if constexpr (std::is_same_v<T, double>) {
          return number(x);
        } else if constexpr (std::is_same_v<T, bool>) {
          return x ? "true" : "false";
        } else if constexpr (std::is_same_v<T, std::string>) {
          return "\"" + x + "\"";
        } else {
          std::string s = "[";
          for (size_t i = 0; i < x.size(); ++i) {
            if (i) s += ", ";
            if constexpr (std::is_same_v<T, std::vector<std::string>>)
              s += "\"" + x[i] + "\"";
            else if constexpr (std::is_same_v<T, std::vector<double>>)
              s += number(x[i]);
            else
              s += std::to_string(x[i]);
          }
          return s + "]";
        }
      },
      v);
}

std::string section_of(const std::string& key) {
  return key.substr(0, key.find('.'));
}

struct ConfigOptions {
  bool keys = false;
  std::string section;
  std::string file;
  std::vector<std::string> sets;
  bool changed = false;
};

void print_keys(const ConfigOptions& o) {
  const auto& schema = config_schema();
  if (!o.section.empty()) {
    const bool known = std::any_of(schema.begin(), schema.end(),
                                   [&](const ConfigKey& k) { return section_of(k.key) == o.section; });
    std::string sections;
    for (const auto& k : schema)
      if (sections.find(section_of(k.key)) == std::string::npos)
        sections += (sections.empty() ? "" : ", ") + section_of(k.key);
    IRIS_CHECK(known, "config --keys: no section '", o.section, "' (sections: ", sections, ")");
  }
  size_t kw = 0, dw = 0;
  for (const auto& k : schema) {
    kw = std::max(kw, k.key.size());
    dw = std::max(dw, value_str(k.default_value).size());
  }
  std::string section;
  for (const auto& k : schema) {
    const std::string sec = section_of(k.key);
    if (!o.section.empty() && sec != o.section) continue;
    if (sec != section) {
      std::printf("%s[%s]\n", section.empty() ? "" : "\n", sec.c_str());
      section = sec;
    }
    std::printf("  %-*s  %-11s  %-*s  %s\n", static_cast<int>(kw), k.key.c_str(), short_type(k.type),
                static_cast<int>(dw), value_str(k.default_value).c_str(), k.help.c_str());
  }
}

void print_config(const ConfigOptions& o) {
  Config cfg = Config::load(o.file);
  for (const auto& s : o.sets) cfg.set(s);
  const std::string toml = cfg.to_toml();
  if (!o.changed) {
    std::printf("%s", toml.c_str());
    return;
  }
  // Only the keys given in the file or by --set, keeping to_toml's layout.
  std::istringstream in(toml);
  std::string line, section, pending_header;
  bool any = false;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    if (line.front() == '[') {
      section = line.substr(1, line.size() - 2);
      pending_header = line;
      continue;
    }
    const std::string key = section + "." + line.substr(0, line.find(' '));
    if (!cfg.is_set(key)) continue;
    if (!pending_header.empty()) {
      std::printf("%s%s\n", any ? "\n" : "", pending_header.c_str());
      pending_header.clear();
    }
    std::printf("%s\n", line.c_str());
    any = true;
  }
  if (!any) std::printf("# every key has its default value\n");
}

}  // namespace

void register_config(CLI::App& app) {
  auto opts = std::make_shared<ConfigOptions>();
  auto* cmd =
      app.add_subcommand("config", "List the configuration keys (--keys) or show a resolved config (show)");
  cmd->add_flag("--keys", opts->keys, "print every key with its type, default and meaning, by section");
  cmd->add_option("--section", opts->section,
                  "with --keys: only this section (model, diffusion, train, ...)");
  auto* show =
      cmd->add_subcommand("show", "Print the resolved configuration (file + --set overrides) as TOML");
  show->add_option("config", opts->file, "config file (TOML)")->required()->check(CLI::ExistingFile);
  show->add_option("--set", opts->sets, "override a key: --set train.lr=2e-4 (repeatable)")
      ->type_name("KEY=VALUE")
      ->expected(1)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  show->add_flag("--changed", opts->changed, "only the keys the file or --set give (not the defaults)");
  show->callback([opts] { print_config(*opts); });
  cmd->callback([show, opts] {
    if (show->parsed()) return;
    if (!opts->keys) throw CLI::RequiredError("config: --keys or the subcommand `show CONFIG`");
    print_keys(*opts);
  });
}

}  // namespace iris::tools
