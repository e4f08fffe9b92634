#!/usr/bin/env python3
"""End-to-end test of examples/asrkit-decode: writes emissions (safetensors), tokens, a lexicon
and a small ARPA model, runs the tool and checks its text, JSON and errors.

    test_decode_cli.py ASRKIT_DECODE_BINARY WORKDIR
"""
import json
import os
import subprocess
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "reference"))
import st_io  # noqa: E402

TOKENS = ["<blank>", "|", "'"] + [chr(c) for c in range(ord("a"), ord("z") + 1)]
ARPA = """\\data\\
ngram 1=7

\\1-grams:
-1.0\t<s>
-0.5\tthe
-0.9\tcat
-0.9\tsat
-1.5\tcut
-1.0\t</s>
-3.0\t<unk>

\\end\\
"""


def emissions(text, frames_per_symbol=3, rng=None):
    """Peaky log-probs spelling `text` (space = "|"), a blank frame between symbols."""
    rows = []
    for ch in text:
        k = TOKENS.index("|" if ch == " " else ch)
        for f in range(frames_per_symbol):
            rows.append(k if f == 0 else 0)
    rows.append(0)
    logits = rng.normal(0, 0.5, (len(rows), len(TOKENS)))
    for t, k in enumerate(rows):
        logits[t, k] += 6.0
    logits -= np.log(np.exp(logits).sum(axis=1, keepdims=True))
    return logits.astype(np.float32)


def run(binary, *args, expect=0):
    p = subprocess.run([binary, *args], capture_output=True, text=True)
    if p.returncode != expect:
        sys.exit(f"asrkit-decode {' '.join(args)} exited {p.returncode} (expected {expect}):\n{p.stdout}\n{p.stderr}")
    return p


def main():
    binary, work = sys.argv[1], sys.argv[2]
    os.makedirs(work, exist_ok=True)
    rng = np.random.default_rng(7)
    with open(os.path.join(work, "tokens.txt"), "w") as f:
        f.write("\n".join(TOKENS) + "\n")
    with open(os.path.join(work, "lm.arpa"), "w") as f:
        f.write(ARPA)
    with open(os.path.join(work, "lexicon.txt"), "w") as f:
        for w in ["the", "cat", "sat", "cut"]:
            f.write(f"{w}\t{' '.join(w)} |\n")
    one = emissions("the cat sat", rng=rng)
    two = emissions("cat sat", rng=rng)
    batch = np.zeros((2, one.shape[0], len(TOKENS)), np.float32)
    batch[0] = one
    batch[1, : two.shape[0]] = two
    st_io.save(os.path.join(work, "one.safetensors"), {"log_probs": one})
    st_io.save(os.path.join(work, "batch.safetensors"),
               {"log_probs": batch, "lengths": np.array([one.shape[0], two.shape[0]], np.int32)})
    common = ["--tokens", os.path.join(work, "tokens.txt"), "--boundary", "|", "--beam", "16"]

    out = run(binary, "--log-probs", os.path.join(work, "one.safetensors"), *common, "--json",
              "--frame-shift", "0")
    res = json.loads(out.stdout)
    best = res[0]["nbest"][0]
    assert best["text"] == "the cat sat", best["text"]
    words = best["words"]
    assert [w["word"] for w in words] == ["the", "cat", "sat"]
    # Known alignment: symbol i starts at frame 3 i, each lasts one frame.
    assert [w["start"] for w in words] == [0, 12, 24], words
    assert [w["end"] for w in words] == [7, 19, 31], words
    assert [t["start"] for t in best["tokens"]] == [3 * i for i in range(11)]

    out = run(binary, "--log-probs", os.path.join(work, "batch.safetensors"), "--batch-first",
              "--lengths", "lengths", *common, "--lm", os.path.join(work, "lm.arpa"), "--alpha", "0.5",
              "--beta", "1", "--lexicon", os.path.join(work, "lexicon.txt"), "--nbest", "2", "--json")
    res = json.loads(out.stdout)
    assert [r["nbest"][0]["text"] for r in res] == ["the cat sat", "cat sat"], res
    assert res[1]["frames"] == two.shape[0]
    assert len(res[0]["nbest"]) == 2
    assert res[0]["nbest"][0]["lm"] < 0

    out = run(binary, "--log-probs", os.path.join(work, "one.safetensors"), *common,
              "--hotword", "cut=10", "--lexicon", os.path.join(work, "lexicon.txt"))
    first = out.stdout.splitlines()[0].split("\t")
    assert first[3] == "the cut sat", first  # the boost (10) outweighs a vowel (~6 nats)

    with open(os.path.join(work, "short_tokens.txt"), "w") as f:
        f.write("\n".join(TOKENS[:-1]) + "\n")
    p = run(binary, "--log-probs", os.path.join(work, "one.safetensors"), "--tokens",
            os.path.join(work, "short_tokens.txt"), expect=1)
    assert "[asrkit.decode.4]" in p.stderr, p.stderr
    p = run(binary, "--log-probs", os.path.join(work, "one.safetensors"), expect=2)
    assert "--tokens are required" in p.stderr
    print("asrkit-decode: all checks passed")


if __name__ == "__main__":
    main()
