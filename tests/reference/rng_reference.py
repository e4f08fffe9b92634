#!/usr/bin/env python3
"""Independent Python implementation of asrkit::Rng (xoshiro256** seeded by SplitMix64, exact
uniforms, Marsaglia polar normals) that writes the stream asrkit must reproduce bit for bit.

Usage: rng_reference.py OUT.txt    (lines: "<kind> <seed> <stream> <value>")
"""
import math
import sys
from fractions import Fraction

M64 = (1 << 64) - 1


def splitmix64(state):
    state = (state + 0x9E3779B97F4A7C15) & M64
    z = state
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return state, z ^ (z >> 31)


def rotl(x, k):
    return ((x << k) | (x >> (64 - k))) & M64


class Rng:
    def __init__(self, seed, stream=0):
        sm = (seed ^ ((stream * 0xD1B54A32D192ED03) & M64)) & M64
        self.s = []
        for _ in range(4):
            sm, word = splitmix64(sm)
            self.s.append(word)
        self.spare = None

    def next_u64(self):
        s = self.s
        result = (rotl((s[1] * 5) & M64, 7) * 9) & M64
        t = (s[1] << 17) & M64
        s[2] ^= s[0]
        s[3] ^= s[1]
        s[1] ^= s[2]
        s[0] ^= s[3]
        s[2] ^= t
        s[3] = rotl(s[3], 45)
        return result

    def uniform(self):
        return (self.next_u64() >> 11) * 2.0 ** -53

    def uniform_float(self):
        return (self.next_u64() >> 40) * 2.0 ** -24  # exact in float32 too

    def normal(self):
        if self.spare is not None:
            v, self.spare = self.spare, None
            return v
        while True:
            u = ((self.next_u64() >> 10) - (1 << 53)) * 2.0 ** -53
            v = ((self.next_u64() >> 10) - (1 << 53)) * 2.0 ** -53
            # asrkit computes fma(u, u, v*v): v*v rounded, then u*u + that rounded once.
            s = float(Fraction(u) * Fraction(u) + Fraction(v * v))
            if 0.0 < s < 1.0:
                break
        scale = math.sqrt(-2.0 * math.log(s) / s)
        self.spare = v * scale
        return u * scale


def main(out_path):
    with open(out_path, "w") as out:
        for seed, stream in [(0, 0), (42, 0), (42, 3), (2**64 - 1, 7)]:
            r = Rng(seed, stream)
            for _ in range(64):
                out.write(f"u64 {seed} {stream} {r.next_u64()}\n")
            r = Rng(seed, stream)
            for _ in range(64):
                out.write(f"uniform {seed} {stream} {r.uniform().hex()}\n")
            r = Rng(seed, stream)
            for _ in range(64):
                out.write(f"uniform_float {seed} {stream} {r.uniform_float().hex()}\n")
            r = Rng(seed, stream)
            for _ in range(1000):
                out.write(f"normal {seed} {stream} {r.normal().hex()}\n")


if __name__ == "__main__":
    main(sys.argv[1])
