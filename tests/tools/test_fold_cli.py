#!/usr/bin/env python3
"""End-to-end test of examples/asrkit-fold: writes a small trained-looking FusionFormer and a DS2
BN-RNN stack (safetensors, state_dict names written out here independently of the C++ code),
runs the tool, checks the report, that the output has no BatchNorm tensors, that one folded
layer equals the SPECS §10.3 formula computed here, and that every error path exits non-zero
with a message naming the problem.

    test_fold_cli.py ASRKIT_FOLD_BINARY WORKDIR
"""
import json
import os
import struct
import subprocess
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "reference"))
import st_io  # noqa: E402

EPS = 1e-5
F, D, LAYERS, HEADS, FF, KERNEL = 20, 16, 2, 2, 32, 5


def load(path):
    """Minimal safetensors reader (F32/F64/I64) -> {name: array}, metadata."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    types = {"F32": "<f4", "F64": "<f8", "I64": "<i8", "I32": "<i4"}
    meta = header.pop("__metadata__", {})
    out = {}
    for name, info in header.items():
        a, b = info["data_offsets"]
        out[name] = np.frombuffer(data[a:b], dtype=types[info["dtype"]]).reshape(info["shape"])
    return out, meta


class State:
    def __init__(self, seed):
        self.rng = np.random.default_rng(seed)
        self.t = {}

    def w(self, name, *shape):
        self.t[name] = (self.rng.standard_normal(shape) / np.sqrt(max(1, np.prod(shape[1:])))).astype(np.float32)

    def b(self, name, n):
        self.t[name] = (0.1 * self.rng.standard_normal(n)).astype(np.float32)

    def bn(self, prefix, n):
        """A trained BatchNorm: statistics far from 0 / 1, random affine part."""
        self.t[prefix + ".weight"] = self.rng.uniform(0.5, 1.5, n).astype(np.float32)
        self.t[prefix + ".bias"] = self.rng.uniform(-0.5, 0.5, n).astype(np.float32)
        self.t[prefix + ".running_mean"] = self.rng.uniform(-1, 1, n).astype(np.float32)
        self.t[prefix + ".running_var"] = self.rng.uniform(0.3, 3, n).astype(np.float32)
        self.t[prefix + ".num_batches_tracked"] = np.array(100, dtype=np.int64)

    def linear(self, prefix, n_in, n_out, *extra):
        self.w(prefix + ".weight", n_out, n_in, *extra)
        self.b(prefix + ".bias", n_out)


def fusionformer_state(seed=1):
    s = State(seed)
    f1 = (F - 3) // 2 + 1
    f2 = (f1 - 3) // 2 + 1
    s.linear("embed.conv.0", 1, D, 3, 3)
    s.bn("embed.conv.1", D)
    s.linear("embed.conv.3", D, D, 3, 3)
    s.bn("embed.conv.4", D)
    s.linear("embed.out.0", D * f2, D)
    for i in range(LAYERS):
        p = f"encoders.{i}."
        s.w(p + "self_attn.pos_bias_u", HEADS, D // HEADS)
        s.w(p + "self_attn.pos_bias_v", HEADS, D // HEADS)
        for x in ("q", "k", "v", "out"):
            s.linear(p + f"self_attn.linear_{x}", D, D)
            s.bn(p + f"self_attn.norm_{x}", D)
        s.w(p + "self_attn.linear_pos.weight", D, D)
        for ff in ("feed_forward", "feed_forward_macaron"):
            s.linear(p + ff + ".w_1", D, FF)
            s.bn(p + ff + ".norm_1", FF)
            s.linear(p + ff + ".w_2", FF, D)
            s.bn(p + ff + ".norm_2", D)
        c = p + "conv_module."
        s.linear(c + "pointwise_conv1", D, D, 1)
        s.bn(c + "pointwise_norm1", D)
        s.w(c + "depthwise_conv.weight", D, 1, KERNEL)
        s.b(c + "depthwise_conv.bias", D)
        s.bn(c + "norm", D)
        s.linear(c + "pointwise_conv2", D, D, 1)
        s.bn(c + "pointwise_norm2", D)
    return s.t


def ds2_state(seed=2, inputs=12, hidden=10, layers=2):
    s = State(seed)
    for i in range(layers):
        p = f"rnns.{i}."
        s.w(p + "weight_ih_l0", hidden, inputs if i == 0 else hidden)
        s.w(p + "weight_hh_l0", hidden, hidden)
        s.bn(p + "norm_ih_l0", hidden)
        s.w(p + "weight_hh_l0_reverse", hidden, hidden)
    return s.t


def run(binary, *args, expect=0):
    p = subprocess.run([binary, *args], capture_output=True, text=True)
    if p.returncode != expect:
        sys.exit(f"asrkit-fold {' '.join(args)} exited {p.returncode} (expected {expect}):\n{p.stdout}\n{p.stderr}")
    return p


def expect_error(binary, work, config, state, fragments, code=1, label=""):
    path = os.path.join(work, f"bad_{label}.safetensors")
    st_io.save(path, state)
    p = run(binary, "--config", config, "--in", path, "--out", os.path.join(work, "never.safetensors"), expect=code)
    for frag in fragments:
        if frag not in p.stderr:
            sys.exit(f"{label}: expected '{frag}' in the error, got:\n{p.stderr}")


def main():
    binary, work = sys.argv[1], sys.argv[2]
    os.makedirs(work, exist_ok=True)

    # ---- FusionFormer -------------------------------------------------------------------------
    config = os.path.join(work, "fusionformer.json")
    with open(config, "w") as f:
        json.dump({"kind": "fusionformer", "input_features": F, "d_model": D, "layers": LAYERS, "heads": HEADS,
                   "ff": FF, "kernel": KERNEL, "subsampling": 4}, f)
    state = fusionformer_state()
    model = os.path.join(work, "fusionformer.safetensors")
    st_io.save(model, state)
    out = os.path.join(work, "folded.safetensors")
    report_path = os.path.join(work, "report.json")
    p = run(binary, "--config", config, "--in", model, "--out", out, "--report", report_path, "--threads", "1")
    report = json.load(open(report_path))
    folded = report["folded"]
    assert len(folded) == 2 + 11 * LAYERS, len(folded)
    assert all(r["side"] == "post" and r["exact"] for r in folded), folded
    pairs = {r["norm"]: r["layer"] for r in folded}
    assert pairs["embed.conv.1"] == "embed.conv.0", pairs
    assert pairs["encoders.1.conv_module.norm"] == "encoders.1.conv_module.depthwise_conv", pairs
    assert pairs["encoders.0.self_attn.norm_out"] == "encoders.0.self_attn.linear_out", pairs
    assert report["self_check"]["relative"] < 1e-4, report["self_check"]  # float rounding over 22 folds
    assert "self-check max |diff|" in p.stdout and "folded encoders.0.feed_forward.norm_1" in p.stdout, p.stdout

    tensors, meta = load(out)
    assert not [n for n in tensors if "norm" in n or "running_" in n], sorted(tensors)
    bn_names = {n for n in state if n.rsplit(".", 1)[0] in pairs}
    assert set(tensors) == set(state) - bn_names, sorted(set(tensors) ^ (set(state) - bn_names))
    assert report["tensors_out"] == len(tensors) and report["tensors_in"] == len(state)
    assert json.loads(meta["config"])["kind"] == "fusionformer"
    # SPECS §10.3 computed here: W' = s W (per output row), b' = s (b - mu) + beta.
    for layer, norm in (("encoders.0.feed_forward.w_1", "encoders.0.feed_forward.norm_1"),
                        ("encoders.1.conv_module.depthwise_conv", "encoders.1.conv_module.norm"),
                        ("embed.conv.3", "embed.conv.4")):
        w, b = state[layer + ".weight"].astype(np.float64), state[layer + ".bias"].astype(np.float64)
        g, beta = state[norm + ".weight"].astype(np.float64), state[norm + ".bias"].astype(np.float64)
        mu, var = state[norm + ".running_mean"].astype(np.float64), state[norm + ".running_var"].astype(np.float64)
        s = g / np.sqrt(var + EPS)
        want_w = w * s.reshape((-1,) + (1,) * (w.ndim - 1))
        want_b = s * (b - mu) + beta
        assert np.allclose(tensors[layer + ".weight"], want_w, rtol=1e-6, atol=1e-7), layer
        assert np.allclose(tensors[layer + ".bias"], want_b, rtol=1e-6, atol=1e-7), layer
    # Untouched tensors pass through bit-exactly.
    assert np.array_equal(tensors["encoders.0.self_attn.linear_pos.weight"], state["encoders.0.self_attn.linear_pos.weight"])

    # ---- DS2 BN-RNN stack ---------------------------------------------------------------------
    ds2_config = os.path.join(work, "ds2.json")
    with open(ds2_config, "w") as f:
        json.dump({"kind": "ds2_rnn", "input_size": 12, "hidden_size": 10, "layers": 2, "cell": "rnn",
                   "bidirectional": True, "share_input_weights": True, "merge": "sum"}, f)
    ds2 = ds2_state()
    ds2_path = os.path.join(work, "ds2.safetensors")
    st_io.save(ds2_path, ds2)
    ds2_out = os.path.join(work, "ds2_folded.safetensors")
    run(binary, "--config", ds2_config, "--in", ds2_path, "--out", ds2_out, "--report", report_path)
    r = json.load(open(report_path))
    assert [(x["norm"], x["layer"]) for x in r["folded"]] == [
        ("rnns.0.norm_ih_l0", "rnns.0.weight_ih_l0"), ("rnns.1.norm_ih_l0", "rnns.1.weight_ih_l0")], r["folded"]
    assert r["self_check"]["relative"] < 1e-5, r["self_check"]
    t2, _ = load(ds2_out)
    assert "rnns.1.bias_ih_l0" in t2 and not [n for n in t2 if "norm" in n], sorted(t2)

    # ---- errors: non-zero exit and a message naming the problem --------------------------------
    missing = dict(state)
    del missing["encoders.1.feed_forward.w_2.bias"]
    expect_error(binary, work, config, missing, ["checkpoint.1", "encoders.1.feed_forward.w_2.bias"], label="missing")
    extra = dict(state)
    extra["encoders.0.surprise"] = np.zeros(3, np.float32)
    expect_error(binary, work, config, extra, ["checkpoint.2", "encoders.0.surprise"], label="extra")
    shaped = dict(state)
    shaped["encoders.0.conv_module.depthwise_conv.weight"] = np.zeros((D, 1, KERNEL + 2), np.float32)
    expect_error(binary, work, config, shaped, ["checkpoint.3", "encoders.0.conv_module.depthwise_conv.weight",
                                                f"expected [{D}, 1, {KERNEL}]"], label="shape")
    nan = dict(state)
    nan["encoders.1.self_attn.norm_v.running_var"] = state["encoders.1.self_attn.norm_v.running_var"].copy()
    nan["encoders.1.self_attn.norm_v.running_var"][2] = np.nan
    expect_error(binary, work, config, nan, ["fold.2", "encoders.1.self_attn.norm_v.running_var[2]"], label="nan")
    if os.path.exists(os.path.join(work, "never.safetensors")):
        sys.exit("a failed run wrote its output file")
    bad_kind = os.path.join(work, "bad_kind.json")
    with open(bad_kind, "w") as f:
        json.dump({"kind": "lstm"}, f)
    expect_error(binary, work, bad_kind, state, ['"kind" must be fusionformer, conformer or ds2_rnn, got "lstm"'],
                 label="kind")
    no_heads = os.path.join(work, "no_heads.json")
    with open(no_heads, "w") as f:
        json.dump({"kind": "fusionformer", "input_features": F, "d_model": D, "layers": LAYERS, "ff": FF,
                   "kernel": KERNEL}, f)
    expect_error(binary, work, no_heads, state, ['"heads" is required'], label="heads")
    p = run(binary, "--config", config, "--in", model, expect=2)
    assert "--out are required" in p.stderr, p.stderr
    p = run(binary, "--config", config, "--in", os.path.join(work, "absent.safetensors"), "--out", out, expect=1)
    assert "absent.safetensors" in p.stderr, p.stderr
    print("asrkit-fold: all checks passed")


if __name__ == "__main__":
    main()
