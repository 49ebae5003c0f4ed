// Shapes and strides: plain vectors of int64 (elements, not bytes), with the helpers every op needs.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace iris {

using Shape = std::vector<int64_t>;

int64_t shape_numel(const Shape& shape);
Shape contiguous_strides(const Shape& shape);  // row-major
std::string shape_str(const Shape& shape);     // "[2, 3, 4]"

// Maps a possibly negative axis into [0, ndim); throws naming `op` when out of range.
int64_t normalize_axis(int64_t axis, int64_t ndim, const char* op);

// NumPy broadcasting of two shapes; throws naming `op` and both shapes when incompatible.
Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op);

// Strides that read a tensor of shape `from` (with strides `strides`) as if it had the broadcast shape `to`:
// stride 0 on the broadcast axes. `from` must broadcast to `to`.
Shape broadcast_strides(const Shape& from, const Shape& strides, const Shape& to);

}  // namespace iris
