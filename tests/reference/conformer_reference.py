#!/usr/bin/env python3
"""PyTorch reference for asrkit's Conformer-family modules (feed-forward, convolution module,
Transformer / Conformer / FusionFormer blocks, convolutional subsampling).

Usage: conformer_reference.py OUT_DIR   writes OUT_DIR/conformer_<case>_<f32|f64>.safetensors.

The modules below are ours, written to ESPnet's semantics (PositionwiseFeedForward,
ConvolutionModule, the pre-LN Transformer and macaron Conformer EncoderLayer, Conv2dSubsampling*;
LayerNorm eps 1e-12) with the library's documented choices on top:
* every BatchNorm takes statistics over the valid frames only (SPECS sec. 3.3, 10.2);
* padded frames give 0: outputs are multiplied by the frame validity (so padded frames get no
  upstream gradient), and the convolution module zeroes padded frames before the depthwise conv;
* FusionFormer (SPECS sec. 10.2): no LayerNorm, BN after every linear / conv, ReLU for Swish/GLU.
The relative attention and masked BatchNorm1d come from attention_reference.py.
Each file holds the weights under their state_dict names, "input" (time-major), "lengths",
"pos_emb" (Conformer blocks), "output" (training mode), "output_eval" (eval mode after that
training step, i.e. with the updated running statistics), "grad_output", "grad_input" and
"grad.<name>". Dropout is 0. Case parameters are repeated in conformer_parity.cpp.
"""
import copy
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import st_io  # noqa: E402
from attention_reference import MaskedBatchNorm, RelPositionAttention, rel_pos_table  # noqa: E402

nn = torch.nn
F = torch.nn.functional
T, B, D, HEADS, FF, KERNEL = 9, 3, 8, 2, 12, 5
LENGTHS = [9, 6, 4]


def layer_norm(d):
    return nn.LayerNorm(d, eps=1e-12)


class FeedForward(nn.Module):
    def __init__(self, d, hidden, act, bn):
        super().__init__()
        self.w_1 = nn.Linear(d, hidden)
        self.w_2 = nn.Linear(hidden, d)
        self.act, self.bn = act, bn
        if bn:
            self.norm_1 = MaskedBatchNorm(hidden)
            self.norm_2 = MaskedBatchNorm(d)

    def forward(self, x, valid):  # x [B, T, D], valid [B, T]
        h = self.w_1(x)
        if self.bn:
            h = self.norm_1(h, valid)
        y = self.w_2(self.act(h))
        if self.bn:
            y = self.norm_2(y, valid)
        return y * valid.unsqueeze(-1)


