// The CPU resample kernels (framework/cpu/resample.cpp). Their contract, shared with the CUDA backend, is
// declared once in framework/kernels/resample.h; this header forwards there for code that names the backend.
#pragma once

#include "framework/kernels/resample.h"
