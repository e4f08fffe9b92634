#!/usr/bin/env python3
"""PyTorch reference for asrkit's RowConvolution and RandomWalkSmoothing (forward and gradients).

Usage: rowconv_reference.py OUT_DIR    writes OUT_DIR/rowconv_<conv|walk>_<case>_<f32|f64>.safetensors.

Row convolution (SPECS 3.9): torch.nn.Conv1d(d, d, tau + 1, groups=d, bias=False) on the [B, d, T]
input whose frames t >= lengths[b] are zeroed, right-padded by tau; outputs at padded frames are
zeroed. Tensors: "weight" [d, 1, tau + 1], "config" (I32: [tau]), "input" [T, B, d] (padding holds
random values the layer must ignore), "lengths", "output", "grad_output", "grad_input",
"grad.weight".

Random walk (SPECS 11.2-11.3): a dense implementation written for this test, W = exp(-w^T|phi_t -
phi_j|) on the band |t - j| <= R (j != t unless include_self) between valid frames, w =
softplus(weight_raw), A = D^-1 W (isolated frames: A_tt = 1), y = A^k logits, padded outputs 0.
Tensors: "weight_raw", "config" (I32: [R, k, include_self]), "logits", "phi", "lengths",
"output", "grad_output", "grad_logits", "grad_phi", "grad.weight_raw", and for the affinity loss
L = scale * sum over band pairs of (W_tj - [a_t == a_j])^2: "alignments", "aff.scale", "aff.loss",
"aff.grad_phi", "aff.grad.weight_raw". Gradients come from autograd.
"""
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import st_io  # noqa: E402

F = torch.nn.functional

# name: (d, tau, T, lengths). Channel blocks are 64 wide in asrkit: "wide" spans two.
ROWCONV_CASES = {
    "tau3": (6, 3, 9, [9, 5, 2]),
    "tau0": (4, 0, 5, [5, 3]),
    "wide": (70, 6, 12, [12, 4, 0]),
}

# name: (P, V, R, k, include_self, T, lengths)
RANDOMWALK_CASES = {
    "r2_k1": (4, 5, 2, 1, False, 8, [8, 5, 1]),
    "r3_k3_self": (3, 6, 3, 3, True, 10, [10, 7]),
    "r1_k2": (2, 3, 1, 2, False, 6, [6, 2, 1, 0]),
}


def valid_mask(T, lengths, dtype):
    """[T, B, 1]: 1 on frames t < lengths[b]."""
    t = torch.arange(T)[:, None]
    return (t < torch.tensor(lengths)[None, :]).to(dtype)[:, :, None]


def row_conv(x, weight, lengths):
    T, _, d = x.shape
    tau = weight.shape[2] - 1
    mask = valid_mask(T, lengths, x.dtype)
    xz = (x * mask).permute(1, 2, 0)                      # [B, d, T], padding zeroed
    y = F.conv1d(F.pad(xz, (0, tau)), weight, groups=d)   # right padding of tau
    return y.permute(2, 0, 1) * mask


def band_affinities(phi, lengths, w_raw, R, include_self):
    """W [B, T, T] (0 off the band and between padded frames) and the band mask."""
    T = phi.shape[0]
    w = F.softplus(w_raw)
    x = phi.permute(1, 0, 2)                                          # [B, T, P]
    e = ((x[:, :, None, :] - x[:, None, :, :]).abs() * w).sum(-1)     # [B, T, T]
    t = torch.arange(T)
    band = (t[:, None] - t[None, :]).abs() <= R
    if not include_self:
        band = band & (t[:, None] != t[None, :])
    valid = t[None, :] < torch.tensor(lengths)[:, None]               # [B, T]
    mask = band[None] & valid[:, :, None] & valid[:, None, :]
    return torch.exp(-e) * mask, mask, valid


def random_walk(logits, phi, lengths, w_raw, R, k, include_self):
    T = logits.shape[0]
    W, _, valid = band_affinities(phi, lengths, w_raw, R, include_self)
    deg = W.sum(-1, keepdim=True)
    isolated = (deg == 0) & valid[:, :, None]
    A = W / torch.where(deg > 0, deg, torch.ones_like(deg))
    A = A + torch.eye(T, dtype=logits.dtype)[None] * isolated
    y = logits.permute(1, 0, 2)
    for _ in range(k):
        y = A @ y
    return y.permute(1, 0, 2) * valid_mask(T, lengths, logits.dtype)


