#!/usr/bin/env python3
"""Writes the seed corpus for fuzz_safetensors (tests/fuzz/seeds/safetensors/): a few small valid
files, each under 4 KB, covering every dtype, ranks 0..5, metadata, empty tensors and an
unpadded (unaligned) header. Needs only the standard library.

Usage: make_safetensors_seeds.py [OUT_DIR]
"""
import json
import pathlib
import struct
import sys

SIZES = {"F16": 2, "BF16": 2, "F32": 4, "F64": 8, "I32": 4, "I64": 8}


def build(tensors, metadata=None, pad=True):
    """tensors: [(name, dtype, shape)] -> bytes; element i of each tensor is byte pattern i."""
    header, blobs, offset = {}, [], 0
    if metadata is not None:
        header["__metadata__"] = metadata
    for name, dtype, shape in tensors:
        n = 1
        for d in shape:
            n *= d
        blob = bytes((i * 37 + 11) % 251 for i in range(n * SIZES[dtype]))
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    text = json.dumps(header).encode()
    if pad:
        text += b" " * ((8 - len(text) % 8) % 8)
    return struct.pack("<Q", len(text)) + text + b"".join(blobs)


SEEDS = {
    "all_dtypes.safetensors": build(
        [("f16", "F16", [3]), ("bf16", "BF16", [2, 2]), ("f32", "F32", [2, 3]),
         ("f64", "F64", [2]), ("i32", "I32", [1, 2, 2]), ("i64", "I64", [2, 1, 1, 2])],
        {"format": "pt"}),
    "scalar_and_empty.safetensors": build(
        [("s", "F32", []), ("e", "I64", [0, 4]), ("r5", "F16", [1, 1, 1, 2, 1])]),
    "metadata_only.safetensors": build([], {"a": "b", "\u00fc": "x"}),
    "unpadded.safetensors": build([("x", "F64", [3]), ("y", "BF16", [5])], pad=False),
}

if __name__ == "__main__":
    out = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else \
        pathlib.Path(__file__).resolve().parent / "seeds" / "safetensors"
    out.mkdir(parents=True, exist_ok=True)
    for name, data in SEEDS.items():
        assert len(data) < 4096, name
        (out / name).write_bytes(data)
    print(f"wrote {len(SEEDS)} seeds to {out}")
