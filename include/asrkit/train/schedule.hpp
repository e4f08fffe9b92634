// asrkit/train/schedule.hpp - learning-rate schedules.
//
//   asrkit::EpochDecay ds2{6e-4};                   // DS2: lr / 1.2 after each epoch
//   opt.set_lr(ds2(epoch));                         // epoch = 0, 1, 2, ...
//   asrkit::NoamSchedule noam{256, 25000};          // Transformer warm-up + inverse sqrt
//   opt.set_lr(noam(step));                         // step = 1, 2, ... (optimizer steps)
//
// A schedule is a small struct with operator() returning the learning rate; the training loop
// sets it on the optimizer (set_lr) before each step or epoch, and stores the epoch/step in the
// checkpoint metadata.
#pragma once

#include <algorithm>
#include <cmath>

#include <asrkit/core/error.hpp>
#include <asrkit/core/shape.hpp>

namespace asrkit {

/// Per-epoch annealing (DS2, Amodei et al. 2016 sec. 3.11: "divided by 1.2 after each epoch"):
/// lr(epoch) = initial_lr · factor^epoch, epoch >= 0.
struct EpochDecay {
  double initial_lr = 6e-4;
  double factor = 1.0 / 1.2;

  double operator()(index_t epoch) const {
    if (epoch < 0) throw ValueError("schedule.1", detail::str("EpochDecay: epoch must be >= 0, got ", epoch));
    return initial_lr * std::pow(factor, static_cast<double>(epoch));
  }
};

/// Noam schedule (Vaswani et al. 2017, eq. 3): linear warm-up, then inverse square root,
/// lr(step) = scale · d_model^−0.5 · min(step^−0.5, step · warmup^−1.5), step >= 1.
struct NoamSchedule {
  double d_model = 256;
  index_t warmup_steps = 25000;
  double scale = 1.0;

  double operator()(index_t step) const {
    if (step < 1 || warmup_steps < 1)
      throw ValueError("schedule.1", detail::str("NoamSchedule: step and warmup_steps must be >= 1, got step=",
                                                 step, " warmup_steps=", warmup_steps));
    const double s = static_cast<double>(step), w = static_cast<double>(warmup_steps);
    return scale / std::sqrt(d_model) * std::min(1.0 / std::sqrt(s), s * std::pow(w, -1.5));
  }
};

/// The same shape by its peak: lr(step) = peak_lr · min(step / warmup, sqrt(warmup / step)),
/// step >= 1 (peak_lr is reached at step = warmup_steps; ESPnet's WarmupLR).
struct WarmupInverseSqrt {
  double peak_lr = 1e-3;
  index_t warmup_steps = 25000;

  double operator()(index_t step) const {
    if (step < 1 || warmup_steps < 1)
      throw ValueError("schedule.1", detail::str("WarmupInverseSqrt: step and warmup_steps must be >= 1, "
                                                 "got step=", step, " warmup_steps=", warmup_steps));
    const double s = static_cast<double>(step), w = static_cast<double>(warmup_steps);
    return peak_lr * std::min(s / w, std::sqrt(w / s));
  }
};

}  // namespace asrkit
