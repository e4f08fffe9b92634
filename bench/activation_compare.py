#!/usr/bin/env python3
"""asrkit's activation and dropout layers vs PyTorch CPU on identical shapes, in the same run.

    activation_compare.py BUILD_DIR [--threads 1 2] [--ops ...] [--rounds 3] [--no-trim]

x is float32 [T=500, B=8, F=1024] (GLU: [500, 8, 2048] -> [500, 8, 1024]), dy has the output's
shape (bench/bench_activation.cpp). Anchors (torch.set_num_threads = asrkit's, the CPU's widest
ATEN_CPU_CAPABILITY; see anchor.py):
  clipped_relu: torch.nn.Hardtanh(0, 20)   selu: torch.nn.SELU   swish: torch.nn.SiLU
  glu: torch.nn.GLU(-1)   dropout: torch.nn.Dropout(0.1)   alpha_dropout: torch.nn.AlphaDropout(0.05)
  *_fwd: the module in eval mode under no_grad; *_fwd_bwd: train mode, forward + backward(dy)
  on an x that requires grad (the input gradient is formed, as asrkit's backward returns it).
  asrkit's forward_train gets x as a view and caches a byte mask (clipped ReLU), a copy of y
  (SELU) or of x (Swish, GLU); in *_fwd_bwd_borrowed it gets asrkit::borrow(x) and keeps x, as
  autograd keeps a reference (the PyTorch side is the same call).
Both sides are timed with Google Benchmark's statistic (per repetition the mean time per call
of a loop of at least 0.5 s, median of 3 repetitions); --rounds N alternates asrkit and PyTorch
N times per row and prints the median speed-up and its range. Speed-up = PyTorch ms / asrkit ms.
--no-trim: both processes with MALLOC_TRIM_THRESHOLD_ / MALLOC_MMAP_THRESHOLD_ = 512 MiB (glibc
keeps freed 16 MiB blocks, so neither side pays page faults for every new output).
"""
import argparse
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import anchor  # noqa: E402

if "--no-trim" in sys.argv:  # before the anchor re-executes itself: glibc reads these at start-up
    os.environ["MALLOC_TRIM_THRESHOLD_"] = os.environ["MALLOC_MMAP_THRESHOLD_"] = str(512 << 20)
anchor.use_best_environment()

import torch  # noqa: E402

T, B, F = 500, 8, 1024
LAYERS = {"clipped_relu": (lambda: torch.nn.Hardtanh(0.0, 20.0), F, F),
          "selu": (torch.nn.SELU, F, F),
          "swish": (torch.nn.SiLU, F, F),
          "glu": (lambda: torch.nn.GLU(-1), 2 * F, F),
          "dropout": (lambda: torch.nn.Dropout(0.1), F, F),
          "alpha_dropout": (lambda: torch.nn.AlphaDropout(0.05), F, F)}
OPS = [f"{name}_{what}" for name in LAYERS for what in ("fwd", "fwd_bwd", "fwd_bwd_borrowed")
       if not (what == "fwd" and "dropout" in name)  # dropout's inference is the identity
       and not (what == "fwd_bwd_borrowed" and (name == "glu" or "dropout" in name))]


def torch_workload(op):
    name, what = op.split("_fwd", 1)[0], "fwd" if op.endswith("_fwd") else "fwd_bwd"
    make, fin, fout = LAYERS[name]
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(T, B, fin, generator=gen)
    dy = torch.randn(T, B, fout, generator=gen)
    layer = make()
    if what == "fwd":
        layer.eval()

        def fwd():
            with torch.no_grad():
                return layer(x)
        return fwd
    layer.train()

    def fwd_bwd():
        xl = x.detach().requires_grad_(True)
        layer(xl).backward(dy)
        return xl.grad
    return fwd_bwd


def time_asrkit(bench, op, threads):
    out = subprocess.run([bench, f"--benchmark_filter=^activation/{op}/threads:{threads}/",
                          "--benchmark_format=json", "--benchmark_repetitions=3",
                          "--benchmark_report_aggregates_only=true"],
                         check=True, capture_output=True, text=True).stdout
    for b in json.loads(out)["benchmarks"]:
        if b.get("aggregate_name") == "median":
            return b["real_time"]  # ms
    raise RuntimeError(f"no result for {op}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build_dir")
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--ops", nargs="+", default=OPS, choices=OPS)
    ap.add_argument("--rounds", type=int, default=1, help="alternating asrkit / PyTorch rounds per row")
    ap.add_argument("--no-trim", action="store_true", help="glibc keeps freed memory (both sides)")
    ap.add_argument("--markdown", help="append the table here too")
    args = ap.parse_args()
    bench = os.path.join(args.build_dir, "bench", "bench_activation")
    anchor.alternating_table(args.threads, args.ops, args.rounds,
                             lambda op, threads: time_asrkit(bench, op, threads),
                             lambda op: anchor.loop_mean_ms(torch_workload(op)),
                             label=lambda op: op, set_threads=torch.set_num_threads,
                             markdown=args.markdown)


if __name__ == "__main__":
    main()
