#include "framework/autograd/grad_mode.h"

namespace iris {

namespace {
thread_local bool t_grad_enabled = true;
thread_local bool t_autocast = false;
thread_local DType t_autocast_dtype = DType::bf16;
}  // namespace

bool grad_enabled() { return t_grad_enabled; }
void set_grad_enabled(bool on) { t_grad_enabled = on; }

bool autocast_enabled() { return t_autocast; }
DType autocast_dtype() { return t_autocast_dtype; }
AutocastGuard::AutocastGuard(bool enabled, DType dtype) : prev_enabled_(t_autocast), prev_dtype_(t_autocast_dtype) {
  t_autocast = enabled;
  t_autocast_dtype = dtype;
}
AutocastGuard::~AutocastGuard() {
  t_autocast = prev_enabled_;
  t_autocast_dtype = prev_dtype_;
}

}  // namespace iris
