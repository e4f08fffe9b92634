#!/usr/bin/env python3
"""PyTorch reference for asrkit's BN-LSTM and residual LSTM layers (issue 5).

Usage: bn_lstm_reference.py OUT_DIR    writes OUT_DIR/bn_lstm_<case>_<f32|f64>.safetensors.

The reference modules are written here with explicit time loops (torch has neither layer):
  BN-LSTM (Cooijmans et al. 2017; SPECS §4): gates = BN_t(W_h h; γ_h, b) + BN(W_x x; γ_x, 0),
    c = σ(f) c + σ(i) tanh(g), h = σ(o) tanh(BN_t(c; γ_c, β_c)). BN_t is a masked per-step batch
    norm over the items still active at step t (biased variance for normalising; running
    statistics per step with momentum 0.1 and the unbiased variance, PyTorch's convention;
    population statistics when fewer than 2 items are active, and at inference, where steps
    beyond T_max use step T_max - 1). The input term is per-step (default) or sequence-wise over
    all valid frames ("BN-e*").
  Residual LSTM (Kim et al. 2017; SPECS §5.2): peephole LSTM with projection, o after the
    projection with a full W_co, h = o (W_p tanh(c) + shortcut), shortcut = x or W_h x.
Variable lengths; the reverse direction runs on each item's valid prefix reversed in time.
Each file holds the parameters and buffers by their asrkit names, input, lengths, grad_output,
output, grad_input, grad.<param> after one training forward/backward, the running statistics
after it (after.<buffer>), and for BN-LSTM an inference run on a longer input (x_eval,
lengths_eval, output_eval: T_eval > T_max checks the clamped statistics).
"""
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import st_io  # noqa: E402

EPS, MOMENTUM = 1e-5, 0.1
T, B, F = 5, 4, 3
LENGTHS = [5, 3, 4, 1]        # step 4 has one active item: population statistics there
T_EVAL, LENGTHS_EVAL = 7, [7, 2, 6, 4]


def valid_mask(lengths, steps):
    return torch.tensor([[t < n for n in lengths] for t in range(steps)])  # [T, B]


def reverse_padded(x, lengths):
    """Reverses each item's valid prefix in time; padding stays at the end."""
    steps, batch = x.shape[0], x.shape[1]
    idx = torch.tensor([[n - 1 - t if t < n else t for n in lengths] for t in range(steps)])
    return x[idx, torch.arange(batch)[None, :]]


def step_bn(x, active, gamma, beta, bufs, tag, t, training):
    """Masked batch norm of x [B, F] at step t with per-step buffers bufs[tag + '.mean'] [T_max, F]."""
    rm, rv, nb = bufs[f"running_mean_{tag}"], bufs[f"running_var_{tag}"], bufs[f"num_batches_tracked_{tag}"]
    n = int(active.sum())
    if training and n >= 2:
        xs = x[active]
        mean, var = xs.mean(0), xs.var(0, unbiased=False)
        with torch.no_grad():
            rm[t] = (1 - MOMENTUM) * rm[t] + MOMENTUM * mean
            rv[t] = (1 - MOMENTUM) * rv[t] + MOMENTUM * var * n / (n - 1)
            nb[t] += 1
    else:
        k = min(t, rm.shape[0] - 1)
        mean, var = rm[k].clone(), rv[k].clone()
    y = (x - mean) / torch.sqrt(var + EPS) * gamma
    if beta is not None:
        y = y + beta
    return y * active[:, None].to(x.dtype)


def sequence_bn(x, mask, gamma, bufs, training):
    """Batch norm of x [T, B, F] over its valid frames (SequenceBatchNorm, β = 0)."""
    rm, rv, nb = bufs["running_mean_ih"], bufs["running_var_ih"], bufs["num_batches_tracked_ih"]
    if training:
        xs = x[mask]
        n = xs.shape[0]
        mean, var = xs.mean(0), xs.var(0, unbiased=False)
        with torch.no_grad():
            rm.mul_(1 - MOMENTUM).add_(MOMENTUM * mean)
            rv.mul_(1 - MOMENTUM).add_(MOMENTUM * var * n / (n - 1))
            nb += 1
    else:
        mean, var = rm.clone(), rv.clone()
    return (x - mean) / torch.sqrt(var + EPS) * gamma * mask[..., None].to(x.dtype)


