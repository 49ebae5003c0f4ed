#include "diffusion/config.h"

#include <algorithm>
#include <fstream>
#include <sstream>

#include <toml++/toml.h>

#include "framework/core/error.h"

namespace iris {

namespace {

const ConfigKey* find_key(const std::string& key) {
  for (const auto& k : config_schema())
    if (k.key == key) return &k;
  return nullptr;
}

// Edit distance, to suggest the key a user probably meant.
size_t distance(const std::string& a, const std::string& b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j)
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

[[noreturn]] void unknown_key(const std::string& key, const std::string& source) {
  std::string best;
  size_t best_d = 1000;
  for (const auto& k : config_schema()) {
    const size_t d = distance(key, k.key);
    if (d < best_d) {
      best_d = d;
      best = k.key;
    }
  }
  std::string hint = best_d <= std::max<size_t>(3, key.size() / 4) ? " (did you mean '" + best + "'?)" : "";
  IRIS_THROW(source, ": unknown config key '", key, "'", hint, "; `iris config --keys` lists them all");
}

std::string trim(const std::string& s) {
  const auto b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "";
  const auto e = s.find_last_not_of(" \t\r\n");
  return s.substr(b, e - b + 1);
}

int64_t parse_int(const std::string& text, const std::string& key) {
  try {
    size_t pos = 0;
    const long long v = std::stoll(text, &pos);
    if (pos == text.size()) return v;
  } catch (...) {
  }
  IRIS_THROW("config key '", key, "' expects an integer, got '", text, "'");
}

double parse_float(const std::string& text, const std::string& key) {
  try {
    size_t pos = 0;
    const double v = std::stod(text, &pos);
    if (pos == text.size()) return v;
  } catch (...) {
  }
  IRIS_THROW("config key '", key, "' expects a number, got '", text, "'");
}

std::vector<std::string> split_list(std::string text) {
  text = trim(text);
  if (!text.empty() && text.front() == '[' && text.back() == ']') text = text.substr(1, text.size() - 2);
  std::vector<std::string> parts;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) {
    item = trim(item);
    if (item.size() >= 2 && (item.front() == '"' || item.front() == '\'') && item.back() == item.front())
      item = item.substr(1, item.size() - 2);
    if (!item.empty()) parts.push_back(item);
  }
  return parts;
}

// Converts a bare command-line value to the key's type.
ConfigValue parse_bare(const ConfigKey& k, const std::string& raw) {
  const std::string text = trim(raw);
  switch (k.type) {
    case ConfigType::integer:
      return parse_int(text, k.key);
    case ConfigType::number:
      return parse_float(text, k.key);
    case ConfigType::boolean:
      if (text == "true" || text == "1" || text == "yes") return true;
      if (text == "false" || text == "0" || text == "no") return false;
      IRIS_THROW("config key '", k.key, "' expects true or false, got '", text, "'");
    case ConfigType::string: {
      if (text.size() >= 2 && (text.front() == '"' || text.front() == '\'') && text.back() == text.front())
        return text.substr(1, text.size() - 2);
      return text;
    }
    case ConfigType::int_list: {
      std::vector<int64_t> v;
      for (const auto& p : split_list(text)) v.push_back(parse_int(p, k.key));
      return v;
    }
    case ConfigType::number_list: {
      std::vector<double> v;
      for (const auto& p : split_list(text)) v.push_back(parse_float(p, k.key));
      return v;
    }
    case ConfigType::string_list:
      return split_list(text);
  }
  IRIS_THROW("config key '", k.key, "': unknown type");
}

[[noreturn]] void type_error(const ConfigKey& k, const std::string& source, const std::string& got) {
  IRIS_THROW(source, ": config key '", k.key, "' expects ", config_type_name(k.type), ", got ", got);
}

// Converts a TOML node to the key's type.
ConfigValue from_node(const ConfigKey& k, const toml::node& n, const std::string& source) {
  auto got = [&] {
    std::ostringstream os;
    os << n.type() << " ";
    n.visit([&](auto&& v) { os << v; });
    return os.str();
  };
  switch (k.type) {
    case ConfigType::integer:
      if (auto v = n.value_exact<int64_t>()) return *v;
      type_error(k, source, got());
    case ConfigType::number:
      if (n.is_integer() || n.is_floating_point()) return *n.value<double>();
      type_error(k, source, got());
    case ConfigType::boolean:
      if (auto v = n.value_exact<bool>()) return *v;
      type_error(k, source, got());
    case ConfigType::string:
      if (auto v = n.value_exact<std::string>()) return *v;
      type_error(k, source, got());
    case ConfigType::int_list:
    case ConfigType::number_list:
    case ConfigType::string_list: {
      const toml::array* arr = n.as_array();
      if (!arr) type_error(k, source, got());
      std::vector<int64_t> ints;
      std::vector<double> nums;
      std::vector<std::string> strs;
      for (const auto& e : *arr) {
        if (k.type == ConfigType::int_list) {
          auto v = e.value_exact<int64_t>();
          if (!v) type_error(k, source, got());
          ints.push_back(*v);
        } else if (k.type == ConfigType::number_list) {
          if (!e.is_integer() && !e.is_floating_point()) type_error(k, source, got());
          nums.push_back(*e.value<double>());
        } else {
          auto v = e.value_exact<std::string>();
          if (!v) type_error(k, source, got());
          strs.push_back(*v);
        }
      }
      if (k.type == ConfigType::int_list) return ints;
      if (k.type == ConfigType::number_list) return nums;
      return strs;
    }
  }
  type_error(k, source, got());
}

void flatten(const toml::table& t, const std::string& prefix, const std::string& source,
             std::vector<std::pair<std::string, const toml::node*>>& out) {
  for (const auto& [name, node] : t) {
    const std::string key = prefix.empty() ? std::string(name.str()) : prefix + "." + std::string(name.str());
    if (const toml::table* sub = node.as_table()) {
      flatten(*sub, key, source, out);
    } else {
      out.push_back({key, &node});
    }
  }
}

std::string toml_value(const ConfigValue& v) {
  std::ostringstream os;
  std::visit(
      [&](const auto& x) {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, int64_t>) {
          os << x;
        } else if constexpr (std::is_same_v<T, double>) {
          // The shortest form that reads back as the same double (3e-4, not 0.00029999999999999997).
          std::string s;
          for (int precision = 15; precision <= 17; ++precision) {
            std::ostringstream d;
            d.precision(precision);
            d << x;
            s = d.str();
            if (std::stod(s) == x) break;
          }
          if (s.find_first_of(".eEn") == std::string::npos) s += ".0";  // stay a float in TOML
          os << s;
        } else if constexpr (std::is_same_v<T, bool>) {
          os << (x ? "true" : "false");
        } else if constexpr (std::is_same_v<T, std::string>) {
          os << toml::value<std::string>(x);
        } else {
          os << "[";
          for (size_t i = 0; i < x.size(); ++i) {
            if (i) os << ", ";
            if constexpr (std::is_same_v<T, std::vector<std::string>>)
              os << toml::value<std::string>(x[i]);
            else if constexpr (std::is_same_v<T, std::vector<double>>)
              os << toml_value(ConfigValue(x[i]));
            else
              os << x[i];
          }
          os << "]";
        }
      },
      v);
  return os.str();
}

}  // namespace

