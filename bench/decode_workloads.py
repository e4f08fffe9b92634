#!/usr/bin/python3
"""Fixed synthetic workloads for the CTC decoder benchmarks (asrkit and its anchors).

    decode_workloads.py OUTDIR [--utterances N] [--seed S] [--sentences M]

Runs with Debian's /usr/bin/python3 and python3-numpy only; needs irstlm (/usr/lib/irstlm).
The same seed and numpy version give byte-identical files. Writes into OUTDIR:

  tokens.txt        the V=29 character vocabulary, one per line, line index = token id:
                    "<blank>" (0), "|" (1, word boundary), "'" (2), a..z (3..28); this is
                    tools/make-corpus's VOCAB with "|" for <space>.
  text.txt          M (default 20000) sentences from make-corpus's TextGenerator (imported from
                    tools/make-corpus, seeded "S:decode-lm-text"), lowercase words.
  lm.arpa           word 3-gram of text.txt built with Debian's irstlm exactly as
                    tests/reference/arpa_reference.py does (add-start-end.sh, build-lm.sh -n 3
                    -k 1 with its default Witten-Bell smoothing, compile-lm --text=yes); it has
                    <s>, </s> and <unk>. Scores are log10, as in any ARPA file.
  lexicon.txt       every word of the LM vocabulary (not <s>, </s>, <unk>), sorted:
                    "word<TAB>w o r d |" (flashlight lexicon format, spelling in tokens, ending
                    with the word separator "|").
  refs.txt          the N (default 20) reference transcripts of the emissions, one per line.
                    Each is several held-out sentences of the same generator (seed
                    "S:decode-refs") joined by spaces until it spells 120..170 tokens, so that
                    T=500 frames hold it at a realistic ~3 frames per token.
  peaky.safetensors, hard.safetensors
                    "log_probs" F32 [N, T=500, V=29] log-softmax emissions spelling the refs,
                    "lengths" I32 [N] (all 500). Token sequence of a ref: its words' letters with
                    "|" between words and one trailing "|" (so that a lexicon decoder that ends
                    words on "|", like flashlight's, can close the last word).
  mandarin.safetensors
                    "log_probs" F32 [N, T=500, V=5000], "lengths" I32 [N]; blank 0.
  refs_mandarin.txt token ids (1..4999) of each mandarin utterance, space-separated.

Acoustic simulation (one numpy Generator per file, seeded from S and the profile name):
  1. Alignment. Each token is emitted for 1..3 frames (1 + Binomial(2, p_long)); the frames
     left over go to blank gaps before each token and after the last one, split by a
     multinomial draw over Gamma(2)-distributed gap weights (gaps before "|" weigh 3x: pauses
     between words); a token equal to its predecessor gets at least one blank frame before it,
     as CTC requires. Total exactly T=500 frames.
  2. Logits, per segment (a run of one token, or a blank gap), so that a token's frames agree
     as a real model's do: Gaussian noise N(0, sigma^2) on every class and frame; + a margin on
     the aligned class (token: N(margin), blank: N(blank_margin)), drawn once per segment and
     jittered per frame by N(0, jitter^2); + a bump N(comp) on each of a few competitor classes
     (letters: n_comp picks among 3 fixed seeded confusable letters per letter, or blank;
     mandarin: 1..6 of 8 fixed Zipf-drawn confusables per token, a third as many in blank gaps,
     those of the next token); + a bump N(edge) on the neighbouring token in the first / last
     frame of a blank gap (boundary smear). log_probs = log_softmax(logits) in float64, stored
     as float32.
  Profiles (greedy CER printed when the script runs; figures for the default seed, N=20):
    peaky     sigma 0.5, margin N(6.5, 0.8), 1 competitor N(2, 1): the aligned class has
              probability ~0.9 on most frames; greedy CER 0.8%.
    hard      sigma 0.5, margin N(3.6, 1.0), blank N(5, 1), 2 competitors N(1.5, 0.8): the
              true letter is often only 2nd or 3rd; mean top-1 prob 0.63; greedy CER ~17%.
    mandarin  V=5000; token ids 1..4999 from a Zipf(1.05) law over a seeded ranking; 100..150
              tokens per utterance; sigma 1.0 over all 5000 classes (a long, flat tail),
              margin N(14, 1.5), competitors N(7, 1.5): a peaky head over a 5000-class tail,
              the regime where Deep Speech 2's per-frame token pruning pays; greedy TER ~4%.
"""
import argparse
import importlib.machinery
import importlib.util
import os
import random
import shutil
import sys
import tempfile

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
T = 500
V_MANDARIN = 5000


