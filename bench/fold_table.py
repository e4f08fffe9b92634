#!/usr/bin/env python3
"""Folded FusionFormer vs unfolded vs the LayerNorm Conformer (bench_fold's `compare_*` runs).

bench_fold times the three models interleaved in one loop (same machine state for all three)
and reports a_ms (Conformer), b_ms (FusionFormer with its BNs), c_ms (folded) and the ratios
c/b, c/a. This script runs it with repetitions and prints the medians as a Markdown table.

    fold_table.py BUILD_DIR [--reps 3] [--markdown OUT.md]
"""
import argparse
import json
import os
import statistics
import subprocess


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build_dir")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--markdown")
    args = ap.parse_args()
    exe = os.path.join(args.build_dir, "bench", "bench_fold")
    out = subprocess.run([exe, "--benchmark_filter=^compare", "--benchmark_format=json",
                          f"--benchmark_repetitions={args.reps}"], capture_output=True, text=True, check=True)
    runs = {}
    for b in json.loads(out.stdout)["benchmarks"]:
        if b.get("run_type") != "iteration":
            continue
        runs.setdefault(b["run_name"], []).append(b)
    header = ("| workload | threads | Conformer ms | FusionFormer ms | folded ms | folded / unfolded | "
              "folded / Conformer |")
    lines = [header, "|" + "---|" * 7]
    for name, bs in runs.items():
        med = {k: statistics.median(b[k] for b in bs)
               for k in ("a_ms", "b_ms", "c_ms", "folded_vs_unfolded", "folded_vs_conformer", "threads")}
        workload = name.split("/")[0].replace("compare_", "")
        lines.append(f"| {workload} | {int(med['threads'])} | {med['a_ms']:.2f} | {med['b_ms']:.2f} | "
                     f"{med['c_ms']:.2f} | {med['folded_vs_unfolded']:.3f} | {med['folded_vs_conformer']:.3f} |")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.markdown:
        with open(args.markdown, "a") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
