#include "framework/core/generator.h"

#include "framework/core/error.h"

namespace iris {

Generator Generator::per_sample(uint64_t seed, std::vector<uint64_t> streams, uint64_t offset) {
  IRIS_CHECK(!streams.empty(), "Generator::per_sample: no streams given");
  Generator g(seed, streams[0]);
  g.streams_ = std::move(streams);
  g.offset_ = offset;
  return g;
}

}  // namespace iris
