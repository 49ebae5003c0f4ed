#include "framework/core/graph_cache.h"

#include <cstdlib>
#include <cstring>

namespace iris {

std::string GraphKey::str() const {
  std::string s = stage + " b" + std::to_string(batch) + " [";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  s += "] " + std::string(dtype_name(dtype)) + " cuda:" + std::to_string(device);
  if (!variant.empty()) s += " " + variant;
  return s;
}

size_t GraphKeyHash::operator()(const GraphKey& k) const {
  // boost::hash_combine's mixing over every field.
  size_t h = std::hash<std::string>{}(k.stage);
  auto mix = [&h](size_t v) { h ^= v + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2); };
  mix(std::hash<int64_t>{}(k.batch));
  for (int64_t d : k.shape) mix(std::hash<int64_t>{}(d));
  mix(static_cast<size_t>(k.dtype));
  mix(std::hash<int>{}(k.device));
  mix(std::hash<std::string>{}(k.variant));
  return h;
}

bool parse_cuda_graphs_switch(const char* value) {
  if (value == nullptr || std::strcmp(value, "0") == 0) return false;
  if (std::strcmp(value, "1") == 0) return true;
  IRIS_THROW("IRIS_CUDA_GRAPHS must be 0 or 1, got '", value, "'");
}

bool cuda_graphs_enabled() {
  return parse_cuda_graphs_switch(std::getenv("IRIS_CUDA_GRAPHS"));
}

}  // namespace iris
