#!/usr/bin/env python3
"""End-to-end test of examples/asrkit-svcca: writes activations (safetensors), runs the tool in
its three modes and checks the numbers against numpy (SVD of the centred data + cca_core
semantics, tests/reference/svcca_reference.py), the PNG heatmap (decoded with zlib + struct),
and the error paths.

    test_svcca_cli.py ASRKIT_SVCCA_BINARY WORKDIR
"""
import json
import os
import struct
import subprocess
import sys
import zlib

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "reference"))
import st_io  # noqa: E402
import svcca_reference as ref  # noqa: E402


def run(binary, *args, expect=0):
    p = subprocess.run([binary, *args], capture_output=True, text=True)
    if (expect == 0) != (p.returncode == 0) or (expect and p.returncode != expect):
        sys.exit(f"asrkit-svcca {' '.join(args)} exited {p.returncode} (expected {expect}):\n{p.stdout}\n{p.stderr}")
    return p


def fail_with(binary, fragment, *args):
    p = run(binary, *args, expect=1)
    if fragment not in p.stderr:
        sys.exit(f"asrkit-svcca {' '.join(args)}: expected '{fragment}' in stderr, got:\n{p.stderr}")


def svcca_mean(x, y):
    r1, _ = ref.svd_reduce(x.astype(np.float64).T)
    r2, _ = ref.svd_reduce(y.astype(np.float64).T)
    return float(np.mean(ref.cca_core(r1, r2)[0]))


def read_png(path):
    """(width, height, pixels [height][width][3]) of an 8-bit RGB PNG with filters None / Up,
    checking every CRC; zlib (not asrkit) inflates the data."""
    data = open(path, "rb").read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "bad PNG signature"
    pos, idat, ihdr = 8, b"", None
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length:pos + 12 + length])
        assert crc == zlib.crc32(kind + body), f"bad CRC in {kind}"
        if kind == b"IHDR":
            ihdr = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    width, height, depth, colour = ihdr[:4]
    assert (depth, colour) == (8, 2), ihdr
    raw = zlib.decompress(idat)
    stride = 3 * width
    assert len(raw) == height * (stride + 1)
    rows, prev = [], np.zeros(stride, dtype=np.uint8)
    for y in range(height):
        kind, line = raw[y * (stride + 1)], np.frombuffer(raw, np.uint8, stride, y * (stride + 1) + 1)
        assert kind in (0, 2), kind
        prev = line.copy() if kind == 0 else (line + prev).astype(np.uint8)
        rows.append(prev)
    return width, height, np.array(rows).reshape(height, width, 3)


