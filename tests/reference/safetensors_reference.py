#!/usr/bin/env python3
"""safetensors parity with PyTorch / numpy, independent of asrkit (no safetensors package:
the format is written and read here with json + struct + numpy).

    safetensors_reference.py make DIR    write DIR/st_from_python.safetensors (tensors made by
                                         torch, seed 0) and DIR/st_from_python_expected.safetensors
                                         (the same values as F64 / I64, plus torch's own F16/BF16
                                         rounding of float32 edge values) for the C++ test
    safetensors_reference.py check DIR   verify DIR/st_from_asrkit.safetensors (written by the C++
                                         test) against values computed here; exit 1 on mismatch
"""
import json
import struct
import sys

import numpy as np
import torch

METADATA = {"format": "pt", "source": "asrkit parity \u00fc"}
NP_DTYPES = {"F16": np.float16, "F32": np.float32, "F64": np.float64, "I32": np.int32, "I64": np.int64}


def to_bytes_and_dtype(t):
    """A torch tensor -> (dtype name, shape, little-endian bytes)."""
    t = t.contiguous()
    if t.dtype == torch.bfloat16:
        return "BF16", list(t.shape), t.view(torch.int16).numpy().astype("<i2").tobytes()
    names = {torch.float16: "F16", torch.float32: "F32", torch.float64: "F64",
             torch.int32: "I32", torch.int64: "I64"}
    name = names[t.dtype]
    return name, list(t.shape), t.numpy().astype(np.dtype(NP_DTYPES[name]).newbyteorder("<")).tobytes()


def write_file(path, tensors, metadata):
    header, blobs, offset = {}, [], 0
    if metadata:
        header["__metadata__"] = metadata
    for name, t in tensors.items():
        dtype, shape, blob = to_bytes_and_dtype(t)
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for blob in blobs:
            f.write(blob)


def read_file(path):
    """-> (metadata, {name: (dtype, shape, bytes)}, header length); checks the layout strictly."""
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n].decode("utf-8"))
    body = data[8 + n:]
    metadata = header.pop("__metadata__", {})
    tensors, spans = {}, []
    for name, e in header.items():
        begin, end = e["data_offsets"]
        tensors[name] = (e["dtype"], e["shape"], body[begin:end])
        spans.append((begin, end, name))
    cursor = 0
    for begin, end, name in sorted(spans):
        if begin != cursor:
            fail(f"{path}: tensor {name} starts at {begin}, expected {cursor}")
        cursor = end
    if cursor != len(body):
        fail(f"{path}: data section is {len(body)} bytes, tensors cover {cursor}")
    return metadata, tensors, n


def decode(dtype, shape, blob):
    """Stored bytes -> torch tensor (bf16 through int16, as torch has no numpy bf16)."""
    if dtype == "BF16":
        return torch.from_numpy(np.frombuffer(blob, dtype="<i2").copy()).view(torch.bfloat16).reshape(shape)
    return torch.from_numpy(np.frombuffer(blob, dtype=np.dtype(NP_DTYPES[dtype]).newbyteorder("<")).copy()).reshape(shape)


def fail(msg):
    print("safetensors parity FAILED:", msg, file=sys.stderr)
    sys.exit(1)