const char* config_type_name(ConfigType t) {
  switch (t) {
    case ConfigType::integer:
      return "an integer";
    case ConfigType::number:
      return "a number";
    case ConfigType::boolean:
      return "true or false";
    case ConfigType::string:
      return "a string";
    case ConfigType::int_list:
      return "a list of integers";
    case ConfigType::number_list:
      return "a list of numbers";
    case ConfigType::string_list:
      return "a list of strings";
  }
  return "?";
}

Config::Config() {
  for (const auto& k : config_schema()) values_[k.key] = k.default_value;
}

Config Config::from_toml(const std::string& text, const std::string& source) {
  Config c;
  toml::table table;
  try {
    table = toml::parse(text, source);
  } catch (const toml::parse_error& e) {
    std::ostringstream os;
    os << source << ":" << e.source().begin.line << ":" << e.source().begin.column << ": " << e.description();
    IRIS_THROW("invalid TOML: ", os.str());
  }
  std::vector<std::pair<std::string, const toml::node*>> items;
  flatten(table, "", source, items);
  for (const auto& [key, node] : items) {
    const ConfigKey* k = find_key(key);
    if (!k) unknown_key(key, source);
    c.values_[key] = from_node(*k, *node, source);
    c.explicit_[key] = true;
  }
  return c;
}

