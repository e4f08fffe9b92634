#!/usr/bin/env python3
"""PyTorch reference for asrkit's recurrent layers (nn/recurrent.hpp).

Usage: recurrent_reference.py OUT_DIR    writes OUT_DIR/recurrent_<case>_<f32|f64>.safetensors
  with the weights under asrkit's names (torch.nn.RNN/GRU/LSTM state_dict names; "norm_ih_l0.*"
  for BN), "input" [T, B, F], "lengths" [B] (int32, unsorted), "output", "grad_output" (fixed,
  random, nonzero on padded frames too), "grad_input" and "grad.<name>" for every parameter;
  BN cases also the running statistics after the training step ("after.<buffer>").

Two kinds of reference:
  * torch.nn.RNN / GRU / LSTM themselves on pack_padded_sequence(enforce_sorted=False) input;
  * the DS2 conventions PyTorch has no module for (GRU with z weighting the candidate, the reset
    gate before U_h, clipped-ReLU candidates, shared input weights with summed directions,
    sequence-wise BN of W x): small modules written here with explicit time loops. Their reverse
    direction runs t = T-1 ... 0 with the state held at zero until the item's last frame (no
    reversal of the input), an independent formulation of what asrkit computes.
"""
import copy
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import st_io  # noqa: E402

nn = torch.nn
T, B, F, H = 7, 4, 5, 6
LENGTHS = [7, 3, 5, 1]


class TorchPacked(nn.Module):
    """A torch.nn recurrent module run on a packed batch; padded outputs are zero."""

    def __init__(self, module):
        super().__init__()
        self.rnn = module

    def forward(self, x, lengths):
        packed = nn.utils.rnn.pack_padded_sequence(x, lengths, enforce_sorted=False)
        y, _ = self.rnn(packed)
        return nn.utils.rnn.pad_packed_sequence(y, total_length=x.shape[0])[0]

    def named_weights(self):
        return dict(self.rnn.named_parameters())


def act(kind, v, clip):
    if kind == "tanh":
        return torch.tanh(v)
    return torch.clamp(v, 0.0, clip)  # clipped ReLU (hardtanh(0, clip))


def direction(step, xp, lengths, h_size, reverse):
    """Runs step(xp_t, h) -> h_new over time (reversed: t = T-1 .. 0), holding the state of
    items outside their valid frames; returns [T, B, H] with zeros on padded frames."""
    steps, batch = xp.shape[0], xp.shape[1]
    h = xp.new_zeros(batch, h_size)
    out = [None] * steps
    order = range(steps - 1, -1, -1) if reverse else range(steps)
    for t in order:
        valid = (torch.tensor(lengths) > t).unsqueeze(1)
        h_new = step(xp[t], h)
        h = torch.where(valid, h_new, h)
        out[t] = torch.where(valid, h_new, torch.zeros_like(h_new))
    return torch.stack(out)


class DS2Recurrent(nn.Module):
    """GRU or simple RNN with DS2's options, explicit loops (SPECS 3.2, 3.3)."""

    def __init__(self, cell, bidirectional, shared, merge_sum, update="ds2", reset="after",
                 activation="tanh", clip=20.0, bn=False, bias=True, input_size=F, hidden_size=H):
        super().__init__()
        g = 3 if cell == "gru" else 1
        self.hidden_size = hidden_size
        F, H = input_size, hidden_size  # noqa: N806 (the module-level defaults, overridden)
        self.cell, self.update, self.reset, self.activation, self.clip = cell, update, reset, activation, clip
        self.bidirectional, self.shared, self.merge_sum, self.bn = bidirectional, shared, merge_sum, bn
        k = 1 / H ** 0.5
        dirs = ["_l0", "_l0_reverse"] if bidirectional else ["_l0"]
        projections = dirs[:1] if shared else dirs
        for d in dirs:
            if d in projections:
                self.register_parameter("weight_ih" + d, nn.Parameter(torch.empty(g * H, F).uniform_(-k, k)))
                if bias and not bn:
                    self.register_parameter("bias_ih" + d, nn.Parameter(torch.empty(g * H).uniform_(-k, k)))
                if bn:
                    self.add_module("norm_ih" + d, nn.BatchNorm1d(g * H))
            self.register_parameter("weight_hh" + d, nn.Parameter(torch.empty(g * H, H).uniform_(-k, k)))
            if bias:
                self.register_parameter("bias_hh" + d, nn.Parameter(torch.empty(g * H).uniform_(-k, k)))
        self.dirs, self.projections = dirs, projections

    def project(self, x, lengths, d):
        xp = x @ getattr(self, "weight_ih" + d).t()
        if hasattr(self, "bias_ih" + d):
            xp = xp + getattr(self, "bias_ih" + d)
        if not self.bn:
            return xp
        # Sequence-wise BN over the valid frames only (SPECS 3.3): gather, normalise, scatter.
        mask = torch.arange(x.shape[0]).unsqueeze(1) < torch.tensor(lengths).unsqueeze(0)
        valid = xp[mask]
        normed = getattr(self, "norm_ih" + d)(valid)
        out = torch.zeros_like(xp)
        out[mask] = normed
        return out

    def step(self, d):
        w = getattr(self, "weight_hh" + d)
        b = getattr(self, "bias_hh" + d, None)
        bias = b if b is not None else w.new_zeros(w.shape[0])

        def rnn(xp_t, h):
            return act(self.activation, xp_t + h @ w.t() + bias, self.clip)

        def gru(xp_t, h):
            xr, xz, xn = xp_t.chunk(3, 1)
            wr, wz, wn = w.chunk(3, 0)
            br, bz, bn = bias.chunk(3)
            r = torch.sigmoid(xr + h @ wr.t() + br)
            z = torch.sigmoid(xz + h @ wz.t() + bz)
            if self.reset == "after":
                n = act(self.activation, xn + r * (h @ wn.t() + bn), self.clip)
            else:
                n = act(self.activation, xn + (r * h) @ wn.t() + bn, self.clip)
            if self.update == "torch":
                return (1 - z) * n + z * h
            return (1 - z) * h + z * n

        return gru if self.cell == "gru" else rnn

    def forward(self, x, lengths):
        xps = {d: self.project(x, lengths, d) for d in self.projections}
        outs = []
        for i, d in enumerate(self.dirs):
            xp = xps[d] if d in xps else xps[self.projections[0]]
            outs.append(direction(self.step(d), xp, lengths, self.hidden_size, reverse=i == 1))
        if len(outs) == 1:
            return outs[0]
        return outs[0] + outs[1] if self.merge_sum else torch.cat(outs, dim=2)

    def named_weights(self):
        return dict(self.named_parameters())


