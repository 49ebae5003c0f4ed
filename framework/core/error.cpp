#include "framework/core/error.h"

namespace iris {

static std::string strip_source_root(const char* file) {
  // Report paths relative to the project, not the build machine's checkout.
  std::string f(file);
  for (const char* top : {"framework/", "diffusion/", "data/", "tools/", "tests/"}) {
    auto pos = f.rfind(top);
    if (pos != std::string::npos) return f.substr(pos);
  }
  return f;
}

Error::Error(const std::string& message, const char* file, int line)
    : std::runtime_error(message + " [" + strip_source_root(file) + ":" + std::to_string(line) + "]"),
      message_(message),
      where_(strip_source_root(file) + ":" + std::to_string(line)) {}

namespace detail {
void throw_error(const std::string& message, const char* file, int line) { throw Error(message, file, line); }
}  // namespace detail

}  // namespace iris
