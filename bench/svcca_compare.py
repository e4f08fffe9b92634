#!/usr/bin/env python3
"""asrkit's SVCCA vs numpy on identical inputs, in the same run; prints seconds and ratios.

    svcca_compare.py BUILD_DIR [--n 100000] [--d 2048] [--threads 1 2] [--reps 1]
                     [--work DIR] [--skip-raw-svd] [--markdown OUT.md]

Data (float32, written once to WORK/svcca_<case>.safetensors and read by bench/bench_svcca.cpp,
so both sides see the same bytes):
  lowrank   realistic activations: a latent of rank 768 with a decaying spectrum (0.993^i), half of
            it shared by the two layers, mixed into D neurons, plus noise (0.05): the 99% rule
            keeps a few hundred directions, and asrkit projects before the cross-covariance;
  fullrank  independent Gaussian neurons: nearly every direction kept (full D x D cross term).
numpy runs with the OpenMP build of OpenBLAS and OMP_NUM_THREADS = asrkit's thread count (a fresh
process per thread count), in two variants, reported separately:
  numpy_svd  Google's pipeline as users run it (SVCCA tutorial + cca_core): np.linalg.svd of the
             centred raw [D, N] activations, keep 99% of sum(s^2), reduced = s_k V_k^T, then
             cca_core (np.cov of the joint reduced matrix in float64, pinv, eigh, svd);
  numpy_cov  numpy doing asrkit's covariance algorithm as well as it can: float32 centring and
             X^T X (OpenBLAS), float32 eigh of the covariance, float32 projection and cross
             product, then the k x k CCA in float64.
Ratio = numpy seconds / asrkit seconds (> 1: asrkit is faster). asrkit's time is Google
Benchmark's median of --reps runs, numpy's the median of --reps runs (after no warm-up: each run
is seconds long). The SVCCA means of all three are printed too (they must agree).
"""
import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "reference"))
CASES = ["lowrank", "fullrank"]


