#!/usr/bin/env python3
"""asrkit CTC vs PyTorch CPU ctc_loss on identical inputs, in the same run; prints ratios.

    ctc_compare.py BUILD_DIR [--threads 1 2] [--reps 7] [--per-call-median] [--markdown OUT.md]

Inputs come from `bench_ctc --dump=DIR` (asrkit's Rng), so both libraries see the same numbers.
Loss + gradient, mean reduction, blank 0, full lengths. PyTorch runs at its best: the same
thread count as asrkit (torch.set_num_threads), the CPU's widest ATEN_CPU_CAPABILITY and the OpenMP
OpenBLAS (set below before torch is imported). Anchors per input kind:
  log_probs: F.ctc_loss on a log-probs leaf (backward included);
  logits:    F.log_softmax + F.ctc_loss on a logits leaf (backward included).
The workloads alternate (asrkit then PyTorch for each) so machine noise hits both alike.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import anchor  # noqa: E402

anchor.use_best_environment()

import numpy as np  # noqa: E402
import torch  # noqa: E402

WORKLOADS = {"a": (150, 40, 29, 32), "b": (700, 100, 29, 32), "c": (150, 40, 5000, 16),
             "d": (1000, 200, 1000, 8)}  # T, L, V, B (bench/ctc_workloads.hpp)


def time_torch(logits, targets, lengths, kind, args):
    T, B, V = logits.shape
    il = torch.full((B,), T, dtype=torch.long)
    tl = torch.full((B,), targets.shape[1], dtype=torch.long)
    lp_const = torch.log_softmax(logits, dim=2)

    def step():
        if kind == "log_probs":
            x = lp_const.detach().requires_grad_(True)
            lp = x
        else:
            x = logits.detach().requires_grad_(True)
            lp = torch.log_softmax(x, dim=2)
        loss = torch.nn.functional.ctc_loss(lp, targets, il, tl, blank=0, reduction="mean")
        loss.backward()
        return x.grad

    return anchor.anchor_ms(step, args)


def time_asrkit(bench, name, dtype, threads):
    flt = f"^ctc_{dtype}/{name}/.*/threads:{threads}/"
    out = subprocess.run([bench, f"--benchmark_filter={flt}", "--benchmark_format=json",
                          "--benchmark_repetitions=3", "--benchmark_report_aggregates_only=true"],
                         check=True, capture_output=True, text=True).stdout
    result = {}
    for b in json.loads(out)["benchmarks"]:
        if b.get("aggregate_name") == "median":
            kind = b["run_name"].split("/")[2]
            result[kind] = b["real_time"]  # ms (the benchmarks use kMillisecond)
    return result


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build_dir")
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--dtypes", nargs="+", default=["f32", "f64"])
    ap.add_argument("--workloads", nargs="+", default=list(WORKLOADS))
    anchor.add_statistic_arguments(ap, reps=7)
    ap.add_argument("--markdown", help="write the table here too")
    args = ap.parse_args()
    bench = os.path.join(args.build_dir, "bench", "bench_ctc")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([bench, f"--dump={tmp}"], check=True)
        header = "| workload | dtype | threads | input | asrkit ms | PyTorch ms | speed-up |"
        print(header)
        print("|---|---|---|---|---|---|---|")
        for name in args.workloads:
            T, L, V, B = WORKLOADS[name]
            targets = torch.from_numpy(np.fromfile(os.path.join(tmp, f"{name}_targets.bin"),
                                                   dtype=np.int32).reshape(B, L).astype(np.int64))
            for dtype in args.dtypes:
                np_dtype = np.float32 if dtype == "f32" else np.float64
                logits = torch.from_numpy(np.fromfile(os.path.join(tmp, f"{name}_{dtype}_logits.bin"),
                                                      dtype=np_dtype).reshape(T, B, V))
                for threads in args.threads:
                    ours = time_asrkit(bench, name, dtype, threads)
                    torch.set_num_threads(threads)
                    for kind in ("log_probs", "logits"):
                        theirs = time_torch(logits, targets, None, kind, args)
                        row = (f"| {name} (T={T} L={L} V={V} B={B}) | {dtype} | {threads} | {kind} | "
                               f"{ours[kind]:.2f} | {theirs:.2f} | {theirs / ours[kind]:.1f}x |")
                        print(row, flush=True)
                        rows.append(row)
    anchor.append_markdown(args.markdown, [header, "|---|---|---|---|---|---|---|"] + rows)


if __name__ == "__main__":
    main()
