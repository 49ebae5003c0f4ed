// Iris framework umbrella header: tensors, autograd, ops, nn and optim.
#pragma once

#include "framework/autograd/grad_mode.h"
#include "framework/core/tensor.h"
#include "framework/cpu/parallel.h"
#include "framework/nn/init.h"
#include "framework/nn/layers.h"
#include "framework/nn/module.h"
#include "framework/ops/elementwise.h"
#include "framework/ops/matmul.h"
#include "framework/ops/random.h"
#include "framework/ops/reduce.h"
#include "framework/optim/adamw.h"
#include "framework/optim/clip.h"
#include "framework/optim/ema.h"
#include "framework/optim/schedule.h"
#include "framework/optim/state.h"
