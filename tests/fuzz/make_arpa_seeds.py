#!/usr/bin/env python3
"""Writes the seed corpus of fuzz_arpa (tests/fuzz/seeds/arpa/): a few small valid ARPA models
that exercise the reader's tolerance (tabs, CRLF, blank lines, missing back-offs, text before
\\data\\) and the scorer (back-off chains, a missing prefix, no <unk>).

Usage: make_arpa_seeds.py [OUT_DIR]   (default: the seeds folder next to this script)
"""
import os
import sys

TRIGRAM = """\\data\\
ngram 1=6
ngram 2=4
ngram 3=2

\\1-grams:
-1.0\t<s>\t-0.5
-0.7\ta\t-0.3
-0.8\tb\t-0.2
-0.9\tc\t-0.1
-1.2\t</s>
-2.0\t<unk>

\\2-grams:
-0.4\t<s> a\t-0.25
-0.3\ta b\t-0.15
-0.6\tb c
-0.5\tb </s>

\\3-grams:
-0.1\t<s> a b
-0.2\ta b c
\\end\\
"""

# Spaces, CRLF, a header before \data\, no <unk>, positive back-off, -inf.
BIGRAM_CRLF = ("made by hand\r\n\r\n\\data\\\r\nngram  1=        4\r\nngram 2 = 3\r\n\r\n"
               "\\1-grams:\r\n-0.5 <s> -0.1 \r\n-0.3 x 0.2\r\n-0.4 </s>\r\n-inf y\r\n\r\n"
               "\\2-grams:\r\n-0.2 <s> x\r\n  -0.1   x  x  \r\n-0.3 x </s>\r\n\r\n\\end\\\r\n")

# A 4-gram whose prefixes are partly missing, with text after \end\.
FOURGRAM = """\\data\\
ngram 1=5
ngram 2=3
ngram 3=1
ngram 4=1

\\1-grams:
-0.5 <s> -0.3
-0.6 p -0.2
-0.7 q -0.1
-0.8 r
-0.9 </s>

\\2-grams:
-0.2 <s> p -0.05
-0.3 q r -0.04
-0.4 r </s>

\\3-grams:
-0.1 p q r -0.01

\\4-grams:
-0.05 <s> p q r
\\end\\
trailing notes are ignored
"""


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "seeds", "arpa")
    os.makedirs(out, exist_ok=True)
    for name, text in [("trigram.arpa", TRIGRAM), ("bigram_crlf.arpa", BIGRAM_CRLF),
                       ("fourgram_missing_prefix.arpa", FOURGRAM)]:
        with open(os.path.join(out, name), "wb") as f:
            f.write(text.encode("utf-8"))


if __name__ == "__main__":
    main()
