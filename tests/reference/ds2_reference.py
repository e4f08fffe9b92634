#!/usr/bin/env python3
"""PyTorch reference for the Deep Speech 2 model of examples/ds2/ds2_model.hpp (SPECS §3).

Usage:
  ds2_reference.py make DIR    writes, for every case and f32/f64,
      DIR/ds2_<case>_<tag>_weights.safetensors   the module's state_dict() before the step, exactly
                                                 (C++ loads it strictly: the names match both ways)
      DIR/ds2_<case>_<tag>.safetensors           metadata "config" (the ds2::Config JSON); "features"
          [T, B, bins] (random values past each length: the model must ignore them), "lengths" [B]
          (I32, unsorted), "out_lengths" [B] (I32), "infer_logits" (eval mode, running statistics),
          "logits" (training mode, batch statistics), "grad_output" (fixed, random, nonzero on
          padded frames too), "grad.<name>" for every parameter, "after.<name>" for every buffer
          after the training forward.
  ds2_reference.py check DIR   loads DIR/ds2_<case>_f64_from_asrkit.safetensors (written by the C++
      test: the model's state after its training step) into the module with strict=True and
      compares every tensor with the state this script reaches; exit 1 on a mismatch.

The module, written here from the spec with explicit masks (not from asrkit):
  conv.i     F.conv2d(bias=False) on the image [B, C, bins, T] (features masked to 0 past each
             length), then BatchNorm1d over the valid (frequency, time) positions of every item
             (gather, normalise, scatter: padded frames never count and are 0 afterwards), then
             the clipped ReLU clamp(0, clip). Lengths: (n + 2p - k) // s + 1 per conv.
  rnn.i      recurrent_reference.DS2Recurrent: shared input weight, BN of W x over valid frames,
             directions summed; GRU with h = (1 - z) h + z n, reset after U_h, tanh candidate
             (asrkit's GRUCellOptions default) or simple RNN with clipped ReLU.
             The RNN input is x.view(B, C * F, T): feature c * F + f.
  lookahead  Conv1d(H, H, tau + 1, groups=H, bias=False) on the masked input right-padded by tau,
             output masked on padded frames, then clamp(0, clip) (forward-only configs).
  fc         Linear(H, V).

Gradients come from autograd of sum(grad_output * logits) over all frames, padded ones included:
the logits of padded frames are fc(0) = fc.bias in both implementations, so only fc.bias sees the
padded part of grad_output, identically; every other gradient must be independent of it.
"""
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import st_io  # noqa: E402
from recurrent_reference import DS2Recurrent  # noqa: E402
from safetensors_reference import decode, read_file  # noqa: E402

nn = torch.nn
Fn = torch.nn.functional

T, LENGTHS = 23, [23, 11, 17]


def tiny(bidirectional=True):
    """ds2::Config::tiny(bidirectional).to_json(), written out here (the C++ test checks it)."""
    return {"name": "tiny" if bidirectional else "tiny-forward", "bins": 17,
            "convs": [{"channels": 3, "kernel": [5, 3], "stride": [2, 2], "padding": [2, 1]},
                      {"channels": 4, "kernel": [3, 3], "stride": [2, 1], "padding": [1, 1]}],
            "cell": "gru", "rnn_layers": 2, "hidden": 12, "bidirectional": bidirectional,
            "lookahead": 0 if bidirectional else 3, "vocab": 7, "clip": 20.0, "bn_momentum": 0.1}


def rnn_variant(bidirectional):
    """tiny with simple-RNN cells and a low clip, so that every clipped ReLU saturates somewhere."""
    c = tiny(bidirectional)
    c.update(name=c["name"] + "-rnn", cell="rnn", clip=1.5)
    return c


# name: config. Keep in sync with ds2_parity.cpp (it rebuilds each config in C++ and compares).
CASES = {
    "tiny": tiny(True),
    "tiny_forward": tiny(False),
    "tiny_rnn": rnn_variant(True),
    "tiny_forward_rnn": rnn_variant(False),
}


