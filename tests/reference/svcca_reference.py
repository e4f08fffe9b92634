#!/usr/bin/env python3
"""Reference CCA / SVCCA / PWCCA for asrkit's analysis/ (tests/reference/svcca_parity.cpp).

An independent numpy implementation written for this test, following the semantics of Google's
cca_core.get_cca_similarity (SPECS §9.2) step by step on the *data* (np.cov of the joint matrix,
np.linalg.pinv, np.linalg.eigh of the inverse, np.linalg.svd), the SVCCA pipeline of the Google
tutorial (np.linalg.svd of the centred raw activations, SPECS §9.1), and PWCCA as SPECS §9.3
(canonical variates of the smaller side, np.linalg.qr, alpha_i = sum_j |<q_i, x_j>|). asrkit
computes everything from covariances instead, so agreement checks that route too.

  svcca_reference.py DIR   writes DIR/svcca_<case>_<f32|f64>.safetensors for every case: inputs
                           x [N, D1], y [N, D2] (rows = data points) and the expected numbers.
"""
import pathlib
import sys

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import st_io  # noqa: E402

EPSILON = 1e-10
THRESHOLD = 0.98
VARIANCE = 0.99


def cca_core(acts1, acts2, epsilon=EPSILON, threshold=THRESHOLD):
    """acts: neurons x datapoints (float64). Returns rho, the kept-neuron masks and directions."""
    numx = acts1.shape[0]
    sigma = np.cov(acts1, acts2)
    sxx, sxy = sigma[:numx, :numx], sigma[:numx, numx:]
    syx, syy = sigma[numx:, :numx], sigma[numx:, numx:]
    xmax, ymax = np.max(np.abs(sxx)), np.max(np.abs(syy))
    sxx, syy = sxx / xmax, syy / ymax
    sxy, syx = sxy / np.sqrt(xmax * ymax), syx / np.sqrt(xmax * ymax)
    xi = np.abs(np.diagonal(sxx)) >= epsilon
    yi = np.abs(np.diagonal(syy)) >= epsilon
    sxx, syy = sxx[xi][:, xi], syy[yi][:, yi]
    sxy = sxy[xi][:, yi]
    sxx = sxx + epsilon * np.eye(sxx.shape[0])
    syy = syy + epsilon * np.eye(syy.shape[0])

    def invsqrt(s):
        w, v = np.linalg.eigh(np.linalg.pinv(s))
        return v @ np.diag(np.sqrt(np.maximum(w, 0))) @ v.T

    ixx, iyy = invsqrt(sxx), invsqrt(syy)
    u, s, vt = np.linalg.svd(ixx @ sxy @ iyy)
    return np.abs(s), xi, yi, ixx @ u, iyy @ vt.T


def thresholded_mean(rho, threshold=THRESHOLD):
    total = np.sum(rho)
    for i in range(1, len(rho)):
        if np.sum(rho[:i]) / total >= threshold:
            return float(np.mean(rho[:i])), i
    return float(np.mean(rho)), len(rho)


def pwcca_of(acts1, acts2):
    rho, xi, yi, ax, ay = cca_core(acts1, acts2)
    acts, idx, a = (acts1, xi, ax) if xi.sum() <= yi.sum() else (acts2, yi, ay)
    kept = acts[idx]
    centred = kept - kept.mean(axis=1, keepdims=True)
    variates = a.T @ centred  # one canonical variate per row, over the data points
    q, _ = np.linalg.qr(variates.T)
    alpha = np.sum(np.abs(q.T @ kept.T), axis=1)
    alpha = alpha / alpha.sum()
    return float(np.sum(alpha * rho))


def svd_reduce(acts, variance=VARIANCE):
    centred = acts - acts.mean(axis=1, keepdims=True)
    u, s, vt = np.linalg.svd(centred, full_matrices=False)
    share = np.cumsum(s ** 2) / np.sum(s ** 2)
    k = int(np.argmax(share >= variance)) + 1
    return s[:k, None] * vt[:k], k


