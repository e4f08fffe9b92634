#!/usr/bin/env python3
"""asrkit's ConformerBlock / FusionFormerBlock forward vs the torch reference modules
(tests/reference/conformer_reference.py) on identical weights and inputs; prints ratios.

    conformer_compare.py BUILD_DIR [--threads 1 2] [--reps 5] [--per-call-median] [--markdown OUT.md]

Workloads (float32 inference, bench/bench_conformer.cpp): one block, D = 256, 4 heads, FFN 1024,
kernel 15, T = 250, B = 1 and 8, every frame valid. The torch modules are ours (ESPnet semantics;
eval mode, torch.no_grad); their masked BatchNorm takes the plain BatchNorm path when every frame
is valid, so PyTorch is not charged for boolean indexing. The weights are written once by this
script and loaded by the benchmark (ASRKIT_CONFORMER_WEIGHTS_DIR). PyTorch runs at its best
(anchor.use_best_environment) with torch.set_num_threads equal to asrkit's thread count. The
speed-up column is PyTorch time / asrkit time (> 1: asrkit faster).
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "tests", "reference"))
import anchor  # noqa: E402

anchor.use_best_environment()

import torch  # noqa: E402

import conformer_reference as ref  # noqa: E402
import st_io  # noqa: E402

D, HEADS, FF, KERNEL, T = 256, 4, 1024, 15, 250


def fast_masked_bn(self, x, valid):
    """MaskedBatchNorm on an all-valid batch is plain BatchNorm over the [B·T, D] rows."""
    if bool(valid.all()):
        return torch.nn.BatchNorm1d.forward(self, x.reshape(-1, x.shape[-1])).view_as(x)
    return ORIGINAL_BN(self, x, valid)


ORIGINAL_BN = ref.MaskedBatchNorm.forward
ref.MaskedBatchNorm.forward = fast_masked_bn


def torch_workloads(weights_dir):
    """name -> callable; also writes each block's weights for the C++ side."""
    work = {}
    for i, (name, fusion) in enumerate((("conformer", False), ("fusionformer", True))):
        torch.manual_seed(10 + i)
        block = ref.ConformerBlock(D, fusion, HEADS, FF, KERNEL).float().eval()
        st_io.save(os.path.join(weights_dir, name + ".safetensors"),
                   {k: v.numpy() for k, v in block.state_dict().items() if v.is_floating_point()})
        pos = ref.rel_pos_table(T, D).float()
        for b in (1, 8):
            x = torch.rand(b, T, D) * 2 - 1
            valid = torch.ones(b, T, dtype=torch.bool)

            def fwd(block=block, x=x, pos=pos, valid=valid):
                with torch.no_grad():
                    return block(x, pos, valid)

            work[f"{name}_b{b}/fwd"] = fwd
    return work


def time_asrkit(bench, threads, weights_dir):
    env = dict(os.environ, ASRKIT_CONFORMER_WEIGHTS_DIR=weights_dir)
    out = subprocess.run([bench, f"--benchmark_filter=/threads:{threads}/", "--benchmark_format=json",
                          "--benchmark_repetitions=3", "--benchmark_report_aggregates_only=true"],
                         check=True, capture_output=True, text=True, env=env).stdout
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
    bench = os.path.join(args.build_dir, "bench", "bench_conformer")
    header = "| workload | threads | asrkit ms | PyTorch ms | speed-up |"
    rule = "|---|---|---|---|---|"
    print(header)
    print(rule)
    rows = []
    with tempfile.TemporaryDirectory() as weights_dir:
        work = torch_workloads(weights_dir)
        for threads in args.threads:
            ours = time_asrkit(bench, threads, weights_dir)
            torch.set_num_threads(threads)
            for name, fn in work.items():
                theirs = anchor.anchor_ms(fn, args)
                mine = ours[name]
                row = f"| {name} | {threads} | {mine:.2f} | {theirs:.2f} | {theirs / mine:.2f}x |"
                print(row, flush=True)
                rows.append(row)
    anchor.append_markdown(args.markdown, [header, rule] + rows)


if __name__ == "__main__":
    main()
