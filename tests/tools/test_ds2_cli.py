#!/usr/bin/env python3
"""End-to-end test of examples/ds2: asrkit-train-ds2 and asrkit-transcribe on a 30-utterance
corpus made here by tools/make-corpus. It checks the mechanics, not accuracy (a few steps of a
tiny model): the files a run writes (log, checkpoints with config/vocabulary metadata and optimizer
state, a valid PNG), that --resume continues from the last epoch, that transcription prints one
line per file, JSON with word timestamps inside the audio, WER/CER for a manifest, LM decoding
that spells only the LM's words (tools/make-lm), and that bad
input (missing model, bad config, unknown option, a checkpoint without ds2 metadata) exits
non-zero with a message naming the problem.

    test_ds2_cli.py TRAIN_BINARY TRANSCRIBE_BINARY WORKDIR
"""
import json
import os
import shutil
import struct
import subprocess
import sys

train_bin, transcribe_bin, work = sys.argv[1:4]
root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
shutil.rmtree(work, ignore_errors=True)
os.makedirs(work)
corpus = os.path.join(work, "corpus")
subprocess.run([sys.executable, os.path.join(root, "tools", "make-corpus"), corpus, "--utterances", "30",
                "--seed", "3", "--quiet", "--jobs", "1"], check=True)

# A config with the real 161 bins, small enough for seconds of training.
config = os.path.join(work, "micro.json")
with open(config, "w") as f:
    json.dump({"name": "micro", "convs": [{"channels": 4, "kernel": [41, 11], "stride": [8, 2], "padding": [20, 5]}],
               "rnn_layers": 1, "hidden": 16}, f)


def run(cmd, ok=True):
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if ok and r.returncode != 0:
        sys.exit(f"FAILED ({r.returncode}): {' '.join(cmd)}\n{r.stdout}\n{r.stderr}")
    return r


def check(cond, what):
    if not cond:
        sys.exit("FAILED: " + what)