def results(x, y):
    """x, y: [N, D] as asrkit takes them; numpy works on their transposes in float64."""
    a1, a2 = x.astype(np.float64).T, y.astype(np.float64).T
    out = {}
    rho = cca_core(a1, a2)[0]
    tm, idx = thresholded_mean(rho)
    out.update({"cca.rho": rho, "cca.mean": [rho.mean()], "cca.mean_squared": [np.mean(rho ** 2)],
                "cca.thresholded_mean": [tm], "cca.threshold_index": [float(idx)],
                "cca.pwcca": [pwcca_of(a1, a2)]})
    r1, k1 = svd_reduce(a1)
    r2, k2 = svd_reduce(a2)
    srho = cca_core(r1, r2)[0]
    stm, _ = thresholded_mean(srho)
    out.update({"svcca.rho": srho, "svcca.mean": [srho.mean()], "svcca.mean_squared": [np.mean(srho ** 2)],
                "svcca.thresholded_mean": [stm], "svcca.kept": [float(k1), float(k2)],
                "svcca.pwcca": [pwcca_of(r1, r2)]})
    return {k: np.asarray(v, dtype=np.float64) for k, v in out.items()}


def correlated(rng, n, d1, d2, rhos, offset=0.0):
    """x and y sharing len(rhos) latent pairs with canonical correlations rhos, mixed into
    d1 / d2 neurons by random invertible maps (CCA is invariant to them)."""
    k = len(rhos)
    z = rng.standard_normal((n, k))
    e = rng.standard_normal((n, k))
    xs = np.concatenate([z, rng.standard_normal((n, d1 - k))], axis=1)
    ys = np.concatenate([z * rhos + e * np.sqrt(1 - np.asarray(rhos) ** 2), rng.standard_normal((n, d2 - k))], axis=1)
    x = xs @ rng.standard_normal((d1, d1)) + offset
    y = ys @ rng.standard_normal((d2, d2)) - offset
    return x, y


def low_rank(rng, n, d, rank, shared):
    """Activations with a decaying spectrum: `rank` latent directions (the first `shared` of them
    common to both layers) mixed into d neurons, plus small noise."""
    scale = 0.8 ** np.arange(rank)
    z = rng.standard_normal((n, rank))
    z2 = np.concatenate([z[:, :shared], rng.standard_normal((n, rank - shared))], axis=1)
    x = (z * scale) @ rng.standard_normal((rank, d)) + 0.01 * rng.standard_normal((n, d))
    y = (z2 * scale) @ rng.standard_normal((rank, d)) + 0.01 * rng.standard_normal((n, d))
    return x, y


def cases():
    rng = np.random.default_rng(20240611)
    yield "random_tall", rng.standard_normal((2000, 20)), rng.standard_normal((2000, 15))
    yield "random_square", rng.standard_normal((60, 25)), rng.standard_normal((60, 20))
    yield ("correlated_tall",) + correlated(rng, 3000, 24, 16, [0.95, 0.8, 0.5, 0.2])
    yield ("correlated_square",) + correlated(rng, 90, 30, 30, [0.99, 0.9, 0.7])
    yield ("offset",) + correlated(rng, 4000, 12, 10, [0.9, 0.6], offset=300.0)
    yield ("low_rank",) + low_rank(rng, 3000, 40, 12, 8)


def main(out_dir):
    out = pathlib.Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for name, x, y in cases():
        for tag, dtype in (("f32", np.float32), ("f64", np.float64)):
            xt, yt = x.astype(dtype), y.astype(dtype)
            tensors = {"x": xt, "y": yt}
            tensors.update(results(xt, yt))  # from the rounded inputs, in float64
            st_io.save(out / f"svcca_{name}_{tag}.safetensors", tensors)


if __name__ == "__main__":
    main(sys.argv[1])
