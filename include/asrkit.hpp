// asrkit.hpp - the CPU umbrella header: everything asrkit offers without CUDA.
//
// CUDA specialisations live in <asrkit/cuda/...> and are included explicitly by .cu files;
// this header never pulls them in, so a CPU-only build needs no CUDA toolkit.
#pragma once

#include <asrkit/core/config.hpp>
#include <asrkit/core/error.hpp>
#include <asrkit/core/device.hpp>
#include <asrkit/core/shape.hpp>
#include <asrkit/core/tensor.hpp>
#include <asrkit/core/threading.hpp>
#include <asrkit/core/rng.hpp>