def bnlstm_direction(xp, lengths, p, bufs, training, sequence_input):
    steps, batch, g4 = xp.shape
    hidden = g4 // 4
    mask = valid_mask(lengths, steps)
    if sequence_input:
        xn = sequence_bn(xp, mask, p["gamma_ih"], bufs, training)
    else:
        xn = torch.stack([step_bn(xp[t], mask[t], p["gamma_ih"], None, bufs, "ih", t, training)
                          for t in range(steps)])
    h = xp.new_zeros(batch, hidden)
    c = xp.new_zeros(batch, hidden)
    out = []
    for t in range(steps):
        m = mask[t][:, None]
        a = step_bn(h @ p["weight_hh"].t(), mask[t], p["gamma_hh"], p["bias"], bufs, "hh", t, training) + xn[t]
        i, f, g, o = a.chunk(4, 1)
        c_new = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        cn = step_bn(c_new, mask[t], p["gamma_c"], p["beta_c"], bufs, "c", t, training)
        h_new = torch.sigmoid(o) * torch.tanh(cn)
        c = torch.where(m, c_new, c)
        h = torch.where(m, h_new, h)
        out.append(torch.where(m, h_new, torch.zeros_like(h_new)))
    return torch.stack(out)


def reslstm_direction(xp, x, lengths, p, cell, peepholes):
    steps, batch, _ = xp.shape
    out_size = p["weight_hr"].shape[0]
    gates = 3 * cell + out_size
    mask = valid_mask(lengths, steps)
    h = xp.new_zeros(batch, out_size)
    c = xp.new_zeros(batch, cell)
    out = []
    for t in range(steps):
        m = mask[t][:, None]
        z = xp[t, :, :gates] + h @ p["weight_hh"].t()
        zi, zf, zg, zo = z.split([cell, cell, cell, out_size], 1)
        if peepholes:
            zi = zi + p["weight_ci"] * c
            zf = zf + p["weight_cf"] * c
        c_new = torch.sigmoid(zf) * c + torch.sigmoid(zi) * torch.tanh(zg)
        if peepholes:
            zo = zo + c_new @ p["weight_co"].t()
        shortcut = xp[t, :, gates:] if xp.shape[2] > gates else x[t]
        h_new = torch.sigmoid(zo) * (torch.tanh(c_new) @ p["weight_hr"].t() + shortcut)
        c = torch.where(m, c_new, c)
        h = torch.where(m, h_new, h)
        out.append(torch.where(m, h_new, torch.zeros_like(h_new)))
    return torch.stack(out)


def layer(x, lengths, params, bufs, directions, run_direction):
    """Input projection per direction, forward / reversed recurrences, outputs concatenated."""
    outs = []
    for suffix in directions:
        p = {k[: -len(suffix)]: v for k, v in params.items() if k.endswith(suffix)}
        b = {k[: -len(suffix)]: v for k, v in bufs.items() if k.endswith(suffix)}
        xp = x @ p["weight_ih"].t()
        if "bias_ih" in p:
            xp = xp + p["bias_ih"]
        if suffix.endswith("_reverse"):
            outs.append(reverse_padded(run_direction(reverse_padded(xp, lengths), reverse_padded(x, lengths), p, b), lengths))
        else:
            outs.append(run_direction(xp, x, p, b))
    return torch.cat(outs, -1)


def directions(bidirectional):
    return ["_l0", "_l0_reverse"] if bidirectional else ["_l0"]


def bnlstm_case(gen, bidirectional, sequence_input, hidden=3):
    params, bufs = {}, {}
    for s in directions(bidirectional):
        params["weight_ih" + s] = 0.6 * torch.randn(4 * hidden, F, generator=gen, dtype=torch.float64)
        params["weight_hh" + s] = 0.6 * torch.randn(4 * hidden, hidden, generator=gen, dtype=torch.float64)
        params["bias" + s] = 0.3 * torch.randn(4 * hidden, generator=gen, dtype=torch.float64)
        for name, n in (("gamma_ih", 4 * hidden), ("gamma_hh", 4 * hidden), ("gamma_c", hidden)):
            params[name + s] = 0.6 + 0.4 * torch.rand(n, generator=gen, dtype=torch.float64)
        params["beta_c" + s] = 0.2 * torch.randn(hidden, generator=gen, dtype=torch.float64)
        for tag, n in (("ih", 4 * hidden), ("hh", 4 * hidden), ("c", hidden)):
            shape = (n,) if (tag == "ih" and sequence_input) else (T, n)
            bufs[f"running_mean_{tag}{s}"] = 0.3 * torch.randn(*shape, generator=gen, dtype=torch.float64)
            bufs[f"running_var_{tag}{s}"] = 0.5 + torch.rand(*shape, generator=gen, dtype=torch.float64)
            bufs[f"num_batches_tracked_{tag}{s}"] = torch.zeros(shape[:-1] or (), dtype=torch.int64)

    def run(x, lengths, p, b, training):
        return layer(x, lengths, p, b, directions(bidirectional),
                     lambda xp, _x, pp, bb: bnlstm_direction(xp, lengths, pp, bb, training, sequence_input))

    return params, bufs, run


