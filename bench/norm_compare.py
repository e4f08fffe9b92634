#!/usr/bin/env python3
"""asrkit's normalisation layers vs PyTorch CPU on identical shapes, in the same run; prints ratios.

    norm_compare.py BUILD_DIR [--threads 1 2] [--reps 15] [--rounds 1] [--markdown OUT.md]

x and dy are float32 [T=500, B=8, F=1024] (bench/bench_norm.cpp). Anchors (torch.set_num_threads =
asrkit's, the CPU's widest ATEN_CPU_CAPABILITY, OpenMP OpenBLAS; see anchor.py):
  batch_norm_train_fwd:     BatchNorm1d(1024) in train mode on x.view(-1, 1024) (batch statistics,
                            running-stat update)
  batch_norm_train_fwd_bwd: the same + backward (input, weight and bias gradients)
  batch_norm_train_fwd_borrowed / _fwd_bwd_borrowed: the same PyTorch calls; asrkit's forward_train
                            gets asrkit::borrow(x) and keeps the view, as autograd keeps a reference
                            to x, instead of copying it
  batch_norm_train_fwd_chained / _fwd_bwd_chained: the same, each output the next call's input (a
                            freshly written x, as in a model); asrkit's forward_train takes it as a
                            moved tensor and keeps it as its cache instead of copying a view
  batch_norm_infer:         BatchNorm1d in eval mode (no autograd)
  sequence_batch_norm_fwd_bwd: what a PyTorch user writes for masked (valid-frame) statistics:
                            y = zeros; y[mask] = bn(x[mask]), + backward (same lengths as asrkit)
  layer_norm_fwd / _fwd_bwd: LayerNorm(1024) on x, (+ backward)
  layer_norm_fwd_bwd_borrowed / _chained: the same PyTorch call (chained: each output the next
                            call's input); asrkit's forward_train gets asrkit::borrow(x) / the
                            moved output, as BatchNorm's rows
Both sides are timed with Google Benchmark's statistic: per repetition, the mean time per call of
a loop of at least 0.5 s; the median of 3 repetitions (asrkit: bench_norm; PyTorch:
anchor.loop_mean_ms). --per-call-median times PyTorch as the median of --reps single calls instead
(the statistic before 2026-11-24: on this noisy machine a mean over a loop includes the slow calls
a median of single calls skips, so that mix favoured PyTorch). Speed-up = PyTorch ms / asrkit ms
(> 1: asrkit is faster).
--rounds N measures each row N times, alternating asrkit and PyTorch, and prints the median of each
side's times and the median and range of the N per-round speed-ups: on a noisy machine one pair
of timings can be off by 30% either way (docs/norms.md).
--cpu compares process CPU time instead of wall time (both sides): on a loaded machine wall time
mostly measures the scheduler; CPU time is meaningful for one thread only.
--bind runs both processes with OMP_PROC_BIND=close OMP_PLACES=cores: each OpenMP thread stays on
its core. Unbound, the scheduler moves threads between this 2-core VM's cores between calls, and
a pass then reads rows another core wrote (docs/norms.md: on two threads asrkit's BatchNorm
training forward of a copied view went 0.65-0.79x -> 1.16-1.25x PyTorch, PyTorch gained less).
--no-trim runs both processes with MALLOC_TRIM_THRESHOLD_ / MALLOC_MMAP_THRESHOLD_ = 512 MiB: glibc
then keeps freed 16 MiB blocks instead of returning them to the OS, so neither side pays page
faults (kernel page zeroing) for every new output tensor; a fwd + bwd loop otherwise mostly
measures glibc's trimming heuristic (see docs/norms.md, Speed).
"""
import time
import argparse
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import anchor  # noqa: E402

if "--bind" in sys.argv:  # before the anchor re-executes itself: libgomp reads these at start-up
    os.environ["OMP_PROC_BIND"], os.environ["OMP_PLACES"] = "close", "cores"
# Bound, PyTorch's first parallel region pins this thread to one core, and a child inherits that
# mask: bench_norm is started with the CPUs this process had before torch ran.
CPUS = os.sched_getaffinity(0)
if "--no-trim" in sys.argv:  # before the anchor re-executes itself: glibc reads these at start-up
    os.environ["MALLOC_TRIM_THRESHOLD_"] = os.environ["MALLOC_MMAP_THRESHOLD_"] = str(512 << 20)
anchor.use_best_environment()

import torch  # noqa: E402

T, B, F = 500, 8, 1024
OPS = ["batch_norm_train_fwd", "batch_norm_train_fwd_bwd", "batch_norm_train_fwd_borrowed",
       "batch_norm_train_fwd_bwd_borrowed", "batch_norm_train_fwd_chained",
       "batch_norm_train_fwd_bwd_chained", "batch_norm_infer", "sequence_batch_norm_fwd_bwd",
       "layer_norm_fwd", "layer_norm_fwd_bwd", "layer_norm_fwd_bwd_borrowed",
       "layer_norm_fwd_bwd_chained"]


