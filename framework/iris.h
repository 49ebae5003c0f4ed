// Iris framework umbrella header: tensors, autograd, ops, nn and optim.
#pragma once

#include "framework/autograd/grad_mode.h"
#include "framework/core/tensor.h"
#include "framework/cpu/parallel.h"
#include "framework/ops/conv.h"
#include "framework/ops/elementwise.h"
#include "framework/ops/join.h"
#include "framework/ops/reduce.h"
#include "framework/ops/matmul.h"
#include "framework/ops/random.h"
#include "framework/ops/resample.h"
