// The CPU elementwise kernels (framework/cpu/elementwise.cpp). Their contract, shared with the CUDA backend,
// is declared once in framework/kernels/elementwise.h; this header forwards there for code that names the
// backend.
#pragma once

#include "framework/kernels/elementwise.h"
