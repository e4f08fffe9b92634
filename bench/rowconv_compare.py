#!/usr/bin/env python3
"""asrkit's RowConvolution vs PyTorch's depthwise Conv1d on identical shapes, in the same run.

    rowconv_compare.py BUILD_DIR [--threads 1 2] [--reps 5] [--per-call-median] [--markdown OUT.md]

Workloads (float32, bench/bench_sequence_misc.cpp), d = 1024, T = 500, B = 8, tau = 20 and 80:
  asrkit   RowConvolution(1024, tau) on x [T, B, d] (time-major, every frame valid); fwd, and
           forward_train + backward (dX and dW)
  PyTorch  torch.nn.Conv1d(d, d, tau + 1, groups=d, bias=False) on its own layout, x [B, d, T]
           contiguous, right-padded by tau inside the timed call (F.pad), which is the same
           operation; fwd under no_grad, and fwd + backward with x requiring grad
PyTorch runs at its best (anchor.use_best_environment: the CPU's widest ATEN_CPU_CAPABILITY, OpenMP
OpenBLAS, oneDNN) with torch.set_num_threads equal to asrkit's thread count. GFLOP/s count
2 (tau + 1) T B d per pass (3 passes for fwd + bwd). The speed-up column is PyTorch time /
asrkit time (> 1: asrkit faster). The default run takes well under a minute.
"""
import argparse
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import anchor  # noqa: E402

anchor.use_best_environment()

import torch  # noqa: E402

F = torch.nn.functional
FRAMES, BATCH, FEATURES = 500, 8, 1024


def torch_workloads():
    """name -> (callable, GFLOP per call)."""
    torch.manual_seed(0)
    work = {}
    x = torch.rand(BATCH, FEATURES, FRAMES) * 2 - 1
    dy = torch.rand(BATCH, FEATURES, FRAMES) * 2 - 1
    for tau in (20, 80):
        conv = torch.nn.Conv1d(FEATURES, FEATURES, tau + 1, groups=FEATURES, bias=False)
        gflop = 2 * (tau + 1) * FRAMES * BATCH * FEATURES * 1e-9

        def fwd(conv=conv, tau=tau):
            with torch.no_grad():
                return conv(F.pad(x, (0, tau)))

        def fwdbwd(conv=conv, tau=tau):
            xi = x.detach().requires_grad_(True)
            conv.zero_grad(set_to_none=True)
            conv(F.pad(xi, (0, tau))).backward(dy)
            return xi.grad

        work[f"rowconv_tau{tau}/fwd"] = (fwd, gflop)
        work[f"rowconv_tau{tau}/fwdbwd"] = (fwdbwd, 3 * gflop)
    return work


def time_asrkit(bench, threads, reps):
    out = subprocess.run([bench, f"--benchmark_filter=/threads:{threads}/", "--benchmark_format=json",
                          f"--benchmark_repetitions={reps}", "--benchmark_report_aggregates_only=true"],
                         check=True, capture_output=True, text=True).stdout
    result = {}
    for b in json.loads(out)["benchmarks"]:
        if b.get("aggregate_name") == "median":
            result[b["run_name"].split("/threads:")[0]] = b["real_time"]  # ms
    return result


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build_dir")
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    anchor.add_statistic_arguments(ap, reps=5)
    ap.add_argument("--markdown", help="append the table here too")
    args = ap.parse_args()
    bench = os.path.join(args.build_dir, "bench", "bench_sequence_misc")
    work = torch_workloads()
    header = ("| workload | threads | asrkit ms | asrkit GFLOP/s | PyTorch ms | PyTorch GFLOP/s "
              "| speed-up |")
    rule = "|---|---|---|---|---|---|---|"
    print(header)
    print(rule)
    rows = []
    for threads in args.threads:
        ours = time_asrkit(bench, threads, max(1, min(args.reps, 3)))
        torch.set_num_threads(threads)
        for name, (fn, gflop) in work.items():
            theirs = anchor.anchor_ms(fn, args)
            mine = ours[name]
            row = (f"| {name} | {threads} | {mine:.2f} | {gflop / mine * 1e3:.1f} | {theirs:.2f} | "
                   f"{gflop / theirs * 1e3:.1f} | {theirs / mine:.2f}x |")
            print(row, flush=True)
            rows.append(row)
    anchor.append_markdown(args.markdown, [header, rule] + rows)


if __name__ == "__main__":
    main()
