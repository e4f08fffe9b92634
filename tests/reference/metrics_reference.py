#!/usr/bin/env python3
"""WER parity with NIST sclite (Debian package `sctk`): sclite scores a seeded set of sentence
pairs, asrkit must count the same substitutions, deletions, insertions and correct words.

  metrics_reference.py make DIR   writes DIR/metrics_ref.trn and DIR/metrics_hyp.trn (sclite's
                                  trn format, `words (speaker_utt)`), runs sclite on them and
                                  writes DIR/metrics_sclite.txt:
                                    total SNT WRD CORR SUB DEL INS ERR    (sclite's Sum line)
                                    utt ID C S D I OPS  (per utterance; OPS: sclite's alignment
                                                        as C/S/D/I letters, '-' when empty)
"""
import pathlib
import random
import re
import shutil
import subprocess
import sys

VOCAB = ["the", "a", "cat", "dog", "sat", "on", "mat", "ran", "to", "red", "big", "hat"]


def sentence_pairs(seed=20240607, count=200):
    """(id, ref words, hyp words): random edits of random sentences, with the cases that matter
    for tie-breaks and weights: empty sides, shifted copies, reversed copies."""
    rng = random.Random(seed)
    pairs = []
    for k in range(count):
        uid = f"spk{k % 5}_u{k:04d}"
        n = rng.randint(1, 14)
        ref = [rng.choice(VOCAB) for _ in range(n)]
        kind = rng.random()
        if k in (7, 91):
            ref = []  # empty reference: nothing to score, or all insertions
            hyp = [] if k == 7 else [rng.choice(VOCAB) for _ in range(2)]
        elif kind < 0.08:
            hyp = []  # empty hypothesis (all deletions)
        elif kind < 0.16:
            s = rng.randint(1, 3)  # shifted: where sclite's 3/3/4 weights beat plain Levenshtein
            hyp = ref[s:] + [rng.choice(VOCAB) for _ in range(s)]
        elif kind < 0.20:
            hyp = list(reversed(ref))
        else:
            hyp = []
            for w in ref:
                r = rng.random()
                if r < 0.12:
                    continue  # deletion
                hyp.append(rng.choice(VOCAB) if r < 0.27 else w)  # substitution (or same word)
                while rng.random() < 0.10:
                    hyp.append(rng.choice(VOCAB))  # insertion
        pairs.append((uid, ref, hyp))
    return pairs


def write_trn(path, rows):
    with open(path, "w", encoding="utf-8") as f:
        for uid, ws in rows:
            f.write((" ".join(ws) + " " if ws else "") + f"({uid})\n")


def find_sclite():
    for cand in ("/usr/lib/sctk/bin/sclite", shutil.which("sclite")):
        if cand and pathlib.Path(cand).exists():
            return [cand]
    if shutil.which("sctk"):
        return [shutil.which("sctk"), "sclite"]
    sys.exit("sclite not found: install the Debian package `sctk` (apt-get install sctk)")


def alignment_ops(ref_line, hyp_line):
    """sclite's alignment columns as a string of C/S/D/I ('-' when empty): a column of stars on
    one side is an insertion or deletion, errors are upper-cased (case-insensitive scoring)."""
    ref, hyp = ref_line.split(), hyp_line.split()
    if len(ref) != len(hyp):
        sys.exit(f"unaligned sclite columns:\nREF:{ref_line}\nHYP:{hyp_line}")
    ops = ""
    for r, h in zip(ref, hyp):
        if set(r) == {"*"}:
            ops += "I"
        elif set(h) == {"*"}:
            ops += "D"
        else:
            ops += "C" if r.lower() == h.lower() else "S"
    return ops or "-"


def make(out_dir):
    out_dir = pathlib.Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    pairs = sentence_pairs()
    ref_trn, hyp_trn = out_dir / "metrics_ref.trn", out_dir / "metrics_hyp.trn"
    write_trn(ref_trn, [(u, r) for u, r, _ in pairs])
    write_trn(hyp_trn, [(u, h) for u, _, h in pairs])
    name = "metrics_sclite_out"
    for ext in (".raw", ".pra"):
        (out_dir / (name + ext)).unlink(missing_ok=True)
    # DP alignment with the default weights (no -d), case-insensitive (our words are lowercase),
    # rsum: raw count summary (.raw), pra: per-utterance Scores lines (.pra).
    cmd = find_sclite() + ["-r", str(ref_trn), "trn", "-h", str(hyp_trn), "trn", "-i", "spu_id",
                           "-o", "rsum", "pra", "-O", str(out_dir), "-n", name]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"sclite failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stdout}{proc.stderr}")

    raw = (out_dir / (name + ".raw")).read_text()
    m = re.search(r"\|\s*Sum\s*\|\s*(\d+)\s+(\d+)\s*\|"
                  r"\s*(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)", raw)
    if not m:
        sys.exit(f"no Sum line in sclite's raw summary:\n{raw}")
    snt, wrd, corr, sub, dele, ins, err = map(int, m.groups())

    pra = (out_dir / (name + ".pra")).read_text()
    # No REF/HYP lines when both sides are empty.
    utts = re.findall(r"^id: \((\S+)\)\s*\nScores: \(#C #S #D #I\) (\d+) (\d+) (\d+) (\d+)"
                      r"\s*\n(?:REF:(.*)\nHYP:(.*)\n)?", pra, re.M)
    # sclite's own consistency, so the C++ side can rely on both views.
    sums = [sum(int(u[k]) for u in utts) for k in range(1, 5)]
    for u in utts:
        ops = alignment_ops(u[5], u[6])
        if [ops.count(x) for x in "CSDI"] != [int(v) for v in u[1:5]]:
            sys.exit(f"sclite alignment of {u[0]} disagrees with its Scores line: {ops} {u[1:5]}")
    if len(utts) != len(pairs) or snt != len(pairs) or sums != [corr, sub, dele, ins] \
            or err != sub + dele + ins or wrd != corr + sub + dele \
            or wrd != sum(len(r) for _, r, _ in pairs):
        sys.exit(f"sclite outputs disagree: {len(utts)} utterances, sums {sums}, "
                 f"Sum line {m.group(0)!r}")
    with open(out_dir / "metrics_sclite.txt", "w") as f:
        f.write(f"total {snt} {wrd} {corr} {sub} {dele} {ins} {err}\n")
        for uid, c, s, d, i, ref_line, hyp_line in utts:
            f.write(f"utt {uid} {c} {s} {d} {i} {alignment_ops(ref_line, hyp_line)}\n")
    print(f"sclite: {snt} sentences, {wrd} words, C {corr} S {sub} D {dele} I {ins} "
          f"(WER {100.0 * err / wrd:.2f}%)")


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] != "make":
        sys.exit(__doc__)
    make(sys.argv[2])
