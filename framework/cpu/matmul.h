// The CPU matmul kernels (framework/cpu/matmul.cpp). Their contract, shared with the CUDA backend, is
// declared once in framework/kernels/matmul.h; this header forwards there for code that names the backend.
#pragma once

#include "framework/kernels/matmul.h"