def metadata(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
    return header.pop("__metadata__", {}), header


out = os.path.join(work, "run")
train = [train_bin, "--train", os.path.join(corpus, "train.jsonl"), "--dev", os.path.join(corpus, "dev.jsonl"),
         "--out", out, "--config", config, "--batch", "8", "--threads", "1"]
r = run(train + ["--epochs", "2"])
check("epoch 2" in r.stdout and "dev CER" in r.stdout, "the log shows two epochs with dev CER:\n" + r.stdout)
for name in ("log.txt", "last.safetensors", "best.safetensors", "curves.png"):
    check(os.path.isfile(os.path.join(out, name)), name + " written")
with open(os.path.join(out, "curves.png"), "rb") as f:
    check(f.read(8) == b"\x89PNG\r\n\x1a\n", "curves.png is a PNG")
meta, tensors = metadata(os.path.join(out, "last.safetensors"))
check(meta.get("epoch") == "2", "last checkpoint at epoch 2, got " + str(meta.get("epoch")))
check(json.loads(meta["ds2.config"])["hidden"] == 16, "config stored in the checkpoint")
check(meta["ds2.vocabulary"].split("\n")[:3] == ["<blank>", " ", "'"], "vocabulary stored in the checkpoint")
check(any(k.startswith("optimizer.") for k in tensors), "optimizer state in last.safetensors")
check("conv.0.norm.running_mean" in tensors and "rnn.0.weight_ih_l0" in tensors and "fc.weight" in tensors,
      "state_dict names: " + ", ".join(sorted(tensors)[:8]))
check(len(json.loads(meta["history"])) == 2, "history of 2 epochs")

r = run(train + ["--epochs", "3", "--resume"])
check("resumed after epoch 2" in r.stdout and "epoch 3" in r.stdout and "epoch 1 " not in r.stdout,
      "--resume continues at epoch 3:\n" + r.stdout)
check(metadata(os.path.join(out, "last.safetensors"))[0]["epoch"] == "3", "epoch 3 after resume")

model = os.path.join(out, "last.safetensors")
wavs = [os.path.join(corpus, json.loads(line)["audio"]) for line in open(os.path.join(corpus, "test.jsonl"))]
r = run([transcribe_bin, model] + wavs + ["--threads", "1"])
lines = r.stdout.strip("\n").split("\n")
check(len(lines) == len(wavs) and all(l.split("\t")[0] == w for l, w in zip(lines, wavs)),
      "one line per file:\n" + r.stdout)
check("RTF" in r.stderr, "real-time factor reported")

r = run([transcribe_bin, model, wavs[0], "--json", "--beam", "4"])
j = json.loads(r.stdout)
dur = [json.loads(line)["duration"] for line in open(os.path.join(corpus, "test.jsonl"))][0]
check(len(j["results"]) == 1 and "text" in j["results"][0] and j["rtf"] > 0, "JSON output: " + r.stdout[:300])
for w in j["results"][0]["words"]:
    check(0 <= w["start"] <= w["end"] <= dur + 0.05, f"word times inside the audio: {w}")
check(" ".join(w["word"] for w in j["results"][0]["words"]) == j["results"][0]["text"], "words spell the text")

r = run([transcribe_bin, model, "--manifest", os.path.join(corpus, "test.jsonl"), "--greedy"])
check("WER" in r.stdout and "CER" in r.stdout and "3 utterances" in r.stdout, "manifest scoring:\n" + r.stdout)

# With a word LM (tools/make-lm on the corpus texts) the hypotheses use only the LM's words.
lm = os.path.join(work, "lm.arpa")
subprocess.run([sys.executable, os.path.join(root, "tools", "make-lm"), os.path.join(corpus, "lm.txt"), lm],
               check=True, stdout=subprocess.DEVNULL)
lm_words = set(w for line in open(os.path.join(corpus, "lm.txt")) for w in line.split())
r = run([transcribe_bin, model, "--manifest", os.path.join(corpus, "test.jsonl"), "--lm", lm, "--json", "--beam", "8"])
texts = [x["text"] for x in json.loads(r.stdout)["results"]]
check(any(texts) and all(w in lm_words for t in texts for w in t.split()),
      "LM decoding spells (some, and only) LM words: " + repr(texts))
r = run([transcribe_bin, model, "--manifest", os.path.join(corpus, "test.jsonl"), "--lm", lm, "--open-vocabulary"])
check("WER" in r.stdout, "open-vocabulary LM decoding runs:\n" + r.stdout)

# Streaming (--stream) with forward-only models: partial text after every chunk, and the final
# text equals the offline result on the same file (ds2::Stream computes the offline logits).
# Per-utterance normalisation feeds the whole file's features in chunks; with --normalize global
# the spectrogram is streamed from the audio too (Ds2SpectrogramStream gives the same frames).
forward_config = os.path.join(work, "micro-forward.json")
with open(forward_config, "w") as f:
    json.dump({"name": "micro-forward", "convs": [{"channels": 4, "kernel": [41, 11], "stride": [8, 2], "padding": [20, 5]}],
               "rnn_layers": 1, "hidden": 16, "bidirectional": False, "lookahead": 2}, f)
for normalize in ("utterance", "global"):
    forward_out = os.path.join(work, "run-forward-" + normalize)
    r = run(train[:-6] + ["--out", forward_out, "--config", forward_config, "--epochs", "2", "--batch", "8",
                          "--threads", "1", "--normalize", normalize])
    forward_model = os.path.join(forward_out, "last.safetensors")
    meta = metadata(forward_model)[0]
    if normalize == "global":
        check("fixed per-bin statistics" in r.stdout, "global normalisation logged:\n" + r.stdout)
        stats = json.loads(meta["ds2.cmvn"])
        check(len(stats["sum"]) == 161 and stats["count"] > 0, "statistics stored in the checkpoint")
    else:
        check("ds2.cmvn" not in meta, "no statistics with per-utterance normalisation")
    for mode in (["--beam", "8", "--lm", lm], ["--greedy"]):
        offline = json.loads(run([transcribe_bin, forward_model, wavs[0], "--json"] + mode).stdout)["results"][0]
        streamed = json.loads(run([transcribe_bin, forward_model, wavs[0], "--json", "--stream", "200"] + mode).stdout)["results"][0]
        check(streamed["text"] == offline["text"] and (offline["text"] or "--lm" in mode),
              f"{normalize} {mode}: streamed {streamed['text']!r} == offline {offline['text']!r}")
        seconds = [p["seconds"] for p in streamed["partials"]]
        check(abs(len(seconds) - dur / 0.2) <= 1 and seconds == sorted(seconds) and abs(seconds[-1] - dur) < 0.02,
              f"{normalize} {mode}: one partial per 200 ms chunk: {seconds}")
        if "--greedy" in mode:  # the micro model spells something, rarely an LM word
            check(any(p["text"] for p in streamed["partials"][:-1]), f"{normalize} {mode}: text before the end")
r = run([transcribe_bin, forward_model, wavs[0], "--stream", "100", "--greedy"])
check(r.stdout.count("\n") >= 2 and "[0.10 s]" in r.stdout, "text mode prints the partials:\n" + r.stdout)
r = run([transcribe_bin, model, wavs[0], "--stream", "200"], ok=False)
check(r.returncode != 0 and "ds2.7" in r.stderr and "bidirectional" in r.stderr, "--stream on a bidirectional model: " + r.stderr)
r = run([transcribe_bin, forward_model, wavs[0], "--stream", "5"], ok=False)
check(r.returncode == 2 and "--stream" in r.stderr, "--stream below 10 ms: " + r.stderr)

# Errors: exit non-zero, message names the problem.
r = run([transcribe_bin, os.path.join(work, "missing.safetensors"), wavs[0]], ok=False)
check(r.returncode != 0 and "missing.safetensors" in r.stderr, "missing model: " + r.stderr)
bad = os.path.join(work, "bad.json")
with open(bad, "w") as f:
    json.dump({"cell": "lstm"}, f)
r = run(train[:-6] + ["--config", bad, "--epochs", "1"], ok=False)
check(r.returncode != 0 and "ds2.1" in r.stderr and "lstm" in r.stderr, "bad config: " + r.stderr)
r = run(train + ["--normalize", "mean"], ok=False)
check(r.returncode == 2 and "--normalize" in r.stderr, "bad --normalize: " + r.stderr)
r = run(train[:-6] + ["--config", bad, "--epochs", "1"], ok=False)
check(r.returncode != 0 and "ds2.1" in r.stderr and "lstm" in r.stderr, "bad config: " + r.stderr)
r = run([train_bin, "--frobnicate"], ok=False)
check(r.returncode == 2 and "--frobnicate" in r.stderr, "unknown option: " + r.stderr)
plain = os.path.join(work, "plain.safetensors")
header = json.dumps({"x": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}).encode()
with open(plain, "wb") as f:
    f.write(struct.pack("<Q", len(header)) + header + b"\0\0\0\0")
r = run([transcribe_bin, plain, wavs[0]], ok=False)
check(r.returncode != 0 and "ds2.6" in r.stderr, "checkpoint without ds2 metadata: " + r.stderr)
print("test_ds2_cli: all checks passed")