def conv_frames(lengths, spec):
    k, s, p = spec["kernel"][1], spec["stride"][1], spec["padding"][1]
    return torch.clamp((lengths + 2 * p - k) // s + 1, min=0)


class ConvBlock(nn.Module):
    """Conv2d (no bias) -> BN over valid positions -> clipped ReLU; padded frames 0."""

    def __init__(self, in_channels, spec, clip, momentum):
        super().__init__()
        kh, kw = spec["kernel"]
        self.weight = nn.Parameter(torch.empty(spec["channels"], in_channels, kh, kw))
        bound = 1 / (in_channels * kh * kw) ** 0.5
        nn.init.uniform_(self.weight, -bound, bound)
        self.norm = nn.BatchNorm1d(spec["channels"], momentum=momentum)
        self.stride, self.padding, self.clip = tuple(spec["stride"]), tuple(spec["padding"]), clip

    def forward(self, x, out_lengths):
        y = Fn.conv2d(x, self.weight, stride=self.stride, padding=self.padding)  # [B, C, F, T']
        b, _, rows, steps = y.shape
        valid = (torch.arange(steps)[None, :] < out_lengths[:, None])           # [B, T']
        valid = valid[:, None, :].expand(b, rows, steps)                         # [B, F, T']
        positions = y.permute(0, 2, 3, 1)                                        # [B, F, T', C]
        normed = torch.zeros_like(positions)
        normed[valid] = self.norm(positions[valid])                              # [N, C] rows
        return torch.clamp(normed, 0.0, self.clip).permute(0, 3, 1, 2)


class Lookahead(nn.Module):
    def __init__(self, hidden, tau):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(hidden, 1, tau + 1))
        nn.init.uniform_(self.weight, -1 / (tau + 1) ** 0.5, 1 / (tau + 1) ** 0.5)
        self.tau = tau

    def forward(self, x, lengths):                                               # x [T, B, H]
        mask = (torch.arange(x.shape[0])[:, None] < lengths[None, :]).to(x.dtype)[:, :, None]
        xz = (x * mask).permute(1, 2, 0)                                         # [B, H, T]
        y = Fn.conv1d(Fn.pad(xz, (0, self.tau)), self.weight, groups=x.shape[2])
        return y.permute(2, 0, 1) * mask


class DS2(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.config = config
        clip, momentum = config["clip"], config["bn_momentum"]
        blocks, channels, rows = [], 1, config["bins"]
        for spec in config["convs"]:
            blocks.append(ConvBlock(channels, spec, clip, momentum))
            channels = spec["channels"]
            rows = (rows + 2 * spec["padding"][0] - spec["kernel"][0]) // spec["stride"][0] + 1
        self.conv = nn.ModuleList(blocks)
        features, hidden = channels * rows, config["hidden"]
        layers = []
        for _ in range(config["rnn_layers"]):
            if config["cell"] == "gru":
                layer = DS2Recurrent("gru", config["bidirectional"], True, True, update="ds2", reset="after",
                                     activation="tanh", bn=True, input_size=features, hidden_size=hidden)
            else:
                layer = DS2Recurrent("rnn", config["bidirectional"], True, True, activation="crelu", clip=clip,
                                     bn=True, input_size=features, hidden_size=hidden)
            for m in layer.modules():
                if isinstance(m, nn.BatchNorm1d):
                    m.momentum = momentum
            layers.append(layer)
            features = hidden
        self.rnn = nn.ModuleList(layers)
        if config["lookahead"] > 0:
            self.lookahead = Lookahead(features, config["lookahead"])
        self.fc = nn.Linear(features, config["vocab"])

    def forward(self, features, lengths):
        """features [T, B, bins], lengths [B] (int64) -> logits [T', B, V], output lengths [B]."""
        steps = features.shape[0]
        mask = (torch.arange(steps)[:, None] < lengths[None, :]).to(features.dtype)[:, :, None]
        x = (features * mask).permute(1, 2, 0).unsqueeze(1)                      # [B, 1, bins, T]
        for block, spec in zip(self.conv, self.config["convs"]):
            lengths = conv_frames(lengths, spec)
            x = block(x, lengths)
        b, c, rows, steps = x.shape
        x = x.reshape(b, c * rows, steps).permute(2, 0, 1)                      # [T', B, C*F]
        for layer in self.rnn:
            x = layer(x, lengths.tolist())
        if self.config["lookahead"] > 0:
            x = torch.clamp(self.lookahead(x, lengths), 0.0, self.config["clip"])
        return self.fc(x), lengths


def randomize(module, generator_seed):
    """Non-trivial values for what the default init leaves plain (BN affine and statistics)."""
    g = torch.Generator().manual_seed(generator_seed)
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, nn.BatchNorm1d):
                m.weight.copy_(torch.rand(m.weight.shape, generator=g, dtype=torch.float64) + 0.5)
                m.bias.copy_(torch.randn(m.bias.shape, generator=g, dtype=torch.float64) * 0.2)
                m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g, dtype=torch.float64) * 0.3)
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=g, dtype=torch.float64) * 1.5 + 0.5)
                m.num_batches_tracked.fill_(5)


