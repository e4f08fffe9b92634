"""Shared by the anchor comparison scripts: run the anchor at its best, time it the same way.

`use_best_environment()` must run before torch is imported: it re-executes the script with
ATEN_CPU_CAPABILITY set to the widest kernels this CPU runs (avx512 where /proc/cpuinfo lists
avx512f, bw, vl and dq, else avx2; forcing avx512 on an AVX2-only CPU kills torch with SIGILL) and
the OpenMP build of OpenBLAS (the default pthread build oversubscribes at 2 threads). The caller
sets torch's thread count to asrkit's.
"""
import os
import statistics
import sys
import time


def cpu_capability():
    """PyTorch's widest CPU kernel set this CPU can run: "avx512", "avx2" or "default"."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line.split(":", 1)[1].split() for line in f if line.startswith("flags")), [])
    except OSError:
        flags = []
    if {"avx512f", "avx512bw", "avx512vl", "avx512dq"} <= set(flags):
        return "avx512"
    if {"avx2", "fma"} <= set(flags):
        return "avx2"
    return "default"


def use_best_environment():
    if os.environ.get("ASRKIT_ANCHOR_ENV") == "1":
        return
    env = dict(os.environ, ASRKIT_ANCHOR_ENV="1", ATEN_CPU_CAPABILITY=cpu_capability())
    env["LD_LIBRARY_PATH"] = "/usr/lib/x86_64-linux-gnu/openblas-openmp:" + env.get("LD_LIBRARY_PATH", "")
    os.execve(sys.executable, [sys.executable] + sys.argv, env)


def loop_mean_ms(fn, min_time=0.5, repetitions=3):
    """Google Benchmark's statistic for fn, in ms: per repetition, fn() in a loop for at least
    min_time seconds and the mean time per call; the median over the repetitions. What
    bench_*.cpp report for asrkit with --benchmark_repetitions=3 (aggregate "median")."""
    fn()
    means = []
    for _ in range(repetitions):
        calls, t0 = 0, time.perf_counter()
        while True:
            fn()
            calls += 1
            elapsed = time.perf_counter() - t0
            if elapsed >= min_time:
                break
        means.append(elapsed / calls)
    means.sort()
    return 1000 * means[len(means) // 2]


def add_statistic_arguments(ap, reps):
    """--reps and --per-call-median, the options of anchor_ms."""
    ap.add_argument("--reps", type=int, default=reps)
    ap.add_argument("--per-call-median", action="store_true",
                    help="time the anchor as the median of --reps single calls instead of Google "
                         "Benchmark's statistic (loop_mean_ms)")


def anchor_ms(fn, args):
    """The anchor's time for fn in ms: loop_mean_ms, the statistic of asrkit's rows (the compare
    scripts run bench_* with default min_time and --benchmark_repetitions=3, aggregate median),
    or with args.per_call_median the median of args.reps single calls (a per-call median and a
    loop mean differ on short calls: the loop keeps the caches and the allocator warm)."""
    return median_ms(fn, args.reps) if args.per_call_median else loop_mean_ms(fn)


def median_ms(fn, reps):
    """Median wall time of fn() in ms over `reps` runs, after one warm-up run."""
    fn()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    times.sort()
    mid = len(times) // 2
    return 1000 * (times[mid] if len(times) % 2 else 0.5 * (times[mid - 1] + times[mid]))


def append_markdown(path, lines):
    """Appends a table (its header, rule and rows as `lines`) and a blank line to the file at path;
    nothing when path is empty (the scripts' --markdown)."""
    if path:
        with open(path, "a") as f:
            f.write("\n".join(lines) + "\n\n")


def round_cells(ours, theirs):
    """The 'asrkit ms | PyTorch ms | speed-up |' cells of a row from alternating rounds' times
    (ms): the median of each side, the median of the per-round ratios and, for more than one
    round, a 'range' cell with the smallest and largest ratio."""
    ratios = sorted(t / o for o, t in zip(ours, theirs))
    cells = (f" {statistics.median(ours):.2f} | {statistics.median(theirs):.2f} | "
             f"{statistics.median(ratios):.2f}x |")
    if len(ratios) > 1:
        cells += f" {ratios[0]:.2f}-{ratios[-1]:.2f}x |"
    return cells


def alternating_table(threads_list, ops, rounds, ours_ms, theirs_ms, label, set_threads,
                      markdown=None):
    """Prints (and appends to `markdown`) the table of asrkit against the anchor, a row per
    thread count and op: for each, `rounds` rounds of ours_ms(op, threads) then theirs_ms(op),
    alternating so that machine noise hits both alike (round_cells). set_threads(n) sets the
    anchor's thread count before each thread count's rows; label(op) names the row."""
    spread = rounds > 1
    header = "| layer | threads | asrkit ms | PyTorch ms | speed-up |" + (" range |" if spread else "")
    rule = "|---|---|---|---|---|" + ("---|" if spread else "")
    print(header)
    print(rule)
    rows = []
    for threads in threads_list:
        set_threads(threads)
        for op in ops:
            ours, theirs = [], []
            for _ in range(rounds):
                ours.append(ours_ms(op, threads))
                theirs.append(theirs_ms(op))
            row = f"| {label(op)} | {threads} |" + round_cells(ours, theirs)
            print(row, flush=True)
            rows.append(row)
    append_markdown(markdown, [header, rule] + rows)