def load_by_path(name, path):
    loader = importlib.machinery.SourceFileLoader(name, path)
    spec = importlib.util.spec_from_loader(name, loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


make_corpus = load_by_path("make_corpus", os.path.join(ROOT, "tools", "make-corpus"))
st_io = load_by_path("st_io", os.path.join(ROOT, "tests", "reference", "st_io.py"))
arpa_reference = load_by_path("arpa_reference",
                              os.path.join(ROOT, "tests", "reference", "arpa_reference.py"))

TOKENS = ["<blank>", "|"] + make_corpus.VOCAB[2:]
TOKEN_ID = {t: i for i, t in enumerate(TOKENS)}
assert len(TOKENS) == 29 and TOKENS[2] == "'" and TOKENS[3] == "a"

PROFILES = {
    "peaky": dict(sigma=0.5, margin=(6.5, 0.8), blank_margin=(6.5, 0.8), comp=(2.0, 1.0),
                  edge=(3.0, 1.0), jitter=0.5, n_comp=1, p_long=0.3),
    "hard": dict(sigma=0.5, margin=(3.6, 1.0), blank_margin=(5.0, 1.0), comp=(1.5, 0.8),
                 edge=(2.5, 1.0), jitter=0.5, n_comp=2, p_long=0.3),
}
MANDARIN = dict(sigma=1.0, margin=(14.0, 1.5), blank_margin=(14.0, 1.5), comp=(7.0, 1.5),
                edge=(8.0, 1.5), jitter=0.7, n_comp=(1, 6), n_confuse=8, p_long=0.25, zipf=1.05,
                length=(100, 150))


def spell(sentence):
    """Token ids of a transcript: letters, '|' between words, one trailing '|'."""
    return [TOKEN_ID[c] for c in "|".join(sentence.split()) + "|"]


def make_refs(seed, n, lo=120, hi=170):
    gen = make_corpus.TextGenerator(random.Random("%d:decode-refs" % seed))
    refs = []
    for _ in range(n):
        words = []
        while True:
            s = gen.sentence().split()
            cand = words + s
            length = len(spell(" ".join(cand)))
            if length <= hi:
                words = cand
                if length >= lo:
                    break
        refs.append(" ".join(words))
    return refs


def align(tokens, rng, p_long, blank=0, word_sep=None):
    """Frame labels [T] for one utterance: 1..3 frames per token, blank gaps, total T."""
    L = len(tokens)
    runs = 1 + rng.binomial(2, p_long, size=L)
    forced = np.array([1 if i > 0 and tokens[i] == tokens[i - 1] else 0 for i in range(L)] + [0])
    while runs.sum() + forced.sum() > T:  # only for very long sequences
        runs[np.argmax(runs)] -= 1
    weights = rng.gamma(2.0, 1.0, size=L + 1)
    if word_sep is not None:
        weights[:L] *= np.where(np.array(tokens) == word_sep, 3.0, 1.0)
    free = T - runs.sum() - forced.sum()
    gaps = forced + rng.multinomial(free, weights / weights.sum())
    labels = []
    for i, tok in enumerate(tokens):
        labels += [blank] * gaps[i] + [tok] * runs[i]
    labels += [blank] * gaps[L]
    assert len(labels) == T
    return np.array(labels, dtype=np.int64)


def log_softmax(x):
    m = x.max(axis=-1, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=-1, keepdims=True))