def lengths():
    return [T - 60 * b for b in range(B)]  # as bench_norm.cpp


def torch_workloads():
    gen = torch.Generator().manual_seed(1)
    x = 2 * torch.randn(T, B, F, generator=gen) + 0.5
    dy = torch.randn(T, B, F, generator=gen)
    bn = torch.nn.BatchNorm1d(F)
    bn_eval = torch.nn.BatchNorm1d(F).eval()
    ln = torch.nn.LayerNorm(F)
    mask = torch.arange(T).unsqueeze(1) < torch.tensor(lengths()).unsqueeze(0)  # [T, B]

    def bn_fwd():
        with torch.no_grad():
            return bn(x.view(-1, F))

    def bn_fwd_bwd():
        xl = x.detach().requires_grad_(True)
        bn.zero_grad()
        bn(xl.view(-1, F)).backward(dy.view(-1, F))
        return xl.grad

    def bn_infer():
        with torch.no_grad():
            return bn_eval(x.view(-1, F))

    def seq_bn_fwd_bwd():
        xl = x.detach().requires_grad_(True)
        bn.zero_grad()
        y = torch.zeros_like(xl)
        y[mask] = bn(xl[mask])
        y.backward(dy)
        return xl.grad

    def ln_fwd():
        with torch.no_grad():
            return ln(x)

    def ln_fwd_bwd():
        xl = x.detach().requires_grad_(True)
        ln.zero_grad()
        ln(xl).backward(dy)
        return xl.grad

    carry = [x.view(-1, F).clone()]

    def bn_fwd_chained():
        with torch.no_grad():
            carry[0] = bn(carry[0])
        return carry[0]

    def bn_fwd_bwd_chained():
        xl = carry[0].detach().requires_grad_(True)
        bn.zero_grad()
        y = bn(xl)
        y.backward(dy.view(-1, F))
        carry[0] = y.detach()
        return xl.grad

    ln_carry = [x.clone()]

    def ln_fwd_bwd_chained():
        xl = ln_carry[0].detach().requires_grad_(True)
        ln.zero_grad()
        y = ln(xl)
        y.backward(dy)
        ln_carry[0] = y.detach()
        return xl.grad

    return dict(zip(OPS, [bn_fwd, bn_fwd_bwd, bn_fwd, bn_fwd_bwd, bn_fwd_chained,
                          bn_fwd_bwd_chained, bn_infer, seq_bn_fwd_bwd, ln_fwd, ln_fwd_bwd, ln_fwd_bwd,
                          ln_fwd_bwd_chained]))


def median_cpu_ms(fn, reps):
    fn()
    times = []
    for _ in range(reps):
        t0 = time.process_time()
        fn()
        times.append(time.process_time() - t0)
    times.sort()
    return 1000 * times[len(times) // 2]


def time_asrkit(bench, op, threads, cpu=False):
    out = subprocess.run([bench, f"--benchmark_filter=^norm/{op}/threads:{threads}/",
                          "--benchmark_format=json", "--benchmark_repetitions=3",
                          "--benchmark_report_aggregates_only=true"],
                         check=True, capture_output=True, text=True,
                         preexec_fn=lambda: os.sched_setaffinity(0, CPUS)).stdout
    for b in json.loads(out)["benchmarks"]:
        if b.get("aggregate_name") == "median":
            return b["cpu_time" if cpu else "real_time"]  # ms
    raise RuntimeError(f"no result for {op}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build_dir")
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--ops", nargs="+", default=OPS)
    ap.add_argument("--reps", type=int, default=15)
    ap.add_argument("--rounds", type=int, default=1, help="alternating asrkit / PyTorch rounds per row")
    ap.add_argument("--per-call-median", action="store_true",
                    help="PyTorch: median of --reps single calls instead of Google Benchmark's statistic")
    ap.add_argument("--markdown", help="append the table here too")
    ap.add_argument("--cpu", action="store_true", help="process CPU time instead of wall time")
    ap.add_argument("--no-trim", action="store_true", help="glibc keeps freed memory (both sides)")
    ap.add_argument("--bind", action="store_true", help="OpenMP threads bound to cores (both sides)")
    args = ap.parse_args()
    bench = os.path.join(args.build_dir, "bench", "bench_norm")
    workloads = torch_workloads()

    def theirs_ms(op):
        if args.cpu:
            return median_cpu_ms(workloads[op], args.reps)
        if args.per_call_median:
            return anchor.median_ms(workloads[op], args.reps)
        return anchor.loop_mean_ms(workloads[op])

    anchor.alternating_table(args.threads, args.ops, args.rounds,
                             lambda op, threads: time_asrkit(bench, op, threads, args.cpu), theirs_ms,
                             label=lambda op: f"{op} [{T}, {B}, {F}] f32",
                             set_threads=torch.set_num_threads, markdown=args.markdown)


if __name__ == "__main__":
    main()