def reslstm_case(gen, bidirectional, in_size, cell=3, out=2, peepholes=True):
    params = {}
    shortcut = 0 if in_size == out else out
    for s in directions(bidirectional):
        params["weight_ih" + s] = 0.6 * torch.randn(3 * cell + out + shortcut, in_size, generator=gen, dtype=torch.float64)
        params["bias_ih" + s] = 0.3 * torch.randn(3 * cell + out + shortcut, generator=gen, dtype=torch.float64)
        params["weight_hh" + s] = 0.6 * torch.randn(3 * cell + out, out, generator=gen, dtype=torch.float64)
        params["weight_hr" + s] = 0.6 * torch.randn(out, cell, generator=gen, dtype=torch.float64)
        if peepholes:
            params["weight_ci" + s] = 0.5 * torch.randn(cell, generator=gen, dtype=torch.float64)
            params["weight_cf" + s] = 0.5 * torch.randn(cell, generator=gen, dtype=torch.float64)
            params["weight_co" + s] = 0.5 * torch.randn(out, cell, generator=gen, dtype=torch.float64)

    def run(x, lengths, p, b, training):
        return layer(x, lengths, p, b, directions(bidirectional),
                     lambda xp, xx, pp, bb: reslstm_direction(xp, xx, lengths, pp, cell, peepholes))

    return params, {}, run


CASES = {
    "bnlstm": lambda g: bnlstm_case(g, False, False),
    "bnlstm_bi": lambda g: bnlstm_case(g, True, False),
    "bnlstm_seq_bi": lambda g: bnlstm_case(g, True, True),
    "reslstm_proj": lambda g: reslstm_case(g, False, 3),
    "reslstm_proj_bi": lambda g: reslstm_case(g, True, 3),
    "reslstm_identity": lambda g: reslstm_case(g, False, 2),
    "reslstm_nopeep": lambda g: reslstm_case(g, False, 3, peepholes=False),
}


def main(out_dir):
    os.makedirs(out_dir, exist_ok=True)
    for index, (name, factory) in enumerate(CASES.items()):
        gen = torch.Generator().manual_seed(1000 + index)
        params64, bufs64, run = factory(gen)
        x64 = torch.randn(T, B, F if "bnlstm" in name else params64["weight_ih_l0"].shape[1],
                          generator=gen, dtype=torch.float64)
        x_eval64 = torch.randn(T_EVAL, B, x64.shape[2], generator=gen, dtype=torch.float64)
        with torch.no_grad():
            y_shape = run(x64, LENGTHS, params64, {k: v.clone() for k, v in bufs64.items()}, True).shape
        dy64 = torch.randn(*y_shape, generator=gen, dtype=torch.float64)
        lengths = torch.tensor(LENGTHS, dtype=torch.int32)
        for dtype, tag in ((torch.float32, "f32"), (torch.float64, "f64")):
            params = {k: v.to(dtype).clone().requires_grad_(True) for k, v in params64.items()}
            bufs = {k: (v.to(dtype) if v.is_floating_point() else v).clone() for k, v in bufs64.items()}
            x = x64.to(dtype).clone().requires_grad_(True)
            tensors = {k: v.detach().numpy().copy() for k, v in params.items()}
            tensors.update({k: v.numpy().copy() for k, v in bufs.items()})
            y = run(x, LENGTHS, params, bufs, True)
            y.backward(dy64.to(dtype))
            tensors.update({"input": x.detach().numpy(), "lengths": lengths.numpy(),
                            "output": y.detach().numpy(), "grad_output": dy64.to(dtype).numpy(),
                            "grad_input": x.grad.numpy()})
            tensors.update({"grad." + k: v.grad.numpy() for k, v in params.items()})
            tensors.update({"after." + k: v.numpy() for k, v in bufs.items()})
            with torch.no_grad():
                y_eval = run(x_eval64.to(dtype), LENGTHS_EVAL, params, bufs, False)
            tensors.update({"x_eval": x_eval64.to(dtype).numpy(),
                            "lengths_eval": torch.tensor(LENGTHS_EVAL, dtype=torch.int32).numpy(),
                            "output_eval": y_eval.numpy()})
            st_io.save(os.path.join(out_dir, f"bn_lstm_{name}_{tag}.safetensors"), tensors,
                       {"case": name, "torch": torch.__version__})
    print(f"wrote {2 * len(CASES)} BN-LSTM / residual LSTM reference files to {out_dir}")


if __name__ == "__main__":
    main(sys.argv[1])