def affinity_loss(phi, alignments, lengths, w_raw, R, include_self, scale):
    W, mask, _ = band_affinities(phi, lengths, w_raw, R, include_self)
    a = alignments.t()                                                # [B, T]
    same = (a[:, :, None] == a[:, None, :]).to(phi.dtype)
    return scale * (((W - same) * mask) ** 2).sum()


def save(out_dir, kind, name, tag, tensors, n):
    st_io.save(os.path.join(out_dir, f"rowconv_{kind}_{name}_{tag}.safetensors"),
               {k: v.detach().numpy() if torch.is_tensor(v) else v for k, v in tensors.items()},
               {"case": name, "torch": torch.__version__})
    return n + 1


def main(out_dir):
    torch.set_num_threads(1)
    written = 0
    for i, (name, (d, tau, T, lengths)) in enumerate(ROWCONV_CASES.items()):
        torch.manual_seed(2000 + i)
        B = len(lengths)
        w64 = torch.nn.Conv1d(d, d, tau + 1, groups=d, bias=False).weight.detach().to(torch.float64)
        x64 = torch.randn(T, B, d, dtype=torch.float64)
        g64 = torch.randn(T, B, d, dtype=torch.float64)
        for dtype, tag in ((torch.float32, "f32"), (torch.float64, "f64")):
            w = w64.to(dtype).clone().requires_grad_(True)
            x = x64.to(dtype).clone().requires_grad_(True)
            y = row_conv(x, w, lengths)
            y.backward(g64.to(dtype))
            written = save(out_dir, "conv", name, tag, {
                "weight": w, "config": torch.tensor([tau], dtype=torch.int32), "input": x,
                "lengths": torch.tensor(lengths, dtype=torch.int32), "output": y,
                "grad_output": g64.to(dtype), "grad_input": x.grad, "grad.weight": w.grad}, written)
    for i, (name, (P, V, R, k, self_loop, T, lengths)) in enumerate(RANDOMWALK_CASES.items()):
        torch.manual_seed(3000 + i)
        B = len(lengths)
        raw64 = torch.randn(P, dtype=torch.float64) * 0.5 - 0.5
        logits64 = torch.randn(T, B, V, dtype=torch.float64)
        phi64 = torch.randn(T, B, P, dtype=torch.float64)
        g64 = torch.randn(T, B, V, dtype=torch.float64)
        align = torch.randint(0, 3, (T, B), dtype=torch.int32)
        scale = 0.25
        for dtype, tag in ((torch.float32, "f32"), (torch.float64, "f64")):
            raw = raw64.to(dtype).clone().requires_grad_(True)
            logits = logits64.to(dtype).clone().requires_grad_(True)
            phi = phi64.to(dtype).clone().requires_grad_(True)
            y = random_walk(logits, phi, lengths, raw, R, k, self_loop)
            y.backward(g64.to(dtype))
            tensors = {"weight_raw": raw, "config": torch.tensor([R, k, int(self_loop)], dtype=torch.int32),
                       "logits": logits, "phi": phi, "lengths": torch.tensor(lengths, dtype=torch.int32),
                       "output": y, "grad_output": g64.to(dtype), "grad_logits": logits.grad,
                       "grad_phi": phi.grad, "grad.weight_raw": raw.grad.clone()}
            raw.grad, phi.grad = None, None
            loss = affinity_loss(phi, align, lengths, raw, R, self_loop, scale)
            loss.backward()
            tensors.update({"alignments": align, "aff.scale": torch.tensor([scale], dtype=dtype),
                            "aff.loss": loss.reshape(1), "aff.grad_phi": phi.grad,
                            "aff.grad.weight_raw": raw.grad})
            written = save(out_dir, "walk", name, tag, tensors, written)
    print(f"wrote {written} row conv / random walk reference files to {out_dir}")


if __name__ == "__main__":
    main(sys.argv[1])
