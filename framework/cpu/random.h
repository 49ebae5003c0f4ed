// The CPU random kernels (framework/cpu/random.cpp). Their contract, shared with the CUDA backend, is
// declared once in framework/kernels/random.h; this header forwards there for code that names the backend.
#pragma once

#include "framework/kernels/random.h"
