#!/work/anchors/venv/bin/python
"""CTC beam-search decoder anchors on the workloads of bench/decode_workloads.py.

    /work/anchors/venv/bin/python bench/decode_compare.py WORKDIR [--threads 1] [--reps 5]
        [--json OUT] [--profiles peaky hard mandarin] [--beams 16 100 500] [--anchors ...]

Runs with the anchors' virtual environment, NOT Debian's python3: /work/anchors/venv (made with
`/usr/bin/python3 -m venv`, include-system-site-packages = true so that Debian's python3-numpy
and python3-torch are used) holds pip's flashlight-text and kenlm and parlance/ctcdecode built
from source (github.com/parlance/ctcdecode, outside the repo, against Debian's torch). WORKDIR is
the output of `decode_workloads.py WORKDIR`. Nothing of the anchors is in this repository.

Per profile (peaky, hard: V=29, beams 16/100/500; mandarin: V=5000, beams 16/100, no LM), anchor
and configuration, every utterance is decoded one at a time on one thread (OMP/MKL = 1,
torch.set_num_threads(1), ctcdecode num_processes=1); ms_per_utt is the median over --reps runs
of the whole set (after one warm-up run) divided by N. The 1-best of each utterance is kept and
scored against refs.txt / refs_mandarin.txt (CER: character Levenshtein on words joined by single
spaces; mandarin: token error rate).

Configurations, both meant to maximise  ln p_ctc(prefix) + alpha ln p_lm(words) + beta |words|:
  nolm  lexicon-free, no LM.
        flashlight: LexiconFreeDecoder(ZeroLM), lm_weight 0, sil_score 0.
        ctcdecode:  CTCBeamDecoder(model_path=None).
  lm    word 3-gram lm.arpa (irstlm) + lexicon (the LM vocabulary), alpha = 0.5, beta = 1.0.
        flashlight: LexiconDecoder with KenLM(lm.arpa) and a Trie of lexicon.txt (smeared MAX, as
        torchaudio builds it), sil token "|", unk word "<unk>" with unk_score -inf.
        KenLM in flashlight scores in log10 (the ARPA's own unit, no conversion), so its
        lm_weight = alpha * ln 10 = 1.1513; word_score = beta is added per emitted word.
        ctcdecode: CTCBeamDecoder(labels with " " for "|", model_path=lm.arpa, alpha, beta);
        its scorer converts KenLM's log10 to ln (scorer.cpp: cond_prob / log10(e)), so alpha and
        beta map one to one; its lexicon is the LM vocabulary (an OpenFST dictionary built from
        the ARPA's unigrams, == lexicon.txt), OOV words score -1000.
        Differences that remain: flashlight adds </s> at the end (lm.finish), ctcdecode does
        not; flashlight closes the last word only on a trailing "|" (the workloads have one),
        ctcdecode scores an unfinished last word at the end.
  top40 (V=5000 only) nolm with per-frame token pruning to the 40 likeliest labels
        (flashlight beam_size_token = 40, ctcdecode cutoff_top_n = 40, its default), the
        anchors' form of Deep Speech 2's pruning (which also stops at 0.99 cumulative mass).
Common settings: blank 0; flashlight beam_size = beam, beam_size_token = V (no per-frame token
pruning), beam_threshold = --beam-threshold (default 1000, i.e. off; flashlight/torchaudio's
default is 50), log_add = True (hypotheses that merge sum their probabilities, as prefix beam
search does; torchaudio's default is False = max), criterion CTC; ctcdecode beam_width = beam,
cutoff_top_n = V, cutoff_prob = 1.0 (no pruning), log_probs_input = True.
"""
import argparse
import json
import math
import os
import platform
import sys
import time

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ[_var] = "1"

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import anchor  # noqa: E402

import numpy as np  # noqa: E402

ALPHA, BETA = 0.5, 1.0
BEAMS = {"peaky": [16, 100, 500], "hard": [16, 100, 500], "mandarin": [16, 100]}


def load_safetensors(path):
    """name -> numpy array (F32 / I32 / I64 / F64), no safetensors package needed."""
    dtypes = {"F32": np.float32, "F64": np.float64, "I32": np.int32, "I64": np.int64}
    with open(path, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, h in header.items():
        if name == "__metadata__":
            continue
        a, b = h["data_offsets"]
        out[name] = np.frombuffer(data[a:b], dtype=dtypes[h["dtype"]]).reshape(h["shape"])
    return out


def edit_distance(a, b):
    prev = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        cur = [i] + [0] * len(b)
        for j, y in enumerate(b, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x != y))
        prev = cur
    return prev[-1]