Config Config::load(const std::string& path) {
  std::ifstream f(path);
  IRIS_CHECK(f.good(), "cannot open config file '", path, "'");
  std::stringstream ss;
  ss << f.rdbuf();
  return from_toml(ss.str(), path);
}

void Config::set(const std::string& assignment) {
  const auto eq = assignment.find('=');
  IRIS_CHECK(eq != std::string::npos && eq > 0, "--set expects key=value, got '", assignment, "'");
  const std::string key = trim(assignment.substr(0, eq));
  const ConfigKey* k = find_key(key);
  if (!k) unknown_key(key, "--set");
  values_[key] = parse_bare(*k, assignment.substr(eq + 1));
  explicit_[key] = true;
}

void Config::set_value(const std::string& key, const ConfigValue& value) {
  const ConfigKey* k = find_key(key);
  if (!k) unknown_key(key, "set_value");
  IRIS_CHECK(value.index() == k->default_value.index(), "config key '", key, "' expects ",
             config_type_name(k->type));
  values_[key] = value;
  explicit_[key] = true;
}

const ConfigValue& Config::at(const std::string& key, ConfigType want) const {
  const ConfigKey* k = find_key(key);
  IRIS_CHECK(k != nullptr, "internal error: config key '", key, "' is not in the schema");
  IRIS_CHECK(k->type == want, "internal error: config key '", key, "' is ", config_type_name(k->type),
             ", read as ", config_type_name(want));
  return values_.at(key);
}

const ConfigValue& Config::value(const std::string& key) const {
  IRIS_CHECK(find_key(key) != nullptr, "internal error: config key '", key, "' is not in the schema");
  return values_.at(key);
}

std::string Config::value_text(const std::string& key) const {
  return toml_value(value(key));
}

int64_t Config::get_int(const std::string& key) const {
  return std::get<int64_t>(at(key, ConfigType::integer));
}
double Config::get_float(const std::string& key) const {
  return std::get<double>(at(key, ConfigType::number));
}
bool Config::get_bool(const std::string& key) const {
  return std::get<bool>(at(key, ConfigType::boolean));
}
const std::string& Config::get_string(const std::string& key) const {
  return std::get<std::string>(at(key, ConfigType::string));
}
std::vector<int64_t> Config::get_int_list(const std::string& key) const {
  return std::get<std::vector<int64_t>>(at(key, ConfigType::int_list));
}
std::vector<double> Config::get_float_list(const std::string& key) const {
  return std::get<std::vector<double>>(at(key, ConfigType::number_list));
}
bool Config::is_set(const std::string& key) const {
  return explicit_.count(key) > 0;
}

std::string Config::to_toml() const {
  std::ostringstream os;
  std::string section;
  for (const auto& k : config_schema()) {
    const auto dot = k.key.find('.');
    const std::string sec = k.key.substr(0, dot);
    if (sec != section) {
      os << (section.empty() ? "" : "\n") << "[" << sec << "]\n";
      section = sec;
    }
    os << k.key.substr(dot + 1) << " = " << toml_value(values_.at(k.key)) << "\n";
  }
  return os.str();
}

}  // namespace iris
