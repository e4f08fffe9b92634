#!/usr/bin/env python3
"""PyTorch reference for asrkit's attention layers and positional encodings.

Usage: attention_reference.py OUT_DIR   writes OUT_DIR/attention_<case>_<f32|f64>.safetensors.

* mha_* cases: torch.nn.MultiheadAttention itself (time-major input, key_padding_mask for the
  lengths, a boolean attn_mask for causal / chunk masks).
* rel_* cases: RelPositionAttention below, our own torch module written to the semantics of
  ESPnet's RelPositionMultiHeadedAttention + RelPositionalEncoding ("latest" rel_pos_type,
  2T - 1 relative positions, rel_shift by padding and reshaping), optionally with a masked
  BatchNorm1d after each projection (asrkit's projection_norm = batch_norm, SPECS sec. 10.2).
* posenc: the sinusoid tables of the absolute and the relative encoding.

asrkit's padding rule (padded frames give 0 and receive no gradient) is applied on top of the
reference: outputs are multiplied by the frame validity, so the upstream gradient of padded frames
is 0 as well. Each file holds the weights under their state_dict names, "input" [T, B, D],
"lengths" [B], "pos_emb" (rel), "output", "grad_output", "grad_input" and "grad.<name>".
Case parameters are repeated in attention_parity.cpp; keep both in sync.
"""
import math
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import st_io  # noqa: E402

nn = torch.nn
T, B, D, HEADS = 9, 3, 16, 4
LENGTHS = [7, 9, 3]


def key_allowed(kind, chunk, left, steps):
    """[steps, steps] bool, True where query i may see key j (before key padding)."""
    i = torch.arange(steps).unsqueeze(1)
    j = torch.arange(steps).unsqueeze(0)
    if kind == "none":
        return torch.ones(steps, steps, dtype=torch.bool)
    if kind == "causal":
        return j <= i
    c = i // chunk  # WeNet's subsequent_chunk_mask
    start = torch.zeros_like(c) if left < 0 else torch.clamp((c - left) * chunk, min=0)
    return (j >= start) & (j < (c + 1) * chunk)


def sinusoid(positions, d_model):
    """PE(p) rows for a float64 column of positions (Vaswani et al. sec. 3.5)."""
    omega = torch.exp(torch.arange(0, d_model, 2, dtype=torch.float64) * -(math.log(10000.0) / d_model))
    pe = torch.zeros(positions.shape[0], d_model, dtype=torch.float64)
    pe[:, 0::2] = torch.sin(positions * omega)
    pe[:, 1::2] = torch.cos(positions * omega)
    return pe


def rel_pos_table(steps, d_model):
    """[2T - 1, D]: row r is PE(T - 1 - r) (ESPnet: flipped positive half, then the negative)."""
    positions = torch.arange(steps - 1, -steps, -1, dtype=torch.float64).unsqueeze(1)
    return sinusoid(positions, d_model)


class MaskedBatchNorm(nn.BatchNorm1d):
    """BatchNorm1d over the valid frames of a [B, T, D] batch; padded frames give 0."""

    def forward(self, x, valid):
        out = torch.zeros_like(x)
        out[valid] = super().forward(x[valid])
        return out