def make_data(work, n, d):
    import st_io
    os.makedirs(work, exist_ok=True)
    rng = np.random.default_rng(20240611)
    for case in CASES:
        path = os.path.join(work, f"svcca_{case}.safetensors")
        if os.path.exists(path):
            continue
        if case == "fullrank":
            x = rng.standard_normal((n, d), dtype=np.float32)
            y = rng.standard_normal((n, d), dtype=np.float32)
        else:
            rank = min(768, d)
            z = rng.standard_normal((n, rank), dtype=np.float32) * (0.993 ** np.arange(rank)).astype(np.float32)
            z2 = z.copy()
            z2[:, rank // 2:] = rng.standard_normal((n, rank - rank // 2), dtype=np.float32) * z[:, rank // 2:].std(0)
            x = z @ rng.standard_normal((rank, d), dtype=np.float32)
            x += 0.05 * rng.standard_normal((n, d), dtype=np.float32)
            y = z2 @ rng.standard_normal((rank, d), dtype=np.float32)
            y += 0.05 * rng.standard_normal((n, d), dtype=np.float32)
        st_io.save(path, {"x": x, "y": y})
        del x, y


def load(work, case):
    """x, y as float32 numpy arrays (our safetensors layout: header, then x then y)."""
    path = os.path.join(work, f"svcca_{case}.safetensors")
    with open(path, "rb") as f:
        size = int.from_bytes(f.read(8), "little")
        header = json.loads(f.read(size))
    base = 8 + size
    out = []
    for name in ("x", "y"):
        h = header[name]
        count = int(np.prod(h["shape"]))
        arr = np.fromfile(path, dtype=np.float32, count=count, offset=base + h["data_offsets"][0])
        out.append(arr.reshape(h["shape"]))
    return out


# ---- numpy variants --------------------------------------------------------------------------
def cca_core_cov(sxx, sxy, syy, epsilon=1e-10):
    """cca_core steps 2-7 on covariance blocks (float64); returns rho."""
    xmax, ymax = np.max(np.abs(sxx)), np.max(np.abs(syy))
    sxx, syy, sxy = sxx / xmax, syy / ymax, sxy / np.sqrt(xmax * ymax)
    xi, yi = np.abs(np.diag(sxx)) >= epsilon, np.abs(np.diag(syy)) >= epsilon
    sxx, syy, sxy = sxx[xi][:, xi], syy[yi][:, yi], sxy[xi][:, yi]

    def invsqrt(s):
        w, v = np.linalg.eigh(np.linalg.pinv(s + epsilon * np.eye(len(s))))
        return (v * np.sqrt(np.maximum(w, 0))) @ v.T

    return np.abs(np.linalg.svd(invsqrt(sxx) @ sxy @ invsqrt(syy), compute_uv=False))


def keep99(s2):
    return int(np.argmax(np.cumsum(s2) / np.sum(s2) >= 0.99)) + 1


def numpy_svd(x, y):
    reduced = []
    for a in (x, y):
        acts = a.T  # neurons x data points, as the tutorial holds them
        c = acts - acts.mean(axis=1, keepdims=True)
        _, s, vt = np.linalg.svd(c, full_matrices=False)
        k = keep99(s.astype(np.float64) ** 2)
        reduced.append(s[:k, None] * vt[:k])
        del c, vt
    k1 = reduced[0].shape[0]
    sigma = np.cov(reduced[0], reduced[1])  # float64, as cca_core
    return float(np.mean(cca_core_cov(sigma[:k1, :k1], sigma[:k1, k1:], sigma[k1:, k1:]))), reduced[0].shape[0], reduced[1].shape[0]


def numpy_cov(x, y):
    n = x.shape[0]
    proj, red = [], []
    for a in (x, y):
        c = a - a.mean(axis=0, dtype=np.float64).astype(np.float32)
        cov = c.T @ c  # float32 (OpenBLAS), divided below
        w, v = np.linalg.eigh(cov)
        w, v = w[::-1].astype(np.float64), v[:, ::-1]
        k = keep99(np.maximum(w, 0))
        proj.append(c @ np.ascontiguousarray(v[:, :k]))
        red.append(np.diag(w[:k]) / (n - 1))
        del c, cov
    cross = (proj[0].T @ proj[1]).astype(np.float64) / (n - 1)
    return float(np.mean(cca_core_cov(red[0], cross, red[1]))), red[0].shape[0], red[1].shape[0]


def numpy_worker(work, case, variant, reps):
    """Runs in a fresh process whose OMP_NUM_THREADS / LD_LIBRARY_PATH are already set."""
    x, y = load(work, case)
    fn = numpy_svd if variant == "numpy_svd" else numpy_cov
    times, result = [], None
    for _ in range(reps):
        t0 = time.perf_counter()
        result = fn(x, y)
        times.append(time.perf_counter() - t0)
    times.sort()
    print(json.dumps({"seconds": times[len(times) // 2], "mean": result[0], "kept": result[1:]}))


def time_numpy(work, case, variant, threads, reps):
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), OPENBLAS_NUM_THREADS=str(threads))
    env["LD_LIBRARY_PATH"] = "/usr/lib/x86_64-linux-gnu/openblas-openmp:" + env.get("LD_LIBRARY_PATH", "")
    out = subprocess.run([sys.executable, os.path.abspath(__file__), "--worker", work, case, variant, str(reps)],
                         check=True, capture_output=True, text=True, env=env).stdout
    return json.loads(out.strip().splitlines()[-1])


def time_asrkit(bench, work, case, threads, reps):
    env = dict(os.environ, ASRKIT_SVCCA_DATA=work)
    out = subprocess.run([bench, f"--benchmark_filter=^svcca/{case}/threads:{threads}/", "--benchmark_format=json",
                          f"--benchmark_repetitions={reps}"], check=True, capture_output=True, text=True,
                         env=env).stdout
    runs = [b for b in json.loads(out)["benchmarks"] if b.get("run_type") == "iteration"]
    secs = sorted(b["real_time"] / 1000 for b in runs)
    return {"seconds": secs[len(secs) // 2], "mean": runs[0]["mean"], "kept": [runs[0]["kept_x"], runs[0]["kept_y"]]}


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        numpy_worker(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]))
        return
    ap = argparse.ArgumentParser()
    ap.add_argument("build_dir")
    ap.add_argument("--n", type=int, default=100000)
    ap.add_argument("--d", type=int, default=2048)
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--reps", type=int, default=1)
    ap.add_argument("--cases", nargs="+", default=CASES)
    ap.add_argument("--work", default=None, help="data directory (default /tmp/asrkit_svcca_N_D)")
    ap.add_argument("--skip-raw-svd", action="store_true", help="leave out numpy_svd (minutes at full size)")
    ap.add_argument("--markdown")
    args = ap.parse_args()
    work = args.work or f"/tmp/asrkit_svcca_{args.n}_{args.d}"
    make_data(work, args.n, args.d)
    bench = os.path.join(args.build_dir, "bench", "bench_svcca")
    rows = []
    header = "| case | N x D | threads | asrkit s | numpy_cov s | ratio | numpy_svd s | ratio | kept (asrkit) | mean asrkit / cov / svd |"
    print(header)
    print("|" + "---|" * 10)
    for case in args.cases:
        for t in args.threads:
            a = time_asrkit(bench, work, case, t, args.reps)
            c = time_numpy(work, case, "numpy_cov", t, args.reps)
            s = None if args.skip_raw_svd else time_numpy(work, case, "numpy_svd", t, args.reps)
            row = (f"| {case} | {args.n} x {args.d} | {t} | {a['seconds']:.2f} | {c['seconds']:.2f} | "
                   f"{c['seconds'] / a['seconds']:.2f}x | "
                   + (f"{s['seconds']:.2f} | {s['seconds'] / a['seconds']:.2f}x | " if s else "- | - | ")
                   + f"{int(a['kept'][0])}, {int(a['kept'][1])} | {a['mean']:.4f} / {c['mean']:.4f} / "
                   + (f"{s['mean']:.4f} |" if s else "- |"))
            print(row, flush=True)
            rows.append(row)
    if args.markdown:
        with open(args.markdown, "a") as f:
            f.write(f"SVCCA, float32, {os.cpu_count()} cores, {time.strftime('%Y-%m-%d')}\n\n")
            f.write(header + "\n|" + "---|" * 10 + "\n" + "\n".join(rows) + "\n")


if __name__ == "__main__":
    main()
