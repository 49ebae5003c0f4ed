// The CPU norm kernels (framework/cpu/norm.cpp). Their contract, shared with the CUDA backend, is declared
// once in framework/kernels/norm.h; this header forwards there for code that names the backend.
#pragma once

#include "framework/kernels/norm.h"