class RelPositionAttention(nn.Module):
    """Transformer-XL relative attention with ESPnet's parameter names (batch-first inside)."""

    def __init__(self, d_model, heads, projection_bn):
        super().__init__()
        self.h, self.d_k = heads, d_model // heads
        self.linear_q = nn.Linear(d_model, d_model)
        self.linear_k = nn.Linear(d_model, d_model)
        self.linear_v = nn.Linear(d_model, d_model)
        self.linear_out = nn.Linear(d_model, d_model)
        self.linear_pos = nn.Linear(d_model, d_model, bias=False)
        self.pos_bias_u = nn.Parameter(torch.empty(heads, self.d_k))
        self.pos_bias_v = nn.Parameter(torch.empty(heads, self.d_k))
        nn.init.xavier_uniform_(self.pos_bias_u)
        nn.init.xavier_uniform_(self.pos_bias_v)
        self.bn = projection_bn
        if projection_bn:
            for name in ("norm_q", "norm_k", "norm_v", "norm_out"):
                setattr(self, name, MaskedBatchNorm(d_model))

    @staticmethod
    def rel_shift(x):
        """[b, h, T, 2T-1] -> [b, h, T, T] with out[i, j] = x[i, T - 1 - i + j]."""
        b, h, t, n = x.shape
        padded = torch.cat([x.new_zeros(b, h, t, 1), x], dim=-1).view(b, h, n + 1, t)
        return padded[:, :, 1:].reshape(b, h, t, n)[:, :, :, : n // 2 + 1]

    def project(self, linear, norm, x, valid):
        y = linear(x)
        return getattr(self, norm)(y, valid) if self.bn else y

    def forward(self, x, pos_emb, allowed, valid):
        """x [B, T, D], pos_emb [2T-1, D], allowed [B, T, T] bool, valid [B, T] bool."""
        b, t, _ = x.shape
        q = self.project(self.linear_q, "norm_q", x, valid).view(b, t, self.h, self.d_k)
        k = self.project(self.linear_k, "norm_k", x, valid).view(b, t, self.h, self.d_k).transpose(1, 2)
        v = self.project(self.linear_v, "norm_v", x, valid).view(b, t, self.h, self.d_k).transpose(1, 2)
        p = self.linear_pos(pos_emb).view(1, -1, self.h, self.d_k).transpose(1, 2)
        ac = torch.matmul((q + self.pos_bias_u).transpose(1, 2), k.transpose(-2, -1))
        bd = self.rel_shift(torch.matmul((q + self.pos_bias_v).transpose(1, 2), p.transpose(-2, -1)))
        scores = (ac + bd) / math.sqrt(self.d_k)
        blocked = ~allowed.unsqueeze(1)
        scores = scores.masked_fill(blocked, torch.finfo(scores.dtype).min)
        attn = torch.softmax(scores, dim=-1).masked_fill(blocked, 0.0)
        ctx = torch.matmul(attn, v).transpose(1, 2).reshape(b, t, self.h * self.d_k)
        return self.project(self.linear_out, "norm_out", ctx, valid)


# name: (layer, mask kind, chunk, left chunks, lengths, bias, projection BN)
CASES = {
    "mha_full": ("mha", "none", 0, -1, LENGTHS, True, False),
    "mha_causal": ("mha", "causal", 0, -1, LENGTHS, True, False),
    "mha_chunk": ("mha", "chunk", 2, -1, LENGTHS, True, False),
    "mha_chunk_left": ("mha", "chunk", 3, 1, [T] * B, False, False),
    "rel_full": ("rel", "none", 0, -1, LENGTHS, True, False),
    "rel_chunk": ("rel", "chunk", 2, 1, LENGTHS, True, False),
    "rel_causal_bn": ("rel", "causal", 0, -1, LENGTHS, True, True),
}


def run_case(name, spec, seed, out_dir):
    layer, kind, chunk, left, lengths, bias, bn = spec
    torch.manual_seed(seed)
    if layer == "mha":
        module64 = nn.MultiheadAttention(D, HEADS, bias=bias).double()
    else:
        module64 = RelPositionAttention(D, HEADS, bn).double()
    x64 = torch.randn(T, B, D, dtype=torch.float64)
    g64 = torch.randn(T, B, D, dtype=torch.float64)
    lens = torch.tensor(lengths, dtype=torch.int32)
    valid_bt = torch.arange(T).unsqueeze(0) < lens.unsqueeze(1)  # [B, T]
    valid_tb1 = valid_bt.t().unsqueeze(-1)                        # [T, B, 1]
    g64 = g64 * valid_tb1
    allowed = key_allowed(kind, chunk, left, T)
    pos64 = rel_pos_table(T, D)
    for dtype, tag in ((torch.float32, "f32"), (torch.float64, "f64")):
        module = (nn.MultiheadAttention(D, HEADS, bias=bias) if layer == "mha"
                  else RelPositionAttention(D, HEADS, bn)).to(dtype)
        module.load_state_dict({k: v.to(dtype) if v.is_floating_point() else v
                                for k, v in module64.state_dict().items()})
        module.train()
        x = x64.to(dtype).clone().requires_grad_(True)
        if layer == "mha":
            y, _ = module(x, x, x, key_padding_mask=~valid_bt, attn_mask=~allowed, need_weights=False)
        else:
            allowed_b = allowed.unsqueeze(0) & valid_bt.unsqueeze(1)  # key padding per item
            y = module(x.transpose(0, 1), pos64.to(dtype), allowed_b, valid_bt).transpose(0, 1)
        y = y * valid_tb1
        y.backward(g64.to(dtype))
        tensors = {k: v.detach().numpy() for k, v in module.state_dict().items()
                   if v.is_floating_point()}
        tensors.update({"input": x.detach().numpy(), "lengths": lens.numpy(),
                        "output": y.detach().numpy(), "grad_output": g64.to(dtype).numpy(),
                        "grad_input": x.grad.numpy()})
        if layer == "rel":
            tensors["pos_emb"] = pos64.to(dtype).numpy()
        for k, p in module.named_parameters():
            tensors["grad." + k] = p.grad.numpy()
        st_io.save(os.path.join(out_dir, f"attention_{name}_{tag}.safetensors"), tensors,
                   {"case": name, "torch": torch.__version__})


def main(out_dir):
    torch.set_num_threads(1)
    for i, (name, spec) in enumerate(CASES.items()):
        run_case(name, spec, 2000 + i, out_dir)
    # Positional encodings: ESPnet's tables (computed here in float64) for T frames.
    tables = {"absolute": sinusoid(torch.arange(T, dtype=torch.float64).unsqueeze(1), D),
              "relative": rel_pos_table(T, D)}
    st_io.save(os.path.join(out_dir, "attention_posenc_f64.safetensors"),
               {k: v.numpy() for k, v in tables.items()}, {"T": T, "D": D})
    print(f"wrote {2 * len(CASES) + 1} attention reference files to {out_dir}")


if __name__ == "__main__":
    main(sys.argv[1])
