// The CPU optim kernels (framework/cpu/optim.cpp). Their contract, shared with the CUDA backend, is declared
// once in framework/kernels/optim.h; this header forwards there for code that names the backend.
#pragma once

#include "framework/kernels/optim.h"
