"""Shared by the anchor comparison scripts: run the anchor at its best, time it the same way.

`use_best_environment()` must run before torch is imported: it re-executes the script with
ATEN_CPU_CAPABILITY=avx512 and the OpenMP build of OpenBLAS (the default pthread build
oversubscribes at 2 threads). The caller sets torch's thread count to asrkit's.
"""
import os
import sys
import time


def use_best_environment():
    if os.environ.get("ASRKIT_ANCHOR_ENV") == "1":
        return
    env = dict(os.environ, ASRKIT_ANCHOR_ENV="1", ATEN_CPU_CAPABILITY="avx512")
    env["LD_LIBRARY_PATH"] = "/usr/lib/x86_64-linux-gnu/openblas-openmp:" + env.get("LD_LIBRARY_PATH", "")
    os.execve(sys.executable, [sys.executable] + sys.argv, env)


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
