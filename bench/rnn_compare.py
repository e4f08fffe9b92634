#!/usr/bin/env python3
"""asrkit's LSTM / GRU / RNN vs PyTorch CPU on identical shapes, in the same run; prints ratios.

    rnn_compare.py BUILD_DIR [--threads 1 2] [--reps 3] [--filter REGEX] [--markdown OUT.md]

Workloads (float32, bench/bench_rnn.cpp): input 800, hidden 800, T = 500, batch 1 and 8;
torch.nn.LSTM / GRU / RNN (tanh) with num_layers 1, unidirectional, and bidirectional with the
two directions' outputs summed (DS2's merge; asrkit computes the same separate-weight layer with
RecurrentMerge::sum). fwd runs under torch.no_grad(); fwdbwd runs forward with the input
requiring grad and backward with a fixed upstream gradient (dX, every dW and db). The input is
a plain [T, B, F] tensor (every item full length, no packing on either side).
PyTorch runs at its best (anchor.use_best_environment: the CPU's widest ATEN_CPU_CAPABILITY, OpenMP
OpenBLAS) with torch.set_num_threads equal to asrkit's thread count. The speed-up column is
PyTorch time / asrkit time (> 1: asrkit faster). GFLOP/s counts the matrix products only.
"""
import argparse
import json
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import anchor  # noqa: E402

anchor.use_best_environment()

import torch  # noqa: E402

T, F, H = 500, 800, 800
CELLS = {"lstm": (torch.nn.LSTM, 4), "gru": (torch.nn.GRU, 3), "rnn": (torch.nn.RNN, 1)}


def torch_workloads(name_filter):
    """name -> (callable, GFLOP per call), the names of bench_rnn.cpp."""
    torch.manual_seed(0)
    work = {}
    for cell, (cls, gates) in CELLS.items():
        for b in (1, 8):
            for bi in (False, True):
                base = f"{cell}_b{b}_{'bi' if bi else 'uni'}"
                if name_filter and not any(re.search(name_filter, f"{base}/{m}") for m in ("fwd", "fwdbwd")):
                    continue
                layer = cls(F, H, bidirectional=bi)
                x = torch.rand(T, b, F) * 2 - 1
                dy = torch.rand(T, b, H) * 2 - 1
                gflop = 2 * gates * H * (F + H) * T * b * (2 if bi else 1) * 1e-9

                def run(xi, layer=layer, bi=bi):
                    y = layer(xi)[0]
                    return y[..., :H] + y[..., H:] if bi else y

                def fwd(x=x, run=run):
                    with torch.no_grad():
                        return run(x)

                def fwdbwd(x=x, dy=dy, run=run, layer=layer):
                    xi = x.detach().requires_grad_(True)
                    layer.zero_grad(set_to_none=True)
                    run(xi).backward(dy)
                    return xi.grad

                work[f"{base}/fwd"] = (fwd, gflop)
                work[f"{base}/fwdbwd"] = (fwdbwd, 3 * gflop)
    return {k: v for k, v in work.items() if not name_filter or re.search(name_filter, k)}


def time_asrkit(bench, threads, reps, names):
    pattern = "^(" + "|".join(re.escape(n) for n in names) + f")/threads:{threads}/"
    out = subprocess.run([bench, f"--benchmark_filter={pattern}", "--benchmark_format=json",
                          f"--benchmark_repetitions={reps}", "--benchmark_min_time=0.01"],
                         check=True, capture_output=True, text=True).stdout
    times = {}
    for b in json.loads(out)["benchmarks"]:
        if b.get("run_type", "iteration") == "iteration":
            times.setdefault(b["run_name"].split("/threads:")[0], []).append(b["real_time"])  # ms
    return {name: sorted(t)[len(t) // 2] if len(t) % 2 else 0.5 * (sorted(t)[len(t) // 2 - 1] + sorted(t)[len(t) // 2])
            for name, t in times.items()}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build_dir")
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--filter", help="regex over workload names, e.g. 'gru_b8_uni/fwd$'")
    ap.add_argument("--markdown", help="append the table here too")
    args = ap.parse_args()
    bench = os.path.join(args.build_dir, "bench", "bench_rnn")
    work = torch_workloads(args.filter)
    header = ("| workload | threads | asrkit ms | asrkit GFLOP/s | PyTorch ms | PyTorch GFLOP/s "
              "| speed-up |")
    rule = "|---|---|---|---|---|---|---|"
    print(header)
    print(rule)
    rows = []
    for threads in args.threads:
        ours = time_asrkit(bench, threads, args.reps, list(work))
        torch.set_num_threads(threads)
        for name, (fn, gflop) in work.items():
            theirs = anchor.median_ms(fn, args.reps)
            mine = ours[name]
            row = (f"| {name} | {threads} | {mine:.1f} | {gflop / mine * 1e3:.1f} | {theirs:.1f} | "
                   f"{gflop / theirs * 1e3:.1f} | {theirs / mine:.2f}x |")
            print(row, flush=True)
            rows.append(row)
    anchor.append_markdown(args.markdown, [header, rule] + rows)


if __name__ == "__main__":
    main()