def error_rate(hyps, refs):
    return sum(edit_distance(h, r) for h, r in zip(hyps, refs)) / sum(len(r) for r in refs)


def collapse(ids, blank=0):
    out, prev = [], None
    for k in ids:
        if k != prev and k != blank:
            out.append(int(k))
        prev = k
    return out


class Flashlight:
    name = "flashlight-text"

    def __init__(self, work, tokens, V, beam_threshold):
        import flashlight.lib.text.decoder as fl
        from flashlight.lib.text.decoder.kenlm import KenLM
        from flashlight.lib.text.dictionary import Dictionary, create_word_dict, load_words
        self.fl, self.V, self.threshold = fl, V, beam_threshold
        self.tokens = tokens
        self.sil = tokens.index("|") if "|" in tokens else 0
        self.lm_ready = False
        if os.path.exists(os.path.join(work, "lexicon.txt")) and V == 29:
            self.lexicon = load_words(os.path.join(work, "lexicon.txt"))
            self.word_dict = create_word_dict(self.lexicon)
            if not self.word_dict.contains("<unk>"):
                self.word_dict.add_entry("<unk>")
            self.token_dict = Dictionary(os.path.join(work, "tokens.txt"))
            self.kenlm = KenLM(os.path.join(work, "lm.arpa"), self.word_dict)
            self.trie = fl.Trie(V, self.sil)
            start = self.kenlm.start(False)
            for word, spellings in self.lexicon.items():
                wid = self.word_dict.get_index(word)
                _, score = self.kenlm.score(start, wid)
                for spelling in spellings:
                    self.trie.insert([self.token_dict.get_index(t) for t in spelling], wid, score)
            self.trie.smear(fl.SmearingMode.MAX)
            self.lm_ready = True

    def make(self, config, beam):
        fl = self.fl
        if config in ("nolm", "top40"):
            opt = fl.LexiconFreeDecoderOptions(
                beam_size=beam, beam_size_token=40 if config == "top40" else self.V, beam_threshold=self.threshold,
                lm_weight=0.0, sil_score=0.0, log_add=True, criterion_type=fl.CriterionType.CTC)
            return fl.LexiconFreeDecoder(opt, fl.ZeroLM(), self.sil, 0, [])
        opt = fl.LexiconDecoderOptions(
            beam_size=beam, beam_size_token=self.V, beam_threshold=self.threshold,
            lm_weight=ALPHA * math.log(10.0), word_score=BETA, unk_score=float("-inf"),
            sil_score=0.0, log_add=True, criterion_type=fl.CriterionType.CTC)
        return fl.LexiconDecoder(opt, self.trie, self.kenlm, self.sil, 0,
                                 self.word_dict.get_index("<unk>"), [], False)

    def runner(self, config, beam, lp):
        decoder = self.make(config, beam)
        N, T, V = lp.shape
        lp = np.ascontiguousarray(lp, dtype=np.float32)
        results = [None] * N

        def run():
            for u in range(N):
                item = lp[u]
                results[u] = decoder.decode(item.ctypes.data, T, V)[0].tokens
        return run, lambda: [collapse(r) for r in results]


class CtcDecode:
    name = "ctcdecode"

    def __init__(self, work, tokens, V, beam_threshold):
        import torch
        from ctcdecode import CTCBeamDecoder
        torch.set_num_threads(1)
        self.torch, self.cls, self.V = torch, CTCBeamDecoder, V
        self.labels = [" " if t == "|" else ("_" if t == "<blank>" else t) for t in tokens]
        self.arpa = os.path.join(work, "lm.arpa")

    def runner(self, config, beam, lp):
        kw = dict(beam_width=beam, num_processes=1, blank_id=0,
                  cutoff_top_n=40 if config == "top40" else self.V,
                  cutoff_prob=1.0, log_probs_input=True)
        if config == "lm":
            kw.update(model_path=self.arpa, alpha=ALPHA, beta=BETA)
        decoder = self.cls(self.labels, **kw)
        N, T, V = lp.shape
        items = [self.torch.from_numpy(np.array(lp[u:u + 1], dtype=np.float32)) for u in range(N)]
        lens = self.torch.tensor([T], dtype=self.torch.int32)
        results = [None] * N

        def run():
            for u in range(N):
                results[u] = decoder.decode(items[u], lens)

        def best():
            out = []
            for beams, _, _, out_lens in results:
                out.append([int(x) for x in beams[0, 0, :int(out_lens[0, 0])]])
            return out
        return run, best


