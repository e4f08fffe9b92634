#!/usr/bin/env python3
"""Reference for asrkit's ARPA reader and back-off n-gram scorer.

`make DIR`: writes a seeded corpus from a small template grammar, builds a 3-gram ARPA model
with Debian's irstlm (add-start-end.sh, build-lm.sh, compile-lm), and scores ~50 test sentences
(some with unseen words, some with unseen n-grams) with the pure-Python back-off scorer below,
which shares nothing with asrkit. Writes DIR/arpa_lm.arpa and DIR/arpa_scores.txt, one line per
sentence: "<log10 score>\t<words separated by spaces>" (<s> and </s> implied).

Usage: arpa_reference.py make DIR
"""
import os
import random
import shutil
import subprocess
import sys
import tempfile

IRSTLM = "/usr/lib/irstlm"

DET = ["the", "a", "every", "some", "my"]
ADJ = ["red", "small", "quiet", "old", "happy", "green"]
NOUN = ["cat", "dog", "bird", "child", "teacher", "river", "house", "garden"]
VERB = ["sees", "likes", "finds", "follows", "paints", "hears"]
IVERB = ["sleeps", "runs", "sings", "waits"]
PREP = ["near", "behind", "under", "beside"]
UNSEEN = ["zebra", "quantum", "xylophone", "marmalade"]


def noun_phrase(rng):
    words = [rng.choice(DET)]
    if rng.random() < 0.4:
        words.append(rng.choice(ADJ))
    words.append(rng.choice(NOUN))
    if rng.random() < 0.2:
        words += [rng.choice(PREP)] + [rng.choice(DET), rng.choice(NOUN)]
    return words


def sentence(rng):
    s = noun_phrase(rng)
    if rng.random() < 0.6:
        s += [rng.choice(VERB)] + noun_phrase(rng)
    else:
        s.append(rng.choice(IVERB))
        if rng.random() < 0.3:
            s += [rng.choice(PREP)] + noun_phrase(rng)
    return s


def test_sentences(rng):
    out = [sentence(rng) for _ in range(25)]
    for _ in range(10):  # unseen words
        s = sentence(rng)
        s[rng.randrange(len(s))] = rng.choice(UNSEEN)
        out.append(s)
    for _ in range(10):  # seen words in unseen orders
        s = sentence(rng)
        rng.shuffle(s)
        out.append(s)
    out += [["cat"], ["the"], ["sleeps", "sleeps", "sleeps"], ["zebra", "zebra"],
            DET + NOUN[:3]]
    return out


class Arpa:
    """A plain dict-based ARPA model: probs[(w1..wn)] and backoffs[(w1..wn)] in log10."""

    def __init__(self, path):
        self.probs, self.backoffs, self.order = {}, {}, 0
        section = None
        with open(path, encoding="utf-8") as f:
            for raw in f:
                line = raw.strip()
                if not line:
                    continue
                if line.startswith("\\"):
                    if line == "\\end\\":
                        break
                    if line.endswith("-grams:"):
                        section = int(line[1:line.index("-")])
                        self.order = max(self.order, section)
                    continue
                if section is None:
                    continue  # \data\ counts
                fields = line.split()
                gram = tuple(fields[1:1 + section])
                self.probs[gram] = float(fields[0])
                if len(fields) == section + 2:
                    self.backoffs[gram] = float(fields[-1])

    def word_prob(self, history, word):
        """log10 p(word | history) by the back-off recursion."""
        gram = tuple(history) + (word,)
        if gram in self.probs:
            return self.probs[gram]
        if not history:
            raise KeyError(word)
        return self.backoffs.get(tuple(history), 0.0) + self.word_prob(history[1:], word)

    def sentence(self, words):
        toks = ["<s>"] + [w if (w,) in self.probs else "<unk>" for w in words] + ["</s>"]
        total = 0.0
        for i in range(1, len(toks)):
            total += self.word_prob(toks[max(0, i - self.order + 1):i], toks[i])
        return total


def build_lm(work, corpus):
    env = dict(os.environ, IRSTLM=IRSTLM, PATH=IRSTLM + "/bin:" + os.environ.get("PATH", ""))
    text = os.path.join(work, "text")
    with open(text, "w") as f:
        f.write("\n".join(" ".join(s) for s in corpus) + "\n")
    with open(text) as src, open(text + ".se", "w") as dst:
        subprocess.run([IRSTLM + "/bin/add-start-end.sh"], stdin=src, stdout=dst, check=True,
                       env=env)
    # build-lm.sh makes its scratch folder in the current directory; -k 1: one split.
    subprocess.run([IRSTLM + "/bin/build-lm.sh", "-i", "text.se", "-n", "3", "-o", "lm.ilm.gz",
                    "-k", "1"], cwd=work, check=True, env=env, stdout=subprocess.DEVNULL)
    subprocess.run([IRSTLM + "/bin/compile-lm", "lm.ilm.gz", "--text=yes", "lm.arpa"], cwd=work,
                   check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return os.path.join(work, "lm.arpa")


def make(out_dir):
    if not os.path.exists(IRSTLM + "/bin/build-lm.sh"):
        sys.exit("arpa_reference.py: irstlm is not installed (apt-get install irstlm)")
    rng = random.Random(20240611)
    corpus = [sentence(rng) for _ in range(400)]
    os.makedirs(out_dir, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="asrkit_arpa_") as work:
        arpa = build_lm(work, corpus)
        shutil.copyfile(arpa, os.path.join(out_dir, "arpa_lm.arpa"))
    model = Arpa(os.path.join(out_dir, "arpa_lm.arpa"))
    if model.order != 3 or ("<unk>",) not in model.probs:
        sys.exit("arpa_reference.py: irstlm did not write a 3-gram model with <unk>")
    with open(os.path.join(out_dir, "arpa_scores.txt"), "w") as f:
        for words in test_sentences(rng):
            f.write("%.9f\t%s\n" % (model.sentence(words), " ".join(words)))


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] != "make":
        sys.exit(__doc__)
    make(sys.argv[2])
