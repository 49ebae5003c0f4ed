// Numbers for people: progress lines, summaries and reports (the trainer's log line, the iris commands).
#pragma once

#include <cstdint>
#include <string>

namespace iris {

std::string with_commas(int64_t n);          // 97807491 -> "97,807,491"
std::string human_bytes(double bytes);       // "11.9 GiB"
std::string human_duration(double seconds);  // "12.3s", "3m05s", "1h02m"

}  // namespace iris