def main():
    binary, work = sys.argv[1], sys.argv[2]
    os.makedirs(work, exist_ok=True)
    p = lambda name: os.path.join(work, name)  # noqa: E731
    rng = np.random.default_rng(5)

    # ---- pair: float and double, known shared signal ----
    x, y = ref.correlated(rng, 3000, 12, 9, [0.95, 0.7, 0.4])
    for dtype, tol in ((np.float64, 1e-9), (np.float32, 2e-4)):
        st_io.save(p("a.safetensors"), {"acts": x.astype(dtype)})
        st_io.save(p("b.safetensors"), {"other": y.astype(dtype), "acts": y.astype(dtype)})
        out = json.loads(run(binary, "pair", p("a.safetensors"), p("b.safetensors"), "--tensor-b", "acts",
                             "--json").stdout)
        want = ref.results(x.astype(dtype), y.astype(dtype))
        assert out["n"] == 3000
        assert [out["kept_a"], out["kept_b"]] == list(want["svcca.kept"]), (out, want["svcca.kept"])
        for key in ("mean", "mean_squared", "thresholded_mean", "pwcca"):
            assert abs(out[key] - want["svcca." + key][0]) < tol, (dtype, key, out[key], want["svcca." + key])
        assert np.allclose(out["rho"], want["svcca.rho"], atol=tol)
    text = run(binary, "pair", p("a.safetensors"), p("b.safetensors"), "--tensor-b", "acts").stdout
    assert "svcca mean" in text and "pwcca" in text, text
    # --keep-dims reaches the options
    out = json.loads(run(binary, "pair", p("a.safetensors"), p("b.safetensors"), "--tensor-b", "acts",
                         "--keep-dims", "3", "--json").stdout)
    assert out["kept_a"] == 3 and out["kept_b"] == 3 and len(out["rho"]) == 3

    # ---- layers: natural order, matrix against numpy, heatmap ----
    base = rng.standard_normal((2500, 10))
    layers = {}
    for k in (0, 1, 2, 10):  # "layer.10" must come after "layer.2"
        base = np.tanh(base @ (np.eye(10) + 0.4 * rng.standard_normal((10, 10)))) + 0.1 * rng.standard_normal((2500, 10))
        layers[f"layer.{k}"] = base.astype(np.float32)
    st_io.save(p("layers.safetensors"), {k: layers[k] for k in ("layer.10", "layer.2", "layer.0", "layer.1")})
    out = json.loads(run(binary, "layers", p("layers.safetensors"), "--png", p("layers.png"), "--json").stdout)
    names = ["layer.0", "layer.1", "layer.2", "layer.10"]
    assert out["layers"] == names, out["layers"]
    m = np.array(out["matrix"])
    for i, a in enumerate(names):
        for j, b in enumerate(names):
            want = 1.0 if i == j else svcca_mean(layers[a], layers[b])
            assert abs(m[i, j] - want) < 2e-4, (a, b, m[i, j], want)
    assert m[0, 1] > m[0, 3], m  # neighbours more alike than distant layers
    width, height, img = read_png(p("layers.png"))
    assert width > height >= 4 * 24, (width, height)
    # cells of 24 px after a 1 px gap, dark grey background; the diagonal (value 1) is white,
    # and brightness falls with the similarity along row 0
    assert tuple(img[0, 0]) == (80, 80, 80), img[0, 0]
    assert tuple(img[6, 6]) == (255, 255, 255), img[6, 6]
    luma = [img[6, 1 + 25 * j + 5].astype(float) @ [0.3, 0.59, 0.11] for j in range(4)]
    assert all(np.diff(luma) < 0) == all(np.diff(m[0]) < 0), (luma, m[0])
    text = run(binary, "layers", p("layers.safetensors")).stdout
    assert "layer.10" in text.splitlines()[-1], text

    # ---- model: random weights saved, then loaded strictly; streams checked against numpy ----
    cfg = {"block": "transformer", "layers": 3, "d_model": 8, "heads": 2, "ff": 16}
    with open(p("enc.json"), "w") as f:
        json.dump(cfg, f)
    feats = rng.standard_normal((40, 3, 8)).astype(np.float32)
    st_io.save(p("feats.safetensors"), {"features": feats, "lengths": np.array([40, 31, 25], dtype=np.int32)})
    first = json.loads(run(binary, "model", "--config", p("enc.json"), "--init-seed", "3", "--features",
                           p("feats.safetensors"), "--save-weights", p("enc.safetensors"), "--json").stdout)
    loaded = json.loads(run(binary, "model", "--config", p("enc.json"), "--weights", p("enc.safetensors"),
                            "--features", p("feats.safetensors"), "--save-streams", p("streams.safetensors"),
                            "--png", p("model.png"), "--json").stdout)
    # saved and reloaded weights give the same model; the last bits of the SVCCA values may differ
    # between two processes (Eigen's vectorised reductions depend on buffer alignment, i.e. on the
    # heap layout; docs/svcca.md "Limitations"), so compare to 1e-6, far below any real difference
    assert np.allclose(first["matrix"], loaded["matrix"], rtol=0, atol=1e-6), (first["matrix"], loaded["matrix"])
    assert loaded["n"] == 96 and loaded["layers"] == [f"stream.{k}" for k in range(4)], loaded
    streams = json.loads(run(binary, "layers", p("streams.safetensors"), "--json").stdout)
    assert np.allclose(streams["matrix"], loaded["matrix"], atol=1e-12)
    read_png(p("model.png"))
    for c in ("conformer", "fusionformer"):
        with open(p(f"{c}.json"), "w") as f:
            json.dump(dict(cfg, block=c, kernel=3), f)
        run(binary, "model", "--config", p(f"{c}.json"), "--init-seed", "1", "--features", p("feats.safetensors"))

    # ---- errors: exit code != 0 and a message naming the problem ----
    fail_with(binary, "cannot open", "pair", p("missing.safetensors"), p("b.safetensors"))
    fail_with(binary, "no tensor 'nope'", "pair", p("a.safetensors"), p("b.safetensors"), "--tensor-b", "nope")
    fail_with(binary, "holds 2 tensors", "pair", p("a.safetensors"), p("b.safetensors"))
    st_io.save(p("short.safetensors"), {"acts": y[:2000].astype(np.float32)})
    fail_with(binary, "svcca.2", "pair", p("a.safetensors"), p("short.safetensors"))
    st_io.save(p("wide.safetensors"), {"acts": rng.standard_normal((20, 30)).astype(np.float32)})
    fail_with(binary, "svcca.3", "pair", p("wide.safetensors"), p("wide.safetensors"))
    nan = x.astype(np.float32).copy()
    nan[5, 3] = np.nan
    st_io.save(p("nan.safetensors"), {"acts": nan})
    fail_with(binary, "argument x: element (5, 3) is nan", "pair", p("nan.safetensors"), p("a.safetensors"))
    fail_with(binary, "argument x: element (5, 3) is nan", "pair", p("nan.safetensors"), p("a.safetensors"))
    st_io.save(p("partial.safetensors"), {"encoders.0.norm1.weight": np.ones(8, np.float32)})
    fail_with(binary, "encoders.", "model", "--config", p("enc.json"), "--weights", p("partial.safetensors"),
              "--features", p("feats.safetensors"))
    usage = run(binary, "pair", p("a.safetensors"), expect=2)
    assert "takes 2 file argument(s)" in usage.stderr, usage.stderr
    run(binary, "frobnicate", expect=2)
    print("asrkit-svcca end-to-end: all checks passed")


if __name__ == "__main__":
    main()
