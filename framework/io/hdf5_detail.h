// Internals shared by the HDF5 wrapper's .cpp files (not part of the public API): the process-wide lock,
// per-thread silencing of HDF5's error printing, and conversion of HDF5's error stack into a message.
#pragma once

#include <hdf5.h>

#include <mutex>
#include <string>

#include "framework/core/error.h"

namespace iris::h5::detail {

static_assert(sizeof(hid_t) == sizeof(int64_t), "Iris's HDF5 wrapper stores hid_t as int64_t (HDF5 >= 1.10)");

// Held around every sequence of HDF5 calls. Recursive because wrapper functions call each other. The first
// time a thread takes it, HDF5's automatic error printing is turned off for that thread (the setting is
// per thread in thread-safe builds, global otherwise).
class Guard {
 public:
  Guard();
  ~Guard() = default;
  Guard(const Guard&) = delete;
  Guard& operator=(const Guard&) = delete;

 private:
  std::lock_guard<std::recursive_mutex> lock_;
};

// The messages of the current thread's HDF5 error stack (outermost first, duplicates dropped), then clears
// it. Empty when the stack is empty.
std::string stack_message();

}  // namespace iris::h5::detail

// Evaluates an HDF5 call returning hid_t / herr_t / htri_t / hssize_t and throws iris::Error made of the
// remaining arguments plus HDF5's own messages when the result is negative; otherwise yields the result.
#define IRIS_H5(call, ...)                                                              \
  [&]() {                                                                               \
    const auto iris_h5_result_ = (call);                                                \
    if (iris_h5_result_ < 0) [[unlikely]] {                                             \
      const std::string iris_h5_stack_ = ::iris::h5::detail::stack_message();           \
      IRIS_THROW(__VA_ARGS__, iris_h5_stack_.empty() ? "" : " (HDF5: ", iris_h5_stack_, \
                 iris_h5_stack_.empty() ? "" : ")");                                    \
    }                                                                                   \
    return iris_h5_result_;                                                             \
  }()
