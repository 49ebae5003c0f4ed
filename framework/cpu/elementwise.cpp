#include "framework/kernels/elementwise.h"

#include "framework/cpu/loops.h"
#include "framework/kernels/dispatch.h"

namespace iris::cpu {

namespace {
Shape strides_for(const Tensor& t, const Shape& out_shape) {
  return broadcast_strides(t.shape(), t.strides(), out_shape);
}
}  // namespace

void unary(UnaryOp op, const Tensor& x, Tensor& out, double pa, double pb) {
  dispatch_floating(x.dtype(), "unary", [&](auto tag) {
    using T = decltype(tag);
    using C = compute_t<T>;
    const T* xp = x.data<T>();
    T* op_ = out.data<T>();
    const C a = static_cast<C>(pa), b = static_cast<C>(pb);
    dispatch_unary(op, [&](auto opc) {
      constexpr UnaryOp OP = decltype(opc)::value;
      for_each_strided<2>(out.shape(), {out.strides(), strides_for(x, out.shape())},
                          [&](const std::array<int64_t, 2>& off, int64_t n, const std::array<int64_t, 2>& st) {
                            T* o = op_ + off[0];
                            const T* i = xp + off[1];
                            if (st[0] == 1 && st[1] == 1) {
                              for (int64_t j = 0; j < n; ++j)
                                store_as(o + j, fn::unary<OP>(load_as<C>(i + j), a, b));
                            } else {
                              for (int64_t j = 0; j < n; ++j)
                                store_as(o + j * st[0], fn::unary<OP>(load_as<C>(i + j * st[1]), a, b));
                            }
                          });
    });
  });
}

void binary(BinaryOp op, const Tensor& x, const Tensor& y, Tensor& out, double pa, double pb) {
  dispatch_floating(out.dtype(), "binary", [&](auto tag) {
    using T = decltype(tag);
    using C = compute_t<T>;
    const T* xp = x.data<T>();
    const T* yp = y.data<T>();
    T* op_ = out.data<T>();
    const C a = static_cast<C>(pa), b = static_cast<C>(pb);
    dispatch_binary(op, [&](auto opc) {
      constexpr BinaryOp OP = decltype(opc)::value;
      for_each_strided<3>(
          out.shape(), {out.strides(), strides_for(x, out.shape()), strides_for(y, out.shape())},
          [&](const std::array<int64_t, 3>& off, int64_t n, const std::array<int64_t, 3>& st) {
            T* o = op_ + off[0];
            const T* i = xp + off[1];
            const T* k = yp + off[2];
            if (st[0] == 1 && st[1] == 1 && st[2] == 1) {
              for (int64_t j = 0; j < n; ++j)
                store_as(o + j, fn::binary<OP>(load_as<C>(i + j), load_as<C>(k + j), a, b));
            } else if (st[0] == 1 && st[1] == 1 && st[2] == 0) {
              const C kv = load_as<C>(k);
              for (int64_t j = 0; j < n; ++j) store_as(o + j, fn::binary<OP>(load_as<C>(i + j), kv, a, b));
            } else {
              for (int64_t j = 0; j < n; ++j)
                store_as(o + j * st[0],
                         fn::binary<OP>(load_as<C>(i + j * st[1]), load_as<C>(k + j * st[2]), a, b));
            }
          });
    });
  });
}

void compare(CompareOp op, const Tensor& x, const Tensor& y, Tensor& out) {
  dispatch_all(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    using C = compute_t<T>;
    const T* xp = x.data<T>();
    const T* yp = y.data<T>();
    uint8_t* op_ = out.data<uint8_t>();
    dispatch_compare(op, [&](auto opc) {
      constexpr CompareOp OP = decltype(opc)::value;
      for_each_strided<3>(
          out.shape(), {out.strides(), strides_for(x, out.shape()), strides_for(y, out.shape())},
          [&](const std::array<int64_t, 3>& off, int64_t n, const std::array<int64_t, 3>& st) {
            for (int64_t j = 0; j < n; ++j)
              op_[off[0] + j * st[0]] =
                  fn::compare<OP>(load_as<C>(xp + off[1] + j * st[1]), load_as<C>(yp + off[2] + j * st[2]));
          });
    });
  });
}

void where(const Tensor& cond, const Tensor& x, const Tensor& y, Tensor& out) {
  dispatch_all(out.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const uint8_t* cp = cond.data<uint8_t>();
    const T* xp = x.data<T>();
    const T* yp = y.data<T>();
    T* op_ = out.data<T>();
    for_each_strided<4>(out.shape(),
                        {out.strides(), strides_for(cond, out.shape()), strides_for(x, out.shape()),
                         strides_for(y, out.shape())},
                        [&](const std::array<int64_t, 4>& off, int64_t n, const std::array<int64_t, 4>& st) {
                          for (int64_t j = 0; j < n; ++j)
                            op_[off[0] + j * st[0]] =
                                cp[off[1] + j * st[1]] ? xp[off[2] + j * st[2]] : yp[off[3] + j * st[3]];
                        });
  });
}

void copy(const Tensor& src, Tensor& dst) {
  dispatch_all(dst.dtype(), [&](auto dtag) {
    using D = decltype(dtag);
    dispatch_all(src.dtype(), [&](auto stag) {
      using S = decltype(stag);
      // Convert through the wider compute type of the two (double if either is f64 or i64).
      using C = std::conditional_t<std::is_same_v<S, double> || std::is_same_v<D, double> ||
                                       std::is_same_v<S, int64_t> || std::is_same_v<D, int64_t>,
                                   double, float>;
      const S* sp = src.data<S>();
      D* dp = dst.data<D>();
      for_each_strided<2>(dst.shape(), {dst.strides(), strides_for(src, dst.shape())},
                          [&](const std::array<int64_t, 2>& off, int64_t n, const std::array<int64_t, 2>& st) {
                            D* o = dp + off[0];
                            const S* i = sp + off[1];
                            if constexpr (std::is_same_v<S, D>) {
                              if (st[0] == 1 && st[1] == 1) {
                                std::copy(i, i + n, o);
                                return;
                              }
                              for (int64_t j = 0; j < n; ++j) o[j * st[0]] = i[j * st[1]];
                            } else {
                              for (int64_t j = 0; j < n; ++j) store_as(o + j * st[0], load_as<C>(i + j * st[1]));
                            }
                          });
    });
  });
}

void fill(Tensor& dst, double value) {
  dispatch_all(dst.dtype(), [&](auto tag) {
    using T = decltype(tag);
    T v;
    store_as(&v, value);
    T* dp = dst.data<T>();
    for_each_strided<1>(dst.shape(), {dst.strides()},
                        [&](const std::array<int64_t, 1>& off, int64_t n, const std::array<int64_t, 1>& st) {
                          for (int64_t j = 0; j < n; ++j) dp[off[0] + j * st[0]] = v;
                        });
  });
}

}  // namespace iris::cpu