def to_dtype(state, dtype):
    return {k: v.to(dtype) if v.is_floating_point() else v.clone() for k, v in state.items()}


def numpy_state(state):
    return {k: v.detach().clone().numpy() for k, v in state.items()}


def make(out_dir):
    torch.set_num_threads(1)
    written = 0
    for i, (name, config) in enumerate(CASES.items()):
        torch.manual_seed(4000 + i)
        ref = DS2(config).to(torch.float64)
        randomize(ref, 5000 + i)
        x64 = torch.randn(T, len(LENGTHS), config["bins"], dtype=torch.float64) * 1.5 + 0.3
        lengths = torch.tensor(LENGTHS, dtype=torch.int64)
        with torch.no_grad():
            ref.eval()
            steps = ref(x64, lengths)[0].shape[0]
        g64 = torch.randn(steps, len(LENGTHS), config["vocab"], dtype=torch.float64)
        for dtype, tag in ((torch.float32, "f32"), (torch.float64, "f64")):
            model = DS2(config).to(dtype)
            model.load_state_dict(to_dtype(ref.state_dict(), dtype), strict=True)
            x = x64.to(dtype)
            st_io.save(os.path.join(out_dir, f"ds2_{name}_{tag}_weights.safetensors"),
                       numpy_state(model.state_dict()), {"format": "pt", "case": name})
            model.eval()
            with torch.no_grad():
                infer, _ = model(x, lengths)
            model.train()
            logits, out_lengths = model(x, lengths)
            logits.backward(g64.to(dtype))
            tensors = {"features": x.numpy(), "lengths": lengths.to(torch.int32).numpy(),
                       "out_lengths": out_lengths.to(torch.int32).numpy(), "infer_logits": infer.numpy(),
                       "logits": logits.detach().numpy(), "grad_output": g64.to(dtype).numpy()}
            for k, p in model.named_parameters():
                tensors["grad." + k] = p.grad.numpy()
            for k, v in model.named_buffers():
                tensors["after." + k] = v.detach().clone().numpy()
            st_io.save(os.path.join(out_dir, f"ds2_{name}_{tag}.safetensors"), tensors,
                       {"case": name, "config": json.dumps(config), "torch": torch.__version__})
            written += 2
    print(f"wrote {written} ds2 reference files to {out_dir}")


def load(path):
    _, tensors, _ = read_file(path)
    return {k: decode(*v) for k, v in tensors.items()}


def check(out_dir):
    torch.set_num_threads(1)
    failures = 0
    for name, config in CASES.items():
        path = os.path.join(out_dir, f"ds2_{name}_f64_from_asrkit.safetensors")
        model = DS2(config).to(torch.float64)
        try:
            model.load_state_dict(load(path), strict=True)  # names and shapes, both ways
        except RuntimeError as e:
            print(f"ds2 check {name}: load_state_dict(strict=True) failed: {e}", file=sys.stderr)
            failures += 1
            continue
        # The expected state after the C++ training step: the weights as written, the buffers as
        # torch left them after its own training forward.
        weights = load(os.path.join(out_dir, f"ds2_{name}_f64_weights.safetensors"))
        data = load(os.path.join(out_dir, f"ds2_{name}_f64.safetensors"))
        buffers = {k for k, _ in model.named_buffers()}
        for k, v in model.state_dict().items():
            want = data["after." + k] if k in buffers else weights[k]
            if v.dtype != want.dtype or v.shape != want.shape:
                print(f"ds2 check {name}: {k}: {v.dtype} {tuple(v.shape)} vs {want.dtype} {tuple(want.shape)}",
                      file=sys.stderr)
                failures += 1
                continue
            err = (v - want).abs().max().item() if v.numel() else 0.0
            scale = max(1.0, want.abs().max().item()) if v.numel() else 1.0
            if err > 1e-9 * scale:
                print(f"ds2 check {name}: {k}: max error {err:.3g}", file=sys.stderr)
                failures += 1
    if failures:
        print(f"ds2 parity check FAILED ({failures} problem(s))", file=sys.stderr)
        sys.exit(1)
    print(f"ds2: {len(CASES)} asrkit state dicts load into the torch module (strict) with the expected values")


if __name__ == "__main__":
    {"make": make, "check": check}[sys.argv[1]](sys.argv[2])
