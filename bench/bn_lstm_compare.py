#!/usr/bin/env python3
"""BN-LSTM vs asrkit's plain LSTM of the same size (the cost of recurrent batch normalisation).

    bn_lstm_compare.py BUILD_DIR [--threads 1 2] [--reps 3] [--torch-reps 3] [--markdown OUT.md]

Runs BUILD_DIR/bench/bench_bn_lstm (float, H = 800, T = 500, B = 8, unidirectional; forward and
forward + backward) and prints, per workload and thread count, the median times of asrkit's LSTM,
BN-LSTM (per-step input BN) and BN-LSTM with the sequence-wise input BN ("BN-e*"), the ratio
BN-LSTM / LSTM (target <= 1.3) and, for context, torch.nn.LSTM on the same shapes (PyTorch has
no BN-LSTM). The residual LSTM (d_cell 1024, d_out 512, input 512) is timed on its own.
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

T, B, H = 500, 8, 800


def torch_lstm(backward):
    torch.manual_seed(0)
    lstm = torch.nn.LSTM(H, H)
    x = torch.rand(T, B, H) * 2 - 1
    dy = torch.rand(T, B, H) * 2 - 1

    def fwd():
        with torch.no_grad():
            return lstm(x)[0]

    def fwdbwd():
        xi = x.detach().requires_grad_(True)
        lstm.zero_grad(set_to_none=True)
        lstm(xi)[0].backward(dy)
        return xi.grad

    return fwdbwd if backward else fwd


def time_asrkit(bench, threads, reps):
    out = subprocess.run([bench, f"--benchmark_filter=/threads:{threads}/", "--benchmark_format=json",
                          f"--benchmark_repetitions={reps}", "--benchmark_report_aggregates_only=true"],
                         check=True, capture_output=True, text=True).stdout
    result = {}
    for b in json.loads(out)["benchmarks"]:
        if b.get("aggregate_name") == "median" or reps == 1:
            result[b["run_name"].split("/threads:")[0]] = b["real_time"]  # ms
    return result


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build_dir")
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--torch-reps", type=int, default=3)
    ap.add_argument("--markdown", help="append the table here too")
    args = ap.parse_args()
    bench = os.path.join(args.build_dir, "bench", "bench_bn_lstm")
    header = ("| pass | threads | LSTM ms | BN-LSTM ms | BN-LSTM / LSTM | BN-e* ms | BN-e* / LSTM "
              "| torch LSTM ms | residual LSTM ms |")
    rule = "|---|---|---|---|---|---|---|---|---|"
    print(header)
    print(rule)
    rows = []
    for threads in args.threads:
        ours = time_asrkit(bench, threads, args.reps)
        torch.set_num_threads(threads)
        for p in ("fwd", "fwdbwd"):
            theirs = anchor.median_ms(torch_lstm(p == "fwdbwd"), args.torch_reps)
            lstm, bn, seq, res = (ours[f"{n}/{p}"] for n in ("lstm", "bnlstm", "bnlstm_seq", "reslstm"))
            row = (f"| {p} | {threads} | {lstm:.0f} | {bn:.0f} | {bn / lstm:.2f}x | {seq:.0f} | "
                   f"{seq / lstm:.2f}x | {theirs:.0f} | {res:.0f} |")
            print(row, flush=True)
            rows.append(row)
    anchor.append_markdown(args.markdown, [header, rule] + rows)


if __name__ == "__main__":
    main()
