#!/usr/bin/env python3
"""Writes small valid WAV files (every encoding, extensible, odd chunks) as fuzzing seeds.

Usage: make_wav_seeds.py [OUT_DIR]    (default: tests/fuzz/seeds/wav next to this script)
"""
import math
import pathlib
import struct
import sys

GUID_TAIL = bytes([0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80, 0x00,
                   0x00, 0xAA, 0x00, 0x38, 0x9B, 0x71])


def chunk(cid, body):
    return cid + struct.pack("<I", len(body)) + body + (b"\0" if len(body) % 2 else b"")


def fmt(tag, channels, rate, bits, extensible=False):
    align = channels * bits // 8
    body = struct.pack("<HHIIHH", 0xFFFE if extensible else tag, channels, rate, rate * align,
                       align, bits)
    if extensible:
        body += struct.pack("<HHI", 22, bits, (1 << channels) - 1)
        body += struct.pack("<H", tag) + GUID_TAIL
    elif tag == 3:
        body += struct.pack("<H", 0)
    return chunk(b"fmt ", body)


def samples(bits, tag, n):
    wave = [0.8 * math.sin(0.3 * i) for i in range(n)]
    if tag == 3:
        return b"".join(struct.pack("<f" if bits == 32 else "<d", x) for x in wave)
    if bits == 8:
        return bytes(int(round(x * 127)) + 128 for x in wave)
    scale = 1 << (bits - 1)
    return b"".join(int(round(x * (scale - 1))).to_bytes(bits // 8, "little", signed=True)
                    for x in wave)


def riff(*chunks):
    body = b"WAVE" + b"".join(chunks)
    return b"RIFF" + struct.pack("<I", len(body)) + body


def main(out):
    out.mkdir(parents=True, exist_ok=True)
    files = {}
    for tag, bits in [(1, 8), (1, 16), (1, 24), (1, 32), (3, 32), (3, 64)]:
        for channels in (1, 2):
            data = samples(bits, tag, 24 * channels)
            files[f"{'pcm' if tag == 1 else 'float'}{bits}_{channels}ch.wav"] = riff(
                fmt(tag, channels, 16000, bits), chunk(b"data", data))
    files["extensible_s24_3ch.wav"] = riff(fmt(1, 3, 48000, 24, extensible=True),
                                           chunk(b"data", samples(24, 1, 30)))
    files["extensible_f32_1ch.wav"] = riff(fmt(3, 1, 8000, 32, extensible=True),
                                           chunk(b"data", samples(32, 3, 10)))
    files["odd_chunks.wav"] = riff(chunk(b"JUNK", b"abc"), fmt(1, 1, 8000, 8),
                                   chunk(b"LIST", b"INFOx"), chunk(b"data", samples(8, 1, 7)),
                                   chunk(b"id3 ", b"tag"))
    files["float_fact.wav"] = riff(fmt(3, 2, 22050, 32), chunk(b"fact", struct.pack("<I", 4)),
                                   chunk(b"data", samples(32, 3, 8)))
    for name, data in files.items():
        assert len(data) < 4096, name
        (out / name).write_bytes(data)
    print(f"wrote {len(files)} seeds to {out}")


if __name__ == "__main__":
    default = pathlib.Path(__file__).resolve().parent / "seeds" / "wav"
    main(pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else default)
