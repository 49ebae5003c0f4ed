// iris::Error and the checking macros used everywhere in Iris.
//
// The library never exits or aborts: every failure becomes an iris::Error carrying the place it was
// raised (file:line) and a message that names the thing at fault (the op, the shapes, the file, the key).
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>

namespace iris {

class Error : public std::runtime_error {
 public:
  Error(const std::string& message, const char* file, int line);
  const std::string& message() const { return message_; }  // without the file:line prefix
  const std::string& where() const { return where_; }

 private:
  std::string message_;
  std::string where_;
};

namespace detail {
// Concatenates any streamable values into one string: cat("op ", name, ": ", shape).
template <class... Args>
std::string cat(const Args&... args) {
  std::ostringstream os;
  (os << ... << args);
  return os.str();
}
[[noreturn]] void throw_error(const std::string& message, const char* file, int line);
}  // namespace detail

}  // namespace iris

// Throws iris::Error with a message built from the arguments.
#define IRIS_THROW(...) ::iris::detail::throw_error(::iris::detail::cat(__VA_ARGS__), __FILE__, __LINE__)

// Checks a condition that depends on the caller's input; the message says what was wrong.
#define IRIS_CHECK(cond, ...)                                                             \
  do {                                                                                    \
    if (!(cond)) [[unlikely]] {                                                           \
      ::iris::detail::throw_error(::iris::detail::cat(__VA_ARGS__), __FILE__, __LINE__); \
    }                                                                                     \
  } while (0)

// Checks an internal invariant; failing it is a bug in Iris, reported with the expression.
#define IRIS_ASSERT(cond)                                                                              \
  do {                                                                                                 \
    if (!(cond)) [[unlikely]] {                                                                        \
      ::iris::detail::throw_error("internal error: assertion failed: " #cond, __FILE__, __LINE__);     \
    }                                                                                                  \
  } while (0)
