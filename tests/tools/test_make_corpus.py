#!/usr/bin/env python3
"""Test for tools/make-corpus (standard library only).

Usage: test_make_corpus.py PATH/TO/tools/make-corpus

Builds a small corpus twice with the same seed (--jobs 2) and once with --jobs 1 and checks:
byte-identical output, 16 kHz mono 16-bit WAVs, manifest fields, durations matching the WAV
files, texts within vocab.txt, no voice shared between train/dev/test, at least one
real-speaker voice among the test voices (and in the test manifest).
Exits non-zero with a message on the first failure.
"""

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import wave

N = 24
SEED = 1234
SPLITS = ("train", "dev", "test")
VOCAB = ["<blank>", "<space>", "'"] + list("abcdefghijklmnopqrstuvwxyz")
KEYS = {"audio", "duration", "noise", "speaker", "text"}


def fail(msg):
    print("test_make_corpus: FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


def check(cond, msg):
    if not cond:
        fail(msg)


def digest_tree(root):
    out = {}
    for d, _, files in os.walk(root):
        for f in files:
            p = os.path.join(d, f)
            with open(p, "rb") as fh:
                out[os.path.relpath(p, root)] = hashlib.sha256(fh.read()).hexdigest()
    return out


def build(tool, out, jobs):
    cmd = [sys.executable, tool, out, "--utterances", str(N), "--seed", str(SEED),
           "--noise-fraction", "0.5", "--jobs", str(jobs), "--quiet"]
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if r.returncode != 0:
        fail("%s exited %d:\n%s" % (" ".join(cmd), r.returncode,
                                    r.stderr.decode("utf-8", "replace")))


def main():
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    tool = sys.argv[1]
    for exe in ("espeak-ng", "flite", "text2wave", "sox"):
        if shutil.which(exe) is None:
            fail("%s not installed (apt-get install espeak-ng flite festival "
                 "festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts sox)" % exe)
    tmp = tempfile.mkdtemp(prefix="test-make-corpus-")
    try:
        a, b, c = (os.path.join(tmp, x) for x in ("a", "b", "c"))
        build(tool, a, 2)
        build(tool, b, 2)
        build(tool, c, 1)
        da, db, dc = digest_tree(a), digest_tree(b), digest_tree(c)
        check(da == db, "two runs with the same seed differ: %s"
              % sorted(k for k in set(da) | set(db) if da.get(k) != db.get(k))[:5])
        check(da == dc, "--jobs 1 and --jobs 2 differ: %s"
              % sorted(k for k in set(da) | set(dc) if da.get(k) != dc.get(k))[:5])

        for f in ("train.jsonl", "dev.jsonl", "test.jsonl", "lm.txt", "vocab.txt",
                  "voices.json"):
            check(os.path.isfile(os.path.join(a, f)), "missing " + f)
        with open(os.path.join(a, "vocab.txt"), encoding="utf-8") as f:
            vocab = f.read().split("\n")
        check(vocab[-1] == "" and vocab[:-1] == VOCAB, "vocab.txt has unexpected content")
        alphabet = set("abcdefghijklmnopqrstuvwxyz' ")

        with open(os.path.join(a, "voices.json"), encoding="utf-8") as f:
            voices = json.load(f)
        vs = {s: set(voices["splits"][s]) for s in SPLITS}
        check(all(vs[s] for s in SPLITS), "a split has no voices: %s" % vs)
        check(not (vs["train"] & vs["dev"]) and not (vs["train"] & vs["test"])
              and not (vs["dev"] & vs["test"]), "a voice is shared between splits")
        babble = set(voices["babble"])
        check(not (babble & (vs["train"] | vs["dev"] | vs["test"])),
              "babble voices also used in a split")
        real = set(voices["real_speaker"])
        check(real & vs["test"], "no real-speaker voice among the test voices")
        groups = {}
        for v in voices["voices"]:
            groups.setdefault(v["speaker_group"], set()).add(v["split"])
        check(all(len(g) == 1 for g in groups.values()),
              "one human speaker's voices are spread over several splits")

        seen_speakers = {s: set() for s in SPLITS}
        train_texts = []
        total = 0
        for s in SPLITS:
            with open(os.path.join(a, s + ".jsonl"), encoding="utf-8") as f:
                lines = f.read().split("\n")
            check(lines[-1] == "", s + ".jsonl does not end with a newline")
            for line in lines[:-1]:
                total += 1
                row = json.loads(line)
                check(set(row) == KEYS, "%s: keys %s" % (s, sorted(row)))
                check(line == json.dumps(row, sort_keys=True), "%s: keys not sorted" % s)
                t = row["text"]
                check(t and set(t) <= alphabet and "  " not in t and t == t.strip(),
                      "text outside the vocabulary: %r" % t)
                check(row["speaker"] in vs[s], "%s: speaker %s not a %s voice"
                      % (s, row["speaker"], s))
                seen_speakers[s].add(row["speaker"])
                n = row["noise"]
                check(n is None or (set(n) == {"kind", "snr_db"}
                                    and isinstance(n["snr_db"], float)), "bad noise %r" % n)
                check(not os.path.isabs(row["audio"]), "audio path not relative")
                path = os.path.join(a, row["audio"])
                check(os.path.isfile(path), "missing " + row["audio"])
                with wave.open(path, "rb") as w:
                    check(w.getframerate() == 16000, row["audio"] + ": not 16 kHz")
                    check(w.getnchannels() == 1, row["audio"] + ": not mono")
                    check(w.getsampwidth() == 2, row["audio"] + ": not 16-bit")
                    check(w.getcomptype() == "NONE", row["audio"] + ": not PCM")
                    frames = w.getnframes()
                check(frames > 1600, row["audio"] + ": shorter than 0.1 s")
                check(abs(row["duration"] - frames / 16000.0) < 1e-6,
                      "%s: duration %r != %r" % (row["audio"], row["duration"],
                                                 frames / 16000.0))
                if s == "train":
                    train_texts.append(t)
        check(total == N, "manifests hold %d utterances, expected %d" % (total, N))
        check(seen_speakers["test"] & real,
              "no utterance from a real-speaker voice in test.jsonl")
        with open(os.path.join(a, "lm.txt"), encoding="utf-8") as f:
            check(f.read() == "".join(x + "\n" for x in train_texts),
                  "lm.txt is not the training texts one per line")
        wavs = sum(1 for k in da if k.startswith("wav" + os.sep))
        check(wavs == N, "%d WAV files, expected %d" % (wavs, N))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("test_make_corpus: OK (%d utterances, deterministic across runs and --jobs)" % N)
    return 0


if __name__ == "__main__":
    sys.exit(main())
