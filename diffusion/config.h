// Run configuration: TOML files with `--set key=value` overrides, checked against a schema of documented
// keys (a misspelt or mistyped key is an error that names it, never silently ignored), resolved with
// defaults, printed at start and stored in every checkpoint.
//
// Keys are dotted ("model.channel_mults", "train.lr"); the full list with types, defaults and meanings is in
// config_schema.cpp and printed by `iris config --keys`.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <variant>
#include <vector>

namespace iris {

using ConfigValue = std::variant<int64_t, double, bool, std::string, std::vector<int64_t>,
                                 std::vector<double>, std::vector<std::string>>;

enum class ConfigType : uint8_t { integer, number, boolean, string, int_list, number_list, string_list };
const char* config_type_name(ConfigType t);

struct ConfigKey {
  std::string key;
  ConfigType type;
  ConfigValue default_value;
  std::string help;
};

// Every key Iris understands.
const std::vector<ConfigKey>& config_schema();

class Config {
 public:
  Config();  // all defaults
  // Parses TOML text; `source` names it in error messages (a file path, or "<string>").
  static Config from_toml(const std::string& text, const std::string& source);
  static Config load(const std::string& path);

  // Applies one "key=value" override, the value given bare ("2e-4", "1,2,4", "true", "some/path").
  void set(const std::string& assignment);
  void set_value(const std::string& key, const ConfigValue& value);

  int64_t get_int(const std::string& key) const;
  double get_float(const std::string& key) const;
  bool get_bool(const std::string& key) const;
  const std::string& get_string(const std::string& key) const;
  std::vector<int64_t> get_int_list(const std::string& key) const;
  std::vector<double> get_float_list(const std::string& key) const;

  // A key's value whatever its type, and as it is written in TOML ("[1, 2, 4]", "\"ddim\"", "0.0001").
  const ConfigValue& value(const std::string& key) const;
  std::string value_text(const std::string& key) const;

  // Keys given explicitly (in a file or by set), as opposed to defaults.
  bool is_set(const std::string& key) const;
  // The resolved configuration as TOML (every key, grouped by section), as stored in checkpoints.
  std::string to_toml() const;

 private:
  const ConfigValue& at(const std::string& key, ConfigType want) const;
  std::map<std::string, ConfigValue> values_;
  std::map<std::string, bool> explicit_;
};

}  // namespace iris
