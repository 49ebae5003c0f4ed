// The CPU embedding kernels (framework/cpu/embedding.cpp). Their contract, shared with the CUDA backend, is
// declared once in framework/kernels/embedding.h; this header forwards there for code that names the backend.
#pragma once

#include "framework/kernels/embedding.h"
