// The CPU reduction kernels (framework/cpu/reduce.cpp) and, as before softmax had files of its own, the
// softmax kernels (framework/cpu/softmax.cpp). Their contracts, shared with the CUDA backend, are declared
// once in framework/kernels/reduce.h and softmax.h; this header forwards there for code that names the
// backend.
#pragma once

#include "framework/kernels/reduce.h"
#include "framework/kernels/softmax.h"
