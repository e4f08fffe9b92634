#!/usr/bin/env python3
"""Deep Speech 2 (examples/ds2) in asrkit vs the same model in PyTorch; prints ratios and RTF.

    ds2_compare.py BUILD_DIR [--threads 1 2] [--reps 3] [--filter REGEX] [--markdown OUT.md]

Workloads (float32, bench/bench_ds2.cpp): the paper-sized model, bidirectional ("paper") and
forward-only with a 20-frame lookahead ("paper_forward"): 2 convs of 32 channels (41x11 stride
2x2, 21x11 stride 2x1), 5 GRU layers of 800, 29 labels; 10 s of audio = 1000 frames of 161 bins,
every item full length. Inference at batch 1 and 8 (eval mode, torch.no_grad); a training step
at batch 8 (train mode: zero_grad, forward with batch statistics, log_softmax + ctc_loss with
mean reduction, backward).

Anchor: `FastDS2` below, the same math as tests/reference/ds2_reference.py (which the parity
test proves asrkit equal to) written for speed on full-length batches: conv2d + BatchNorm2d +
hardtanh, one matmul for each layer's shared GRU input projection + BatchNorm1d, then the
recurrence as a loop of addmm + gate ops: TorchScript-scripted for inference (faster than the
eager loop), eager for training (autograd through the scripted loop is several times slower);
--all-variants times both for every workload and keeps the faster. It loads the weights asrkit wrote (`bench_ds2 --dump`)
with strict names, and its batch-8 inference logits must equal asrkit's to 1e-4 (relative to
the largest logit) before anything is timed.

For context the table also times torch.nn.GRU in deepspeech.pytorch's layout (BatchNorm1d on
the input of layers 2..5, a separate input projection for each direction, same convs): the
issue's "PyTorch 1.13 DS2" anchor. Its bidirectional model does more work (its own GFLOP
column), so its ratio is not the like-for-like one.

PyTorch runs at its best (anchor.use_best_environment: the CPU's widest ATEN_CPU_CAPABILITY, OpenMP
OpenBLAS) with torch.set_num_threads equal to asrkit's thread count. Speed-up = PyTorch time /
asrkit time (> 1: asrkit faster). RTF = processing time / audio duration (batch x 10 s).
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from typing import List

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "tests", "reference"))
import anchor  # noqa: E402

anchor.use_best_environment()

import torch  # noqa: E402

from safetensors_reference import decode, read_file  # noqa: E402

nn = torch.nn
Fn = torch.nn.functional
AUDIO_SECONDS = 10.0


def gru_direction(xp: torch.Tensor, w_hh: torch.Tensor, b_hh: torch.Tensor, reverse: bool) -> torch.Tensor:
    """DS2 GRU over precomputed input terms xp [T, B, 3H] (gates r, z, n): reset after U_h,
    h = (1 - z) h + z n."""
    steps, hidden = xp.size(0), w_hh.size(1)
    h = torch.zeros(xp.size(1), hidden, dtype=xp.dtype)
    w_t = w_hh.t()
    frames = xp.unbind(0)  # not xp[t]: its backward would write a zero-filled [T, B, 3H] per step
    outs: List[torch.Tensor] = []
    for i in range(steps):
        t = steps - 1 - i if reverse else i
        x = frames[t]
        gh = torch.addmm(b_hh, h, w_t)
        r = torch.sigmoid(x[:, :hidden] + gh[:, :hidden])
        z = torch.sigmoid(x[:, hidden:2 * hidden] + gh[:, hidden:2 * hidden])
        n = torch.tanh(x[:, 2 * hidden:] + r * gh[:, 2 * hidden:])
        h = h + z * (n - h)
        outs.append(h)
    if reverse:
        outs.reverse()
    return torch.stack(outs)


SCRIPTED_GRU = torch.jit.script(gru_direction)


def conv_out(n, spec, axis):
    """Output size of a conv along axis 0 (frequency) or 1 (time): ds2::ConvSpec::output_size."""
    return max(0, (n + 2 * spec["padding"][axis] - spec["kernel"][axis]) // spec["stride"][axis] + 1)


def conv_front(blocks, features):
    """features [T, B, bins] -> the conv stack -> the RNN input [T', B, C*F] (feature c*F + f)."""
    x = features.permute(1, 2, 0).unsqueeze(1).contiguous()                   # [B, 1, bins, T]
    for block in blocks:
        x = block(x)
    b, c, rows, steps = x.shape
    return x.reshape(b, c * rows, steps).permute(2, 0, 1).contiguous()


class ConvBlock(nn.Module):
    def __init__(self, in_channels, spec, clip):
        super().__init__()
        kh, kw = spec["kernel"]
        self.weight = nn.Parameter(torch.empty(spec["channels"], in_channels, kh, kw))
        self.norm = nn.BatchNorm2d(spec["channels"])  # the state_dict names of BatchNorm1d
        self.stride, self.padding, self.clip = tuple(spec["stride"]), tuple(spec["padding"]), clip

    def forward(self, x):
        y = self.norm(Fn.conv2d(x, self.weight, stride=self.stride, padding=self.padding))
        return Fn.hardtanh(y, 0.0, self.clip)


class GRULayer(nn.Module):
    """Shared input weight, sequence-wise BN of W x, directions summed (asrkit's names)."""

    def __init__(self, features, hidden, bidirectional, recurrence):
        super().__init__()
        self.weight_ih_l0 = nn.Parameter(torch.empty(3 * hidden, features))
        self.norm_ih_l0 = nn.BatchNorm1d(3 * hidden)
        self.dirs = ["_l0", "_l0_reverse"] if bidirectional else ["_l0"]
        for d in self.dirs:
            self.register_parameter("weight_hh" + d, nn.Parameter(torch.empty(3 * hidden, hidden)))
            self.register_parameter("bias_hh" + d, nn.Parameter(torch.empty(3 * hidden)))
        self.recurrence = recurrence

    def forward(self, x):
        steps, batch, _ = x.shape
        xp = self.norm_ih_l0(Fn.linear(x, self.weight_ih_l0).view(steps * batch, -1)).view(steps, batch, -1)
        out = None
        for i, d in enumerate(self.dirs):
            y = self.recurrence(xp, getattr(self, "weight_hh" + d), getattr(self, "bias_hh" + d), i == 1)
            out = y if out is None else out + y
        return out


class FastDS2(nn.Module):
    def __init__(self, config, recurrence):
        super().__init__()
        self.config = config
        blocks, channels, rows = [], 1, config["bins"]
        for spec in config["convs"]:
            blocks.append(ConvBlock(channels, spec, config["clip"]))
            channels = spec["channels"]
            rows = conv_out(rows, spec, 0)
        self.conv = nn.ModuleList(blocks)
        features, hidden = channels * rows, config["hidden"]
        layers = []
        for _ in range(config["rnn_layers"]):
            layers.append(GRULayer(features, hidden, config["bidirectional"], recurrence))
            features = hidden
        self.rnn = nn.ModuleList(layers)
        if config["lookahead"] > 0:
            self.lookahead = nn.Module()
            self.lookahead.weight = nn.Parameter(torch.empty(hidden, 1, config["lookahead"] + 1))
        self.fc = nn.Linear(hidden, config["vocab"])

    def forward(self, features):
        """features [T, B, bins], every item full length -> logits [T', B, V]."""
        x = conv_front(self.conv, features)
        for layer in self.rnn:
            x = layer(x)
        tau = self.config["lookahead"]
        if tau > 0:
            y = Fn.conv1d(Fn.pad(x.permute(1, 2, 0), (0, tau)), self.lookahead.weight, groups=x.shape[2])
            x = Fn.hardtanh(y.permute(2, 0, 1), 0.0, self.config["clip"])
        return self.fc(x)


class DeepSpeechPytorch(nn.Module):
    """The same convs, then torch.nn.GRU layers as deepspeech.pytorch builds them (context)."""

    def __init__(self, config):
        super().__init__()
        self.config = config
        self.conv = FastDS2(config, SCRIPTED_GRU).conv
        rows, channels = config["bins"], 1
        for spec in config["convs"]:
            rows = conv_out(rows, spec, 0)
            channels = spec["channels"]
        features, hidden = channels * rows, config["hidden"]
        self.norms = nn.ModuleList([nn.Identity()] + [nn.BatchNorm1d(hidden) for _ in range(config["rnn_layers"] - 1)])
        self.grus = nn.ModuleList([nn.GRU(features if i == 0 else hidden, hidden, bidirectional=config["bidirectional"])
                                   for i in range(config["rnn_layers"])])
        tau = config["lookahead"]
        self.lookahead = nn.Conv1d(hidden, hidden, tau + 1, groups=hidden, bias=False) if tau > 0 else None
        self.fc = nn.Linear(hidden, config["vocab"])

    def forward(self, features):
        x = conv_front(self.conv, features)
        steps, b, hidden = x.shape[0], x.shape[1], self.config["hidden"]
        for norm, gru in zip(self.norms, self.grus):
            x = norm(x.view(steps * b, -1)).view(steps, b, -1)
            x = gru(x)[0]
            if self.config["bidirectional"]:
                x = x[..., :hidden] + x[..., hidden:]
        if self.lookahead is not None:
            tau = self.config["lookahead"]
            x = Fn.hardtanh(self.lookahead(Fn.pad(x.permute(1, 2, 0), (0, tau))).permute(2, 0, 1), 0.0, self.config["clip"])
        return self.fc(x)

    def gflop(self, steps, batch):
        """Matrix-product and convolution work of one forward, like bench_ds2's counter."""
        c, total, rows, frames, channels = self.config, 0.0, self.config["bins"], steps, 1
        for spec in c["convs"]:
            rows = conv_out(rows, spec, 0)
            frames = conv_out(frames, spec, 1)
            total += 2.0 * spec["channels"] * channels * spec["kernel"][0] * spec["kernel"][1] * rows * frames
            channels = spec["channels"]
        features, dirs = channels * rows, 2 if c["bidirectional"] else 1
        for _ in range(c["rnn_layers"]):
            total += 2.0 * 3 * c["hidden"] * (features + c["hidden"]) * frames * dirs
            features = c["hidden"]
        total += 2.0 * c["hidden"] * c["vocab"] * frames
        return total * batch * 1e-9


def load(path):
    metadata, tensors, _ = read_file(path)
    return {k: decode(*v) for k, v in tensors.items()}, metadata


def time_asrkit(bench, threads, reps, names):
    pattern = "^(" + "|".join(re.escape(n) for n in names) + f")/threads:{threads}/"
    out = subprocess.run([bench, f"--benchmark_filter={pattern}", "--benchmark_format=json",
                          f"--benchmark_repetitions={reps}", "--benchmark_min_time=0.01"],
                         check=True, capture_output=True, text=True).stdout
    times, gflop = {}, {}
    for b in json.loads(out)["benchmarks"]:
        if b.get("run_type", "iteration") == "iteration":
            name = b["run_name"].split("/threads:")[0]
            times.setdefault(name, []).append(b["real_time"])  # ms
            gflop[name] = b["GFLOP"]
    return {name: (sorted(t)[len(t) // 2], gflop[name]) for name, t in times.items()}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build_dir")
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--reps", type=int, default=3, help="odd: the median is one run")
    ap.add_argument("--filter", help="regex over workload names, e.g. 'paper_b8/infer'")
    ap.add_argument("--all-variants", action="store_true",
                    help="time the anchor's recurrence scripted and eager everywhere, keep the faster")
    ap.add_argument("--markdown", help="append the table here too")
    args = ap.parse_args()
    bench = os.path.join(args.build_dir, "bench", "bench_ds2")
    dump_dir = tempfile.mkdtemp(prefix="ds2_bench_")
    subprocess.run([bench, "--dump", dump_dir], check=True)

    work = {}  # name -> (anchor fns {label: fn}, context fn, context GFLOP)
    torch.manual_seed(0)
    for cfg_name in ("paper", "paper_forward"):
        state, metadata = load(os.path.join(dump_dir, f"ds2_{cfg_name}.safetensors"))
        config = json.loads(metadata["config"])
        features, targets, logits = (state.pop("bench." + k) for k in ("features", "targets", "logits"))
        models = {"scripted": FastDS2(config, SCRIPTED_GRU), "eager": FastDS2(config, gru_direction)}
        for m in models.values():
            m.load_state_dict(state, strict=True)
            m.eval()
        with torch.no_grad():
            torch.set_num_threads(max(args.threads))
            got = models["scripted"](features)
        err = (got - logits).abs().max().item() / max(1.0, logits.abs().max().item())
        print(f"{cfg_name}: PyTorch logits vs asrkit's, max relative error {err:.2e} (limit 1e-4)", flush=True)
        if not err <= 1e-4:
            sys.exit(f"{cfg_name}: the anchor does not compute asrkit's model; nothing timed")
        context = DeepSpeechPytorch(config)
        for batch in (1, 8):
            x = features[:, :batch].contiguous()
            for train in (False, True):
                if train and batch != 8:
                    continue
                name = f"ds2_{cfg_name}_b{batch}/{'train' if train else 'infer'}"
                if args.filter and not re.search(args.filter, name):
                    continue
                default = "eager" if train else "scripted"
                fns = {label: make_step(m, x, targets[:batch], train) for label, m in models.items()
                       if args.all_variants or label == default}
                work[name] = (fns, make_step(context, x, targets[:batch], train),
                              (3 if train else 1) * context.gflop(x.shape[0], batch))

    header = ("| workload | threads | asrkit ms | asrkit GFLOP/s | asrkit RTF | PyTorch ms | PyTorch GFLOP/s "
              "| speed-up | nn.GRU DS2 ms (GFLOP/s) | speed-up vs nn.GRU |")
    rule = "|---|---|---|---|---|---|---|---|---|---|"
    print(header)
    print(rule)
    rows = []
    for threads in args.threads:
        ours = time_asrkit(bench, threads, args.reps, list(work))
        torch.set_num_threads(threads)
        for name, (fns, context_fn, context_gflop) in work.items():
            mine, gflop = ours[name]
            anchors = {label: anchor.median_ms(fn, args.reps) for label, fn in fns.items()}
            best = min(anchors, key=anchors.get)
            theirs = anchors[best]
            ctx = anchor.median_ms(context_fn, args.reps)
            batch = int(re.search(r"_b(\d+)/", name).group(1))
            label = f" ({best})" if len(anchors) == 1 else f" ({best}; " + ", ".join(
                f"{k} {v:.0f}" for k, v in anchors.items()) + ")"
            row = (f"| {name} | {threads} | {mine:.0f} | {gflop / mine * 1e3:.1f} | "
                   f"{mine / 1e3 / (batch * AUDIO_SECONDS):.4f} | {theirs:.0f}{label} | {gflop / theirs * 1e3:.1f} | "
                   f"{theirs / mine:.2f}x | {ctx:.0f} ({context_gflop / ctx * 1e3:.1f}) | {ctx / mine:.2f}x |")
            print(row, flush=True)
            rows.append(row)
    anchor.append_markdown(args.markdown, [header, rule] + rows)


def make_step(model, x, targets, train):
    """A callable running one inference forward or one training step of `model` on x."""
    if not train:
        def infer():
            model.eval()
            with torch.no_grad():
                return model(x)
        return infer
    target_lengths = torch.full((x.shape[1],), targets.shape[1], dtype=torch.int64)
    targets = targets.to(torch.int64)

    def step():
        model.train()
        model.zero_grad(set_to_none=True)
        logits = model(x)
        input_lengths = torch.full((x.shape[1],), logits.shape[0], dtype=torch.int64)
        loss = Fn.ctc_loss(logits.log_softmax(2), targets, input_lengths, target_lengths, reduction="mean")
        loss.backward()
        return loss
    return step


if __name__ == "__main__":
    main()
