#!/usr/bin/env python3
"""Resampling parity with SoX (an independent implementation of band-limited resampling).

  resample_reference.py make DIR   writes resample_ref_in_{44100,48000}.wav: a logarithmic sine
                                   sweep 50 Hz -> 7 kHz, 2 s, amplitude 0.5, 32-bit float; and
                                   resample_ref_sox_{44100,48000}.wav: the same resampled to
                                   16 kHz by `sox -D in.wav out.wav rate -v 16000` (very high
                                   quality, no dither), 32-bit float. The C++ test compares.

Needs the `sox` program (Debian package sox).
"""
import pathlib
import shutil
import struct
import subprocess
import sys

import numpy as np

RATES = (44100, 48000)
TARGET = 16000


def sweep(rate, seconds=2.0, f0=50.0, f1=7000.0, amplitude=0.5):
    """Exponential (logarithmic) sine sweep: instantaneous frequency f0 (f1/f0)^(t/T)."""
    t = np.arange(int(round(seconds * rate))) / rate
    k = np.log(f1 / f0)
    phase = 2.0 * np.pi * f0 * seconds / k * (np.exp(t / seconds * k) - 1.0)
    return (amplitude * np.sin(phase)).astype("<f4")


def write_float_wav(path, samples, rate):
    """Mono IEEE-float 32-bit WAV (fmt with cbSize = 0, 'fact' chunk, as the spec asks)."""
    data = samples.astype("<f4").tobytes()
    fmt = struct.pack("<HHIIHHH", 3, 1, rate, rate * 4, 4, 32, 0)
    fact = struct.pack("<I", samples.size)
    body = (b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"fact" +
            struct.pack("<I", len(fact)) + fact + b"data" + struct.pack("<I", len(data)) + data)
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)


def make(out):
    sox = shutil.which("sox")
    if sox is None:
        sys.exit("resample_reference.py: the `sox` program is missing (apt-get install sox)")
    out.mkdir(parents=True, exist_ok=True)
    for rate in RATES:
        src = out / f"resample_ref_in_{rate}.wav"
        dst = out / f"resample_ref_sox_{rate}.wav"
        write_float_wav(src, sweep(rate), rate)
        subprocess.run([sox, "-D", "-V1", str(src), "-b", "32", "-e", "floating-point", str(dst),
                        "rate", "-v", str(TARGET)], check=True)
        print(f"{src.name} -> {dst.name}")


if __name__ == "__main__":
    mode, directory = sys.argv[1], pathlib.Path(sys.argv[2])
    {"make": make}[mode](directory)
