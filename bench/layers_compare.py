#!/usr/bin/env python3
"""asrkit's Linear / Conv2d / GEMM vs PyTorch CPU on identical shapes, in the same run; prints ratios.

    layers_compare.py BUILD_DIR [--threads 1 2] [--reps 5] [--per-call-median] [--markdown OUT.md]

Workloads (float32, bench/bench_layers.cpp):
  linear   torch.nn.Linear(1024, 4096) on x [8, 500, 1024]; fwd, and fwd + backward with x
           requiring grad (dX, dW, db), upstream gradient fixed
  conv2d   torch.nn.Conv2d(1, 32, (41, 11), stride 2, padding (20, 5)) on [B, 1, 161, 1000],
           B = 1 and 8; fwd, and fwd + backward with the input requiring grad
  gemm     x @ w.T for [4000, 1024] x [4096, 1024] and [1024, 1024]^2
PyTorch runs at its best (anchor.use_best_environment: the CPU's widest ATEN_CPU_CAPABILITY, OpenMP
OpenBLAS, oneDNN for conv) with torch.set_num_threads equal to asrkit's thread count. The
speed-up column is PyTorch time / asrkit time (> 1: asrkit faster).
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


def torch_workloads():
    """name -> (callable, GFLOP per call)."""
    torch.manual_seed(0)
    work = {}
    fc = torch.nn.Linear(1024, 4096)
    x = torch.rand(8, 500, 1024) * 2 - 1
    dy = torch.rand(8, 500, 4096) * 2 - 1
    lin_flops = 2 * 4000 * 1024 * 4096 * 1e-9

    def lin_fwd():
        with torch.no_grad():
            return fc(x)

    def lin_fwdbwd():
        xi = x.detach().requires_grad_(True)
        fc.zero_grad(set_to_none=True)
        fc(xi).backward(dy)
        return xi.grad

    work["linear/fwd"] = (lin_fwd, lin_flops)
    work["linear/fwdbwd"] = (lin_fwdbwd, 3 * lin_flops)
    conv = torch.nn.Conv2d(1, 32, (41, 11), stride=(2, 2), padding=(20, 5))
    for b in (1, 8):
        xs = torch.rand(b, 1, 161, 1000) * 2 - 1
        with torch.no_grad():
            ys = conv(xs)
        dys = torch.rand_like(ys) * 2 - 1
        flops = 2 * ys.numel() * 41 * 11 * 1e-9

        def c_fwd(xs=xs):
            with torch.no_grad():
                return conv(xs)

        def c_fwdbwd(xs=xs, dys=dys):
            xi = xs.detach().requires_grad_(True)
            conv.zero_grad(set_to_none=True)
            conv(xi).backward(dys)
            return xi.grad

        work[f"conv2d_b{b}/fwd"] = (c_fwd, flops)
        work[f"conv2d_b{b}/fwdbwd"] = (c_fwdbwd, 3 * flops)
    for m, n, k in ((4000, 4096, 1024), (1024, 1024, 1024)):
        a = torch.rand(m, k)
        w = torch.rand(n, k)
        work[f"gemm/{m}/{n}/{k}"] = ((lambda a=a, w=w: a @ w.t()), 2 * m * n * k * 1e-9)
    return work


def time_asrkit(bench, threads):
    out = subprocess.run([bench, f"--benchmark_filter=/threads:{threads}/", "--benchmark_format=json",
                          "--benchmark_repetitions=3", "--benchmark_report_aggregates_only=true"],
                         check=True, capture_output=True, text=True).stdout
    result = {}
    for b in json.loads(out)["benchmarks"]:
        if b.get("aggregate_name") == "median":
            name = b["run_name"].split("/threads:")[0]
            result[name] = b["real_time"]  # ms
    return result


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build_dir")
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    anchor.add_statistic_arguments(ap, reps=5)
    ap.add_argument("--markdown", help="append the table here too")
    args = ap.parse_args()
    bench = os.path.join(args.build_dir, "bench", "bench_layers")
    work = torch_workloads()
    header = ("| workload | threads | asrkit ms | asrkit GFLOP/s | PyTorch ms | PyTorch GFLOP/s "
              "| speed-up |")
    rule = "|---|---|---|---|---|---|---|"
    print(header)
    print(rule)
    rows = []
    for threads in args.threads:
        ours = time_asrkit(bench, threads)
        torch.set_num_threads(threads)
        for name, (fn, gflop) in work.items():
            theirs = anchor.anchor_ms(fn, args)
            mine = ours[name]
            row = (f"| {name} | {threads} | {mine:.1f} | {gflop / mine * 1e3:.1f} | {theirs:.1f} | "
                   f"{gflop / theirs * 1e3:.1f} | {theirs / mine:.2f}x |")
            print(row, flush=True)
            rows.append(row)
    anchor.append_markdown(args.markdown, [header, rule] + rows)


if __name__ == "__main__":
    main()