def emissions(labels, V, rng, p, competitors):
    """log_probs [T, V] for frame labels. Per segment (a run of one token, or a blank gap) the
    aligned class gets one margin and each class of competitors(label, next_token) one bump,
    each jittered per frame; a blank gap's first and last frames get a bump on the neighbouring
    token (boundary smear). Independent Gaussian noise on every class and frame."""
    logits = rng.normal(0.0, p["sigma"], size=(T, V))
    starts = [0] + [t for t in range(1, T) if labels[t] != labels[t - 1]] + [T]
    tokens_after = [next((int(labels[e]) for e in starts[i + 1:-1] if labels[e] != 0), 0)
                    for i in range(len(starts) - 1)]
    for i in range(len(starts) - 1):
        t, e = starts[i], starts[i + 1]
        lab = int(labels[t])
        jitter = lambda: rng.normal(0.0, p["jitter"], size=e - t)  # noqa: E731
        logits[t:e, lab] += rng.normal(*p["blank_margin" if lab == 0 else "margin"]) + jitter()
        for c in sorted(set(competitors(lab, tokens_after[i])) - {lab}):
            logits[t:e, c] += rng.normal(*p["comp"]) + jitter()
        if lab == 0 and t > 0:
            logits[t, labels[t - 1]] += rng.normal(*p["edge"])
        if lab == 0 and e < T:
            logits[e - 1, labels[e]] += rng.normal(*p["edge"])
    return log_softmax(logits).astype(np.float32)


def char_profile(name, refs, seed):
    p = PROFILES[name]
    rng = np.random.Generator(np.random.PCG64([seed, sum(map(ord, name))]))
    letters = list(range(3, 29))
    confuse = {k: [int(x) for x in rng.choice([x for x in letters if x != k], size=3, replace=False)]
               for k in letters}
    confuse[1] = [2, 0, 0]   # '|' vs "'" / blank
    confuse[2] = [1, 0, 0]

    def competitors(lab, _next):
        # token: n_comp of its 3 confusable letters or blank; blank gap: none beyond the smear
        if lab == 0:
            return []
        return [0 if rng.random() < 0.25 else confuse[lab][int(rng.integers(3))]
                for _ in range(p["n_comp"])]

    out = np.empty((len(refs), T, len(TOKENS)), dtype=np.float32)
    for u, ref in enumerate(refs):
        labels = align(spell(ref), rng, p["p_long"], word_sep=TOKEN_ID["|"])
        out[u] = emissions(labels, len(TOKENS), rng, p, competitors)
    return out


def mandarin_profile(n, seed):
    p = MANDARIN
    rng = np.random.Generator(np.random.PCG64([seed, 5000]))
    ranking = rng.permutation(np.arange(1, V_MANDARIN))          # rank r -> token id
    freq = 1.0 / np.arange(1, V_MANDARIN) ** p["zipf"]
    freq /= freq.sum()
    cdf = np.cumsum(freq)

    def zipf(size, r):
        return ranking[np.minimum(np.searchsorted(cdf, r.random(size)), len(cdf) - 1)]

    confusables = {}

    def confusable(tok):  # a fixed set of acoustically similar tokens per token (Zipf-drawn)
        if tok not in confusables:
            sub = np.random.Generator(np.random.PCG64([seed, 5000, tok]))
            picks = []
            while len(picks) < p["n_confuse"]:
                c = int(zipf(1, sub)[0])
                if c != tok and c not in picks:
                    picks.append(c)
            confusables[tok] = picks
        return confusables[tok]

    def competitors(lab, next_tok):
        # a token's confusables; in a blank gap, fewer, weaker ones of the token that follows
        k = int(rng.integers(p["n_comp"][0], p["n_comp"][1] + 1))
        if lab == 0:
            k //= 3
        pool = confusable(lab if lab != 0 else next_tok) if (lab or next_tok) else []
        return [int(x) for x in rng.choice(pool, size=min(k, len(pool)), replace=False)]

    out = np.empty((n, T, V_MANDARIN), dtype=np.float32)
    refs = []
    for u in range(n):
        L = int(rng.integers(p["length"][0], p["length"][1] + 1))
        toks = [int(x) for x in zipf(L, rng)]
        refs.append(toks)
        labels = align(toks, rng, p["p_long"])
        out[u] = emissions(labels, V_MANDARIN, rng, p, competitors)
    return out, refs


def greedy(lp, blank=0):
    best = lp.argmax(axis=-1)
    out, prev = [], blank
    for k in best:
        if k != prev and k != blank:
            out.append(int(k))
        prev = k
    return out


def edit_distance(a, b):
    prev = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        cur = [i] + [0] * len(b)
        for j, y in enumerate(b, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x != y))
        prev = cur
    return prev[-1]