def text_of(ids, tokens):
    return " ".join("".join(tokens[i] for i in ids).replace("|", " ").split())


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("workdir")
    ap.add_argument("--threads", type=int, default=1, help="only 1 is supported")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--json", help="write the results here")
    ap.add_argument("--profiles", nargs="+", default=list(BEAMS))
    ap.add_argument("--beams", nargs="+", type=int, help="override the beams of every profile")
    ap.add_argument("--anchors", nargs="+", default=["flashlight-text", "ctcdecode"])
    ap.add_argument("--configs", nargs="+", default=["nolm", "lm", "top40"])
    ap.add_argument("--utterances", type=int, help="decode only the first N utterances")
    ap.add_argument("--beam-threshold", type=float, default=1000.0)
    ap.add_argument("--max-seconds", type=float, default=30.0,
                    help="fewer reps when one run of a configuration takes longer than this/reps;"
                         " a warm-up run longer than this is the (only) figure")
    args = ap.parse_args()
    if args.threads != 1:
        sys.exit("decode_compare.py: the anchors are timed single-threaded only (--threads 1)")
    with open(os.path.join(args.workdir, "tokens.txt")) as f:
        tokens = [line.rstrip("\n") for line in f]
    with open(os.path.join(args.workdir, "refs.txt")) as f:
        refs = [line.strip() for line in f if line.strip()]
    with open(os.path.join(args.workdir, "refs_mandarin.txt")) as f:
        refs_m = [[int(x) for x in line.split()] for line in f if line.strip()]

    classes = {"flashlight-text": Flashlight, "ctcdecode": CtcDecode}
    anchors_by_v = {}
    rows = []
    print("| anchor | profile | beam | config | ms/utt | CER % | runs |")
    print("|---|---|---:|---|---:|---:|---:|")
    for profile in args.profiles:
        lp = load_safetensors(os.path.join(args.workdir, profile + ".safetensors"))["log_probs"]
        if args.utterances:
            lp = lp[:args.utterances]
        N, T, V = lp.shape
        if V not in anchors_by_v:
            toks = tokens if V == len(tokens) else ["<blank>"] + [chr(0x4E00 + i) for i in range(1, V)]
            anchors_by_v[V] = [classes[a](args.workdir, toks, V, args.beam_threshold)
                               for a in args.anchors]
        configs = [c for c in args.configs
                   if (c == "lm" and V == len(tokens)) or c == "nolm" or (c == "top40" and V > 40)]
        for beam in args.beams or BEAMS[profile]:
            for config in configs:
                for anc in anchors_by_v[V]:
                    run, best = anc.runner(config, beam, lp)
                    t0 = time.perf_counter()
                    run()  # warm-up; decides how many timed runs fit in --max-seconds
                    first = time.perf_counter() - t0
                    reps = max(1, min(args.reps, int(args.max_seconds / max(first, 1e-9))))
                    if first > args.max_seconds:  # very slow: the one run is the figure
                        reps, ms = 1, 1000 * first / N
                    elif reps > 1:
                        ms = anchor.median_ms(run, reps) / N
                    else:
                        t0 = time.perf_counter()
                        run()
                        ms = 1000 * (time.perf_counter() - t0) / N
                    ids = best()
                    if V == len(tokens):
                        hyps = [text_of(h, tokens) for h in ids]
                        cer = error_rate(hyps, refs[:N])
                    else:
                        hyps = [" ".join(map(str, h)) for h in ids]
                        cer = error_rate(ids, refs_m[:N])
                    rows.append(dict(anchor=anc.name, profile=profile, beam=beam, config=config,
                                     ms_per_utt=round(ms, 3), cer=round(cer, 5), reps=reps,
                                     utterances=N, hyps=hyps))
                    print("| %s | %s | %d | %s | %.1f | %.2f | %d |" %
                          (anc.name, profile, beam, config, ms, 100 * cer, reps), flush=True)
    if args.json:
        meta = dict(machine=platform.processor() or platform.machine(), cpus=os.cpu_count(),
                    loadavg=os.getloadavg(), threads=1, alpha=ALPHA, beta=BETA,
                    flashlight_lm_weight=ALPHA * math.log(10.0), flashlight_word_score=BETA,
                    beam_threshold=args.beam_threshold, date=time.strftime("%Y-%m-%d %H:%M"))
        with open(args.json, "w") as f:
            json.dump(dict(meta=meta, results=rows), f, indent=1)


if __name__ == "__main__":
    main()
