#!/usr/bin/env python3
"""WAV parity with Python's standard `wave` module (independent of asrkit's reader/writer).

  wav_reference.py make DIR    writes wav_ref_*.wav with `wave` (PCM 8/16/24/32 bit, 1-5
                               channels), the expected float32 samples as raw little-endian
                               wav_ref_*.f32 and wav_ref_manifest.txt; the C++ test reads them.
  wav_reference.py check DIR   reads the wav_cpp_*.wav files asrkit wrote (inputs in
                               wav_cpp_*.f32, list in wav_cpp_manifest.txt) and checks every
                               sample: PCM through `wave`, float through a minimal chunk walk.
"""
import pathlib
import struct
import sys
import wave

import numpy as np


def int_codes(raw, width):
    """Signed (or u8) integer codes from little-endian PCM bytes of `width` bytes."""
    if width == 1:
        return np.frombuffer(raw, dtype=np.uint8).astype(np.int64)
    if width == 3:
        b = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 3).astype(np.int64)
        v = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
        return np.where(v >= 1 << 23, v - (1 << 24), v)
    return np.frombuffer(raw, dtype={2: "<i2", 4: "<i4"}[width]).astype(np.int64)


def to_float(codes, width):
    """asrkit's documented scaling: u8 (x - 128) / 128, signed x / 2^(bits - 1)."""
    if width == 1:
        return ((codes - 128) / 128.0).astype(np.float32)
    return (codes / float(1 << (8 * width - 1))).astype(np.float32)


def make(out):
    rng = np.random.default_rng(1234)
    lines = []
    for width in (1, 2, 3, 4):
        for channels, rate, frames in ((1, 16000, 1000), (2, 44100, 333), (5, 8000, 77)):
            name = f"wav_ref_{8 * width}bit_{channels}ch"
            bits = 8 * width
            if width == 1:
                codes = rng.integers(0, 256, size=frames * channels)
                codes[:2] = (0, 255)
            else:
                codes = rng.integers(-(1 << (bits - 1)), 1 << (bits - 1), size=frames * channels)
                codes[:2] = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1)  # both extremes
            if width == 1:
                raw = codes.astype(np.uint8).tobytes()
            elif width == 3:
                raw = b"".join(int(c).to_bytes(3, "little", signed=True) for c in codes)
            else:
                raw = codes.astype({2: "<i2", 4: "<i4"}[width]).tobytes()
            with wave.open(str(out / f"{name}.wav"), "wb") as w:
                w.setnchannels(channels)
                w.setsampwidth(width)
                w.setframerate(rate)
                w.writeframes(raw)
            to_float(codes, width).astype("<f4").tofile(out / f"{name}.f32")
            lines.append(f"{name} {channels} {frames} {rate} {bits}\n")
    (out / "wav_ref_manifest.txt").write_text("".join(lines))


def read_float_wav(path):
    """(channels, rate, bits, samples) of an IEEE-float WAV, by walking its chunks."""
    data = path.read_bytes()
    assert data[:4] == b"RIFF" and data[8:12] == b"WAVE", path
    pos, fmt = 12, None
    while pos + 8 <= len(data):
        cid, size = data[pos:pos + 4], struct.unpack("<I", data[pos + 4:pos + 8])[0]
        body = data[pos + 8:pos + 8 + size]
        if cid == b"fmt ":
            fmt = struct.unpack("<HHIIHH", body[:16])
        elif cid == b"data":
            tag, channels, rate, byte_rate, align, bits = fmt
            assert tag == 3 and align == channels * bits // 8 and byte_rate == rate * align, fmt
            return channels, rate, bits, np.frombuffer(body, dtype="<f4" if bits == 32 else "<f8")
        pos += 8 + size + (size & 1)
    raise AssertionError(f"{path}: no data chunk")


def check(out):
    failures = 0
    lines = (out / "wav_cpp_manifest.txt").read_text().split("\n")
    for line in filter(None, lines):
        name, channels, frames, rate, kind = line.split()
        channels, frames, rate = int(channels), int(frames), int(rate)
        x = np.fromfile(out / f"{name}.f32", dtype="<f4").astype(np.float64)
        assert x.size == channels * frames, name
        path = out / f"{name}.wav"
        if kind.startswith("float"):
            got_ch, got_rate, bits, got = read_float_wav(path)
            ok = (got_ch, got_rate, bits) == (channels, rate, 32 if kind == "float32" else 64)
            ok = ok and np.array_equal(got.astype(np.float64), x, equal_nan=True)
        else:
            with wave.open(str(path), "rb") as w:
                width = w.getsampwidth()
                ok = (w.getnchannels(), w.getframerate(), w.getnframes()) == (channels, rate, frames)
                got = int_codes(w.readframes(frames), width)
            scale = float(1 << (8 * width - 1))
            # Clip, scale, round half to even, saturate at the largest code.
            want = np.minimum(np.rint(np.clip(x, -1.0, 1.0) * scale), scale - 1).astype(np.int64)
            if width == 1:
                want += 128
            ok = ok and kind == f"pcm_{'u' if width == 1 else 's'}{8 * width}"
            ok = ok and np.array_equal(got, want)
        print(f"{name}: {'ok' if ok else 'MISMATCH'}")
        failures += not ok
    if failures or not lines:
        sys.exit(1)


if __name__ == "__main__":
    mode, directory = sys.argv[1], pathlib.Path(sys.argv[2])
    {"make": make, "check": check}[mode](directory)