def make(out_dir):
    torch.manual_seed(0)
    special = torch.tensor([float("inf"), float("-inf"), float("nan"), 65504.0, 6e-8, -0.0, 1e-3, 3.0])
    tensors = {
        "f32_r2": torch.randn(3, 4),
        "f64_r1": torch.randn(5, dtype=torch.float64),
        "f16_r3": torch.randn(2, 3, 4).half(),
        "bf16_r4": (torch.randn(2, 2, 3, 2) * 100).bfloat16(),
        "i32_r0": torch.tensor(-7, dtype=torch.int32),
        "i32_r1": torch.randint(-2**31, 2**31 - 1, (6,), dtype=torch.int32),
        "i64_r2": torch.randint(-2**40, 2**40, (3, 2), dtype=torch.int64),
        "f16_special": special.half(),
        "bf16_special": special.bfloat16(),
        "empty_f32": torch.zeros(0, 3),
    }
    write_file(f"{out_dir}/st_from_python.safetensors", tensors, METADATA)

    expected = {}
    for name, t in tensors.items():
        expected[name] = t.to(torch.float64) if t.is_floating_point() else t.to(torch.int64)
    # torch's float32 -> F16 / BF16 rounding on values near ties, overflow and subnormals.
    edge = torch.cat([
        torch.randn(200) * 10,
        torch.tensor([1 + 2**-11, 1 + 3 * 2**-11, 65519.0, 65520.0, 2**-25, 3 * 2**-25, 2**-24 * 0.75,
                      1 + 2**-8, 1 + 3 * 2**-8, 3.3895314e38, 1e-40, -0.0, float("inf")]),
        torch.from_numpy((np.arange(4096, dtype=np.uint32) * 1048573 + 0x00008000).astype(np.uint32)
                         .view(np.float32)).clone(),
    ])
    edge = edge[torch.isfinite(edge) | torch.isinf(edge)]
    expected["rounding_f32"] = edge
    expected["rounding_f16"] = edge.half()
    expected["rounding_bf16"] = edge.bfloat16()
    write_file(f"{out_dir}/st_from_python_expected.safetensors", expected, METADATA)
    print(f"wrote {len(tensors)} tensors and {len(expected)} expected values to {out_dir}")


def check(in_dir):
    path = f"{in_dir}/st_from_asrkit.safetensors"
    metadata, tensors, n = read_file(path)
    if (8 + n) % 8:
        fail(f"data section starts at {8 + n}, not 8-byte aligned")
    if metadata != {"producer": "asrkit", "note": "\u00fcn\u00efcode"}:
        fail(f"metadata {metadata}")
    base = (np.arange(24, dtype=np.float32).reshape(2, 3, 4) - np.float32(11)) / np.float32(7)
    want = {
        "arange_f32": ("F32", base),
        "arange_f16": ("F16", base.astype(np.float16)),
        "arange_bf16": ("BF16", torch.from_numpy(base).bfloat16()),
        "f64": ("F64", np.arange(10, dtype=np.float64) * 0.1),
        "f64_as_f16": ("F16", (np.arange(10, dtype=np.float64) * 0.1).astype(np.float16)),
        "i32": ("I32", np.arange(7, dtype=np.int32) - 5),
        "i64": ("I64", np.arange(5, dtype=np.int64) * 2**33 - 7),
        "scalar": ("F32", np.array(42.5, dtype=np.float32)),
        "empty": ("F32", np.zeros((0, 5), dtype=np.float32)),
        "r4_f16": ("F16", (np.arange(12, dtype=np.float32).reshape(2, 1, 3, 2) / 3).astype(np.float16)),
    }
    if sorted(tensors) != sorted(want):
        fail(f"tensor names {sorted(tensors)}, expected {sorted(want)}")
    for name, (dtype, value) in want.items():
        got_dtype, shape, blob = tensors[name]
        if got_dtype != dtype:
            fail(f"{name}: dtype {got_dtype}, expected {dtype}")
        if list(shape) != list(value.shape):
            fail(f"{name}: shape {shape}, expected {list(value.shape)}")
        got = decode(got_dtype, shape, blob)
        ref = value if isinstance(value, torch.Tensor) else torch.from_numpy(np.array(value))  # a copy; keeps rank 0
        # Bitwise: the rounding must be torch's / numpy's round-to-nearest-even exactly.
        if dtype in ("F16", "BF16"):
            same = torch.equal(got.view(torch.int16), ref.view(torch.int16))
        else:
            same = torch.equal(got, ref)
        if not same:
            fail(f"{name}: got {got.flatten()[:8].tolist()}..., expected {ref.flatten()[:8].tolist()}...")
    print(f"checked {len(want)} tensors written by asrkit")


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in ("make", "check"):
        sys.exit(__doc__)
    (make if sys.argv[1] == "make" else check)(sys.argv[2])
