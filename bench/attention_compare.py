#!/usr/bin/env python3
"""asrkit's attention layers vs PyTorch CPU on identical shapes, in the same run; prints ratios.

    attention_compare.py BUILD_DIR [--threads 1 2] [--reps 5] [--per-call-median] [--markdown OUT.md]

Workloads (float32, D = 256, 4 heads, time-major x [T, B, 256], every frame valid;
bench/bench_attention.cpp), T in {250, 500}, B in {1, 8}:
  mha   torch.nn.MultiheadAttention(256, 4) in eval mode under no_grad, need_weights=False
        (time-major input, so PyTorch 1.13 takes its general path, as a Transformer encoder
        with batch_first=False does)
  rel   the ESPnet-style RelPositionAttention of tests/reference/attention_reference.py
        (Transformer-XL scores with rel_shift), key-padding mask [B, 1, T] as ESPnet passes it
  */fwdbwd (T = 250, B = 8): training forward + backward with the input requiring grad
PyTorch runs at its best (anchor.use_best_environment) with torch.set_num_threads equal to
asrkit's thread count. The speed-up column is PyTorch time / asrkit time (> 1: asrkit faster).
"""
import argparse
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "tests", "reference"))
import anchor  # noqa: E402

anchor.use_best_environment()

import torch  # noqa: E402

from attention_reference import RelPositionAttention, rel_pos_table  # noqa: E402

D, HEADS = 256, 4


def flops(steps, batch, relative):
    f = 4 * 2 * steps * batch * D * D + 2 * 2 * batch * steps * steps * D
    if relative:
        f += 2 * (2 * steps - 1) * D * D + 2 * batch * steps * steps * D
    return f * 1e-9


def torch_workloads():
    """name -> (callable, GFLOP per call)."""
    torch.manual_seed(0)
    mha = torch.nn.MultiheadAttention(D, HEADS)
    rel = RelPositionAttention(D, HEADS, False)
    work = {}
    for steps in (250, 500):
        pos = rel_pos_table(steps, D).float()
        for batch in (1, 8):
            x = torch.rand(steps, batch, D) * 2 - 1
            xb = x.transpose(0, 1).contiguous()  # ESPnet is batch-first
            allowed = torch.ones(batch, 1, steps, dtype=torch.bool)
            valid = torch.ones(batch, steps, dtype=torch.bool)
            shape = f"_T{steps}_B{batch}"

            def m_fwd(x=x):
                mha.eval()
                with torch.no_grad():
                    return mha(x, x, x, need_weights=False)[0]

            def r_fwd(xb=xb, pos=pos, allowed=allowed, valid=valid):
                rel.eval()
                with torch.no_grad():
                    return rel(xb, pos, allowed, valid)

            work["mha" + shape + "/fwd"] = (m_fwd, flops(steps, batch, False))
            work["rel" + shape + "/fwd"] = (r_fwd, flops(steps, batch, True))
            if steps == 250 and batch == 8:
                dy = torch.rand(steps, batch, D) * 2 - 1

                def m_fwdbwd(x=x, dy=dy):
                    mha.train()
                    xi = x.detach().requires_grad_(True)
                    mha.zero_grad(set_to_none=True)
                    mha(xi, xi, xi, need_weights=False)[0].backward(dy)
                    return xi.grad

                def r_fwdbwd(xb=xb, dy=dy.transpose(0, 1), pos=pos, allowed=allowed, valid=valid):
                    rel.train()
                    xi = xb.detach().requires_grad_(True)
                    rel.zero_grad(set_to_none=True)
                    rel(xi, pos, allowed, valid).backward(dy)
                    return xi.grad

                work["mha" + shape + "/fwdbwd"] = (m_fwdbwd, 3 * flops(steps, batch, False))
                work["rel" + shape + "/fwdbwd"] = (r_fwdbwd, 3 * flops(steps, batch, True))
    return work


def time_asrkit(bench, threads, reps):
    out = subprocess.run([bench, f"--benchmark_filter=/threads:{threads}/", "--benchmark_format=json",
                          f"--benchmark_repetitions={reps}", "--benchmark_report_aggregates_only=true"],
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
    bench = os.path.join(args.build_dir, "bench", "bench_attention")
    work = torch_workloads()
    header = ("| workload | threads | asrkit ms | asrkit GFLOP/s | PyTorch ms | PyTorch GFLOP/s "
              "| speed-up |")
    rule = "|---|---|---|---|---|---|---|"
    print(header)
    print(rule)
    rows = []
    for threads in args.threads:
        ours = time_asrkit(bench, threads, 3)
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