def chars(ids):
    return " ".join("".join(TOKENS[i] for i in ids).replace("|", " ").split())


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("outdir")
    ap.add_argument("--utterances", type=int, default=20)
    ap.add_argument("--seed", type=int, default=20240801)
    ap.add_argument("--sentences", type=int, default=20000)
    args = ap.parse_args()
    os.makedirs(args.outdir, exist_ok=True)
    out = lambda name: os.path.join(args.outdir, name)  # noqa: E731

    with open(out("tokens.txt"), "w") as f:
        f.write("\n".join(TOKENS) + "\n")

    gen = make_corpus.TextGenerator(random.Random("%d:decode-lm-text" % args.seed))
    text = [gen.sentence() for _ in range(args.sentences)]
    with open(out("text.txt"), "w") as f:
        f.write("\n".join(text) + "\n")
    if not os.path.exists(arpa_reference.IRSTLM + "/bin/build-lm.sh"):
        sys.exit("decode_workloads.py: irstlm is not installed (apt-get install irstlm)")
    with tempfile.TemporaryDirectory(prefix="asrkit_decode_lm_") as work:
        arpa = arpa_reference.build_lm(work, [s.split() for s in text])
        shutil.copyfile(arpa, out("lm.arpa"))
    model = arpa_reference.Arpa(out("lm.arpa"))
    if model.order != 3 or ("<unk>",) not in model.probs:
        sys.exit("decode_workloads.py: irstlm did not write a 3-gram model with <unk>")
    words = sorted(g[0] for g in model.probs if len(g) == 1 and g[0] not in ("<s>", "</s>", "<unk>"))
    with open(out("lexicon.txt"), "w") as f:
        for w in words:
            f.write("%s\t%s |\n" % (w, " ".join(w)))

    refs = make_refs(args.seed, args.utterances)
    with open(out("refs.txt"), "w") as f:
        f.write("\n".join(refs) + "\n")
    oov = sum(w not in set(words) for r in refs for w in r.split())
    lengths = np.full(args.utterances, T, dtype=np.int32)
    for name in PROFILES:
        lp = char_profile(name, refs, args.seed)
        meta = dict(profile=name, seed=args.seed, blank=0, tokens="tokens.txt", refs="refs.txt",
                    **{k: str(v) for k, v in PROFILES[name].items()})
        st_io.save(out(name + ".safetensors"), {"log_probs": lp, "lengths": lengths}, meta)
        err = sum(edit_distance(chars(greedy(lp[u])), r) for u, r in enumerate(refs))
        top1 = np.mean(np.exp(lp.max(axis=-1)))
        print("%-8s [%d, %d, %d]  greedy CER %.2f%%  mean top-1 prob %.3f" %
              (name, *lp.shape, 100.0 * err / sum(map(len, refs)), top1))

    lp, mrefs = mandarin_profile(args.utterances, args.seed)
    meta = dict(profile="mandarin", seed=args.seed, blank=0, refs="refs_mandarin.txt",
                **{k: str(v) for k, v in MANDARIN.items()})
    st_io.save(out("mandarin.safetensors"), {"log_probs": lp, "lengths": lengths}, meta)
    with open(out("refs_mandarin.txt"), "w") as f:
        f.write("\n".join(" ".join(map(str, r)) for r in mrefs) + "\n")
    err = sum(edit_distance(greedy(lp[u]), r) for u, r in enumerate(mrefs))
    probs = np.exp(np.sort(lp.reshape(-1, V_MANDARIN), axis=-1)[:, ::-1])
    k99 = np.mean(np.argmax(np.cumsum(probs, axis=-1) >= 0.99, axis=-1) + 1)
    print("mandarin [%d, %d, %d]  greedy TER %.2f%%  mean top-1 prob %.3f  "
          "mean labels to 0.99 mass %.1f" % (*lp.shape, 100.0 * err / sum(map(len, mrefs)),
                                              probs[:, 0].mean(), k99))
    print("text.txt %d sentences, lexicon %d words, refs %d (%d OOV words), wrote %s" %
          (len(text), len(words), len(refs), oov, args.outdir))


if __name__ == "__main__":
    main()