class ConvModule(nn.Module):
    def __init__(self, d, kernel, causal, fusion):
        super().__init__()
        self.pointwise_conv1 = nn.Conv1d(d, d if fusion else 2 * d, 1)
        self.depthwise_conv = nn.Conv1d(d, d, kernel, groups=d)
        self.norm = MaskedBatchNorm(d)
        self.pointwise_conv2 = nn.Conv1d(d, d, 1)
        self.fusion = fusion
        self.pad = (kernel - 1, 0) if causal else ((kernel - 1) // 2, kernel // 2)
        if fusion:
            self.pointwise_norm1 = MaskedBatchNorm(d)
            self.pointwise_norm2 = MaskedBatchNorm(d)

    def forward(self, x, valid):
        m = valid.unsqueeze(-1)
        a = self.pointwise_conv1((x * m).transpose(1, 2)).transpose(1, 2)  # [B, T, C]
        if self.fusion:
            g = torch.relu(self.pointwise_norm1(a, valid))
        else:
            g = F.glu(a, dim=-1)
        g = (g * m).transpose(1, 2)  # padded frames must not leak into the depthwise conv
        d = self.depthwise_conv(F.pad(g, self.pad)).transpose(1, 2)
        n = self.norm(d, valid)
        s = torch.relu(n) if self.fusion else F.silu(n)
        y = self.pointwise_conv2(s.transpose(1, 2)).transpose(1, 2)
        if self.fusion:
            y = self.pointwise_norm2(y, valid)
        return y * m


class TransformerBlock(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.self_attn = nn.MultiheadAttention(d, HEADS)
        self.feed_forward = FeedForward(d, FF, torch.relu, False)
        self.norm1 = layer_norm(d)
        self.norm2 = layer_norm(d)

    def forward(self, x, valid):
        h = self.norm1(x).transpose(0, 1)
        a, _ = self.self_attn(h, h, h, key_padding_mask=~valid, need_weights=False)
        x = x + a.transpose(0, 1) * valid.unsqueeze(-1)
        x = x + self.feed_forward(self.norm2(x), valid)
        return x * valid.unsqueeze(-1)


class ConformerBlock(nn.Module):
    def __init__(self, d, fusion, heads=HEADS, ff=FF, kernel=KERNEL):
        super().__init__()
        act = torch.relu if fusion else F.silu
        self.self_attn = RelPositionAttention(d, heads, fusion)
        self.feed_forward = FeedForward(d, ff, act, fusion)
        self.feed_forward_macaron = FeedForward(d, ff, act, fusion)
        self.conv_module = ConvModule(d, kernel, False, fusion)
        self.fusion = fusion
        if not fusion:
            for name in ("norm_ff", "norm_mha", "norm_ff_macaron", "norm_conv", "norm_final"):
                setattr(self, name, layer_norm(d))

    def ln(self, name, x):
        return x if self.fusion else getattr(self, name)(x)

    def forward(self, x, pos_emb, valid):
        allowed = valid.unsqueeze(1).expand(-1, x.shape[1], -1)  # key padding only
        m = valid.unsqueeze(-1)
        x = x + 0.5 * self.feed_forward_macaron(self.ln("norm_ff_macaron", x), valid)
        x = x + self.self_attn(self.ln("norm_mha", x), pos_emb, allowed, valid) * m
        x = x + self.conv_module(self.ln("norm_conv", x), valid)
        x = x + 0.5 * self.feed_forward(self.ln("norm_ff", x), valid)
        return self.ln("norm_final", x) * m


class MaskedBatchNorm2d(nn.BatchNorm1d):
    """Per-channel BN of [B, C, T, F] over the valid frames (all frequencies); 0 elsewhere."""

    def forward(self, x, valid):
        b, c, t, f = x.shape
        rows = x.permute(0, 2, 3, 1)[valid]  # [N, F, C]
        out = torch.zeros_like(x.permute(0, 2, 3, 1))
        out[valid] = super().forward(rows.reshape(-1, c)).reshape(-1, f, c)
        return out.permute(0, 3, 1, 2)


class Subsampling(nn.Module):
    def __init__(self, idim, odim, factor, fusion):
        super().__init__()
        specs = {4: [(3, 2), (3, 2)], 6: [(3, 2), (5, 3)], 8: [(3, 2), (3, 2), (3, 2)]}[factor]
        layers, f = [], idim
        for i, (k, s) in enumerate(specs):
            layers.append(nn.Conv2d(1 if i == 0 else odim, odim, k, s))
            if fusion:
                layers.append(MaskedBatchNorm2d(odim))
            layers.append(nn.ReLU())
            f = (f - k) // s + 1
        self.conv = nn.Sequential(*layers)
        self.out = nn.Sequential(nn.Linear(odim * f, odim))
        self.specs = specs

    def forward(self, x, lengths):  # x [B, T, F]
        h = x.unsqueeze(1)
        lens = lengths.clone()
        for layer in self.conv:
            if isinstance(layer, nn.Conv2d):
                h = layer(h)
                k, s = layer.kernel_size[0], layer.stride[0]
                lens = torch.where(lens >= k, (lens - k) // s + 1, torch.zeros_like(lens))
            elif isinstance(layer, MaskedBatchNorm2d):
                h = layer(h, torch.arange(h.shape[2]).unsqueeze(0) < lens.unsqueeze(1))
            else:
                h = layer(h)
        b, c, t, f = h.shape
        y = self.out(h.transpose(1, 2).reshape(b, t, c * f))
        valid = torch.arange(t).unsqueeze(0) < lens.unsqueeze(1)
        return y * valid.unsqueeze(-1), lens


# name: (factory, input features, steps, lengths). Keep in sync with conformer_parity.cpp.
CASES = {
    "ffn": (lambda: FeedForward(D, FF, F.silu, False), D, T, LENGTHS),
    "ffn_fusion": (lambda: FeedForward(D, FF, torch.relu, True), D, T, LENGTHS),
    "conv": (lambda: ConvModule(D, KERNEL, False, False), D, T, LENGTHS),
    "conv_causal": (lambda: ConvModule(D, KERNEL, True, False), D, T, LENGTHS),
    "conv_fusion": (lambda: ConvModule(D, KERNEL, False, True), D, T, LENGTHS),
    "transformer": (lambda: TransformerBlock(D), D, T, LENGTHS),
    "conformer": (lambda: ConformerBlock(D, False), D, T, LENGTHS),
    "fusionformer": (lambda: ConformerBlock(D, True), D, T, LENGTHS),
    "subsampling4": (lambda: Subsampling(20, 4, 4, False), 20, 23, [23, 17, 12]),
    "subsampling6": (lambda: Subsampling(20, 4, 6, False), 20, 23, [23, 17, 12]),
    "subsampling8_fusion": (lambda: Subsampling(20, 4, 8, True), 20, 23, [23, 19, 15]),
}


def run(module, name, x, lens, pos):
    """Time-major x [T, B, F] -> time-major output."""
    xb = x.transpose(0, 1)
    valid = torch.arange(x.shape[0]).unsqueeze(0) < lens.unsqueeze(1)
    if name.startswith("subsampling"):
        y, _ = module(xb, lens)
    elif name in ("conformer", "fusionformer"):
        y = module(xb, pos, valid)
    else:
        y = module(xb, valid)
    return y.transpose(0, 1)


def run_case(name, spec, seed, out_dir):
    factory, feats, steps, lengths = spec
    torch.manual_seed(seed)
    module64 = factory().double()
    x64 = torch.randn(steps, B, feats, dtype=torch.float64)
    lens = torch.tensor(lengths, dtype=torch.int64)
    pos64 = rel_pos_table(steps, D)
    with torch.no_grad():  # on a copy: a training forward would move the running statistics
        g64 = torch.randn_like(run(copy.deepcopy(module64), name, x64, lens, pos64))
    for dtype, tag in ((torch.float32, "f32"), (torch.float64, "f64")):
        module = factory().to(dtype)
        module.load_state_dict({k: v.to(dtype) if v.is_floating_point() else v
                                for k, v in module64.state_dict().items()})
        module.train()
        x = x64.to(dtype).clone().requires_grad_(True)
        y = run(module, name, x, lens, pos64.to(dtype))
        y.backward(g64.to(dtype))
        module.eval()
        with torch.no_grad():
            y_eval = run(module, name, x, lens, pos64.to(dtype))
        tensors = {k: v.detach().numpy() for k, v in module.state_dict().items() if v.is_floating_point()}
        tensors.update({"input": x.detach().numpy(), "lengths": lens.to(torch.int32).numpy(),
                        "output": y.detach().numpy(), "output_eval": y_eval.numpy(),
                        "grad_output": g64.to(dtype).numpy(), "grad_input": x.grad.numpy(),
                        "pos_emb": pos64.to(dtype).numpy()})
        for k, p in module.named_parameters():
            tensors["grad." + k] = p.grad.numpy()
        st_io.save(os.path.join(out_dir, f"conformer_{name}_{tag}.safetensors"), tensors,
                   {"case": name, "torch": torch.__version__})


def main(out_dir):
    torch.set_num_threads(1)
    for i, (name, spec) in enumerate(CASES.items()):
        run_case(name, spec, 3000 + i, out_dir)
    print(f"wrote {2 * len(CASES)} conformer reference files to {out_dir}")


if __name__ == "__main__":
    main(sys.argv[1])
