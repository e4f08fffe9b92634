#!/usr/bin/env python3
"""PyTorch reference for asrkit's norms, optimizers and clipping (issue 4, part B).

Usage: layers_b_reference.py OUT_DIR    writes OUT_DIR/layers_b_<case>_<dtype>.safetensors:
  batchnorm: torch.nn.BatchNorm1d on [N, F] for 3 training steps (per step k: x_k, dy_k, y_k,
             dx_k, dweight_k, dbias_k after zero_grad, running_mean_k, running_var_k), then eval
             mode on x_eval (y_eval); the initial weight / bias.
  layernorm: torch.nn.LayerNorm(F) on [4, 3, F]: x, weight, bias, dy, y, dx, dweight, dbias.
  optim:     trajectories on the quadratic L = 0.5 * sum(c * (p - t)^2) (grad = c * (p - t)) for
             SGD / SGD+momentum+dampening / SGD+Nesterov+weight decay / Adam / Adam+L2 / AdamW /
             AMSGrad: p0, c, t and p_<opt> [steps, n] after each step.
  clip:      torch.nn.utils.clip_grad_norm_ on three gradients (norm 2 and inf, clipping and not).
"""
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import st_io  # noqa: E402

N, F, STEPS = 10, 5, 3
OPT_STEPS = 8
OPTIMIZERS = {
    "sgd": lambda p: torch.optim.SGD([p], lr=0.1),
    "sgd_momentum": lambda p: torch.optim.SGD([p], lr=0.05, momentum=0.9, dampening=0.1),
    "sgd_nesterov": lambda p: torch.optim.SGD([p], lr=0.05, momentum=0.99, nesterov=True, weight_decay=0.01),
    "adam": lambda p: torch.optim.Adam([p], lr=0.01),
    "adam_l2": lambda p: torch.optim.Adam([p], lr=0.01, betas=(0.8, 0.99), weight_decay=0.1),
    "adamw": lambda p: torch.optim.AdamW([p], lr=0.01, weight_decay=0.05),
    "amsgrad": lambda p: torch.optim.Adam([p], lr=0.02, amsgrad=True),
}


def batchnorm(dtype, gen):
    bn = torch.nn.BatchNorm1d(F).to(dtype)
    with torch.no_grad():
        bn.weight.copy_(1 + 0.5 * torch.randn(F, generator=gen, dtype=dtype))
        bn.bias.copy_(0.5 * torch.randn(F, generator=gen, dtype=dtype))
    out = {"weight": bn.weight.detach().clone().numpy(), "bias": bn.bias.detach().clone().numpy()}
    bn.train()
    for k in range(STEPS):
        x = (2 * torch.randn(N, F, generator=gen, dtype=dtype) + k).requires_grad_(True)
        dy = torch.randn(N, F, generator=gen, dtype=dtype)
        bn.zero_grad()
        y = bn(x)
        y.backward(dy)
        out.update({f"x_{k}": x.detach().numpy(), f"dy_{k}": dy.numpy(), f"y_{k}": y.detach().numpy(),
                    f"dx_{k}": x.grad.numpy(), f"dweight_{k}": bn.weight.grad.clone().numpy(),
                    f"dbias_{k}": bn.bias.grad.clone().numpy(),
                    f"running_mean_{k}": bn.running_mean.clone().numpy(),
                    f"running_var_{k}": bn.running_var.clone().numpy()})
    bn.eval()
    x = torch.randn(N, F, generator=gen, dtype=dtype)
    out["x_eval"] = x.numpy()
    out["y_eval"] = bn(x).detach().numpy()
    return out


def layernorm(dtype, gen):
    ln = torch.nn.LayerNorm(F).to(dtype)
    with torch.no_grad():
        ln.weight.copy_(1 + 0.5 * torch.randn(F, generator=gen, dtype=dtype))
        ln.bias.copy_(0.5 * torch.randn(F, generator=gen, dtype=dtype))
    x = (3 * torch.randn(4, 3, F, generator=gen, dtype=dtype) + 1).requires_grad_(True)
    dy = torch.randn(4, 3, F, generator=gen, dtype=dtype)
    y = ln(x)
    y.backward(dy)
    return {"x": x.detach().numpy(), "weight": ln.weight.detach().numpy(), "bias": ln.bias.detach().numpy(),
            "dy": dy.numpy(), "y": y.detach().numpy(), "dx": x.grad.numpy(),
            "dweight": ln.weight.grad.numpy(), "dbias": ln.bias.grad.numpy()}


def optim(dtype, gen):
    n = 6
    p0 = torch.randn(n, generator=gen, dtype=dtype)
    c = torch.rand(n, generator=gen, dtype=dtype) * 4 + 0.1
    t = torch.randn(n, generator=gen, dtype=dtype)
    out = {"p0": p0.numpy(), "c": c.numpy(), "t": t.numpy()}
    for name, make in OPTIMIZERS.items():
        p = p0.clone().requires_grad_(True)
        opt = make(p)
        traj = []
        for _ in range(OPT_STEPS):
            opt.zero_grad()
            loss = 0.5 * (c * (p - t) ** 2).sum()
            loss.backward()
            opt.step()
            traj.append(p.detach().clone())
        out[f"p_{name}"] = torch.stack(traj).numpy()
    return out


def clip(dtype, gen):
    grads = [torch.randn(3, 4, generator=gen, dtype=dtype), torch.randn(5, generator=gen, dtype=dtype),
             torch.randn(2, 2, generator=gen, dtype=dtype)]
    out = {f"g{i}": g.numpy() for i, g in enumerate(grads)}
    for tag, max_norm, norm_type in (("l2", 1.0, 2.0), ("l2_big", 100.0, 2.0), ("inf", 0.5, float("inf"))):
        params = [torch.zeros_like(g, requires_grad=True) for g in grads]
        for p, g in zip(params, grads):
            p.grad = g.clone()
        total = torch.nn.utils.clip_grad_norm_(params, max_norm, norm_type)
        out[f"{tag}_total"] = total.reshape(1).to(dtype).numpy()
        for i, p in enumerate(params):
            out[f"{tag}_g{i}"] = p.grad.numpy()
    return out


def main(out_dir):
    torch.set_num_threads(1)
    count = 0
    for dtype, tag in ((torch.float32, "f32"), (torch.float64, "f64")):
        for case, fn in (("batchnorm", batchnorm), ("layernorm", layernorm), ("optim", optim), ("clip", clip)):
            gen = torch.Generator().manual_seed(2024)
            st_io.save(os.path.join(out_dir, f"layers_b_{case}_{tag}.safetensors"), fn(dtype, gen),
                       {"torch": torch.__version__})
            count += 1
    print(f"wrote {count} reference files to {out_dir}")


if __name__ == "__main__":
    main(sys.argv[1])