# name: module factory. Keep in sync with recurrent_parity.cpp.
CASES = {
    "rnn_tanh": lambda: TorchPacked(nn.RNN(F, H)),
    "rnn_relu_bi": lambda: TorchPacked(nn.RNN(F, H, nonlinearity="relu", bidirectional=True)),
    "gru": lambda: TorchPacked(nn.GRU(F, H)),
    "gru_bi": lambda: TorchPacked(nn.GRU(F, H, bidirectional=True)),
    "lstm": lambda: TorchPacked(nn.LSTM(F, H)),
    "lstm_bi": lambda: TorchPacked(nn.LSTM(F, H, bidirectional=True)),
    "lstm_nobias": lambda: TorchPacked(nn.LSTM(F, H, bias=False)),
    "gru_ds2": lambda: DS2Recurrent("gru", False, False, False, update="ds2"),
    "gru_ds2_bi_shared_sum_crelu": lambda: DS2Recurrent("gru", True, True, True, update="ds2",
                                                        activation="crelu", clip=0.9),
    "gru_before": lambda: DS2Recurrent("gru", False, False, False, update="torch", reset="before"),
    "gru_before_ds2_bi": lambda: DS2Recurrent("gru", True, False, False, update="ds2", reset="before"),
    "rnn_crelu_bi_sum": lambda: DS2Recurrent("rnn", True, False, True, activation="crelu", clip=0.8),
    "bnrnn_ds2": lambda: DS2Recurrent("rnn", True, True, True, activation="crelu", clip=20.0,
                                      bn=True, bias=False),
    "bngru_bi": lambda: DS2Recurrent("gru", True, False, False, update="torch", bn=True),
}


def main(out_dir):
    torch.set_num_threads(1)
    for i, (name, factory) in enumerate(CASES.items()):
        torch.manual_seed(2000 + i)
        module64 = factory().to(torch.float64)
        x64 = torch.randn(T, B, F, dtype=torch.float64)
        if name.startswith("bn"):
            x64 = x64 * 2 + 0.5  # statistics away from (0, 1) so BN does something
        with torch.no_grad():  # on a copy: a training forward would move BN's running statistics
            features = copy.deepcopy(module64)(x64, LENGTHS).shape[2]
        g64 = torch.randn(T, B, features, dtype=torch.float64)
        for dtype, tag in ((torch.float32, "f32"), (torch.float64, "f64")):
            module = factory().to(dtype)
            module.load_state_dict({k: v.to(dtype) for k, v in module64.state_dict().items()})
            module.train()
            before = {k: v.detach().clone().numpy() for k, v in module.state_dict().items()}
            x = x64.to(dtype).clone().requires_grad_(True)
            y = module(x, LENGTHS)
            y.backward(g64.to(dtype))
            tensors = {}
            for k, v in before.items():  # weights and buffers as loaded (BN: before the step)
                tensors[k[len("rnn."):] if k.startswith("rnn.") else k] = v
            for k, v in module.state_dict().items():
                if "running" in k:
                    tensors["after." + k] = v.detach().numpy()
            tensors.update({"input": x.detach().numpy(), "lengths": torch.tensor(LENGTHS, dtype=torch.int32).numpy(),
                            "output": y.detach().numpy(), "grad_output": g64.to(dtype).numpy(),
                            "grad_input": x.grad.numpy()})
            for k, p in module.named_weights().items():
                tensors["grad." + k] = p.grad.numpy()
            st_io.save(os.path.join(out_dir, f"recurrent_{name}_{tag}.safetensors"), tensors,
                       {"case": name, "torch": torch.__version__})
    print(f"wrote {2 * len(CASES)} recurrent reference files to {out_dir}")


if __name__ == "__main__":
    main(sys.argv[1])
