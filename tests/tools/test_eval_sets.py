#!/usr/bin/env python3
"""Tests for tools/asrkit_text.py and tools/make-eval-sets (standard library only).

    python3 tests/tools/test_eval_sets.py [TOOLS_DIR]

Unit checks of the text normaliser, then a full run of make-eval-sets on the installed Debian
packages (asterisk-core-sounds-en-wav, asterisk-core-sounds-en, pocketsphinx-testdata, sox)
into a temporary directory. The end-to-end part is skipped (with a message) when the packages
or sox are missing, unless ASRKIT_REQUIRE_EVAL_SETS=1 is set.
"""
import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import unittest
import wave

TOOLS = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else
                     pathlib.Path(__file__).resolve().parents[2] / "tools").resolve()
sys.path.insert(0, str(TOOLS))
import asrkit_text  # noqa: E402

ALPHABET = set("abcdefghijklmnopqrstuvwxyz' ")
ASTERISK_AUDIO = pathlib.Path("/usr/share/asterisk/sounds/en_US_f_Allison")
ASTERISK_TEXT = pathlib.Path("/usr/share/doc/asterisk-core-sounds-en/core-sounds-en.txt.gz")
POCKETSPHINX = pathlib.Path("/usr/share/pocketsphinx/test/data")


class NumberToWords(unittest.TestCase):
    TABLE = [
        (0, "zero"), (7, "seven"), (13, "thirteen"), (20, "twenty"), (25, "twenty five"),
        (99, "ninety nine"), (100, "one hundred"), (101, "one hundred one"),
        (999, "nine hundred ninety nine"), (1000, "one thousand"),
        (1990, "one thousand nine hundred ninety"), (10000, "ten thousand"),
        (100000, "one hundred thousand"), (1000001, "one million one"),
        (1200000, "one million two hundred thousand"),
        (999999999, "nine hundred ninety nine million nine hundred ninety nine thousand "
                    "nine hundred ninety nine"),
    ]

    def test_table(self):
        for n, words in self.TABLE:
            with self.subTest(n=n):
                self.assertEqual(asrkit_text.number_to_words(n), words)

    def test_range(self):
        for bad in (-1, 1000000000):
            with self.assertRaises(ValueError):
                asrkit_text.number_to_words(bad)
        with self.assertRaises(TypeError):
            asrkit_text.number_to_words("5")

    def test_all_small_numbers_in_alphabet(self):
        for n in list(range(0, 2100)) + [123456789, 500000000, 20002, 1001001]:
            words = asrkit_text.number_to_words(n)
            self.assertTrue(set(words) <= ALPHABET, words)
            self.assertEqual(words, " ".join(words.split()))

    def test_ordinals_and_years(self):
        self.assertEqual(asrkit_text.ordinal_to_words(1), "first")
        self.assertEqual(asrkit_text.ordinal_to_words(12), "twelfth")
        self.assertEqual(asrkit_text.ordinal_to_words(40), "fortieth")
        self.assertEqual(asrkit_text.ordinal_to_words(103), "one hundred third")
        self.assertEqual(asrkit_text.year_to_words(1990), "nineteen ninety")
        self.assertEqual(asrkit_text.year_to_words(1905), "nineteen oh five")
        self.assertEqual(asrkit_text.year_to_words(1900), "nineteen hundred")
        self.assertEqual(asrkit_text.year_to_words(2005), "two thousand five")
        self.assertEqual(asrkit_text.year_to_words(2024), "twenty twenty four")
        self.assertEqual(asrkit_text.year_to_words(3000), "three thousand")


class NormalizeText(unittest.TestCase):
    TABLE = [
        ("Hello, World!", "hello world"),
        ("  several   spaces\tand\nlines ", "several spaces and lines"),
        ("25", "twenty five"),
        ("I was born in 1990.", "i was born in nineteen ninety"),
        ("the 1990s", "the nineteen nineties"),
        ("1st, 2nd, 3rd and 22nd", "first second third and twenty second"),
        ("50% off", "fifty percent off"),
        ("R&D", "r and d"),
        ("Salt & pepper", "salt and pepper"),
        ("$5", "five dollars"),
        ("$1.50", "one dollar and fifty cents"),
        ("1,234,567", "one million two hundred thirty four thousand five hundred sixty seven"),
        ("1,990 people", "one thousand nine hundred ninety people"),
        ("a 28.8 kilobit modem", "a twenty eight point eight kilobit modem"),
        ("dial 500", "dial five hundred"),
        ("agent 007", "agent zero zero seven"),
        ("Don't stop; it's 'fine'", "don't stop it's fine"),
        ("\u2018Tis the party\u2019s", "tis the party's"),
        ("A.M.", "a m"),
        ("Mr. Dashwood", "mister dashwood"),
        ("3D audio", "three d audio"),
        ("Call-Forward on No Answer.", "call forward on no answer"),
        ("visit www.asterisk.org.", "visit w w w dot asterisk dot org"),
        ("at [@]", "at"),
        ("<s> he was not an ill disposed young man </s>", "he was not an ill disposed young man"),
        ("Please hold. (simple tone sound plays)", "please hold"),
        ("caf\u00e9 na\u00efve", "cafe naive"),
        ("and/or", "and or"),
    ]
    FAILURES = [
        "",                        # empty
        "   ",                     # whitespace only
        "...",                     # punctuation only
        "[this is a simple beep tone]",  # annotation only
        "(10 seconds of silence)",
        "\u041f\u0440\u0438\u0432\u0435\u0442",  # other script (Cyrillic)
        "\u4f60\u597d",            # other script (CJK)
        "H.323",                   # letter.number: no safe reading
        "press * now",             # '*' without a symbol map
        "1 + 1 = 2",               # unmapped symbols
        "1000000000",              # beyond number_to_words range
        None,
    ]

    def test_table(self):
        for text, expected in self.TABLE:
            with self.subTest(text=text):
                self.assertEqual(asrkit_text.normalize_text(text), expected)

    def test_failures(self):
        for text in self.FAILURES:
            with self.subTest(text=text):
                self.assertIsNone(asrkit_text.normalize_text(text))

    def test_symbols_and_max_digits(self):
        tel = asrkit_text.TELEPHONY_SYMBOLS
        self.assertEqual(asrkit_text.normalize_text("press * then #", symbols=tel),
                         "press star then pound")
        self.assertEqual(asrkit_text.normalize_text("dial 1234"), "dial twelve thirty four")
        self.assertIsNone(asrkit_text.normalize_text("dial 1234", max_digits=4))
        self.assertEqual(asrkit_text.normalize_text("dial 600", max_digits=4),
                         "dial six hundred")

    def test_output_is_in_alphabet(self):
        for text, _ in self.TABLE:
            out = asrkit_text.normalize_text(text)
            self.assertTrue(set(out) <= ALPHABET, out)
            self.assertNotIn("  ", out)
            self.assertEqual(out, out.strip())


def packages_present():
    missing = []
    if shutil.which("sox") is None:
        missing.append("sox")
    if not ASTERISK_AUDIO.is_dir():
        missing.append("asterisk-core-sounds-en-wav")
    if not ASTERISK_TEXT.is_file():
        missing.append("asterisk-core-sounds-en")
    if not POCKETSPHINX.is_dir():
        missing.append("pocketsphinx-testdata")
    return missing


class MakeEvalSets(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        missing = packages_present()
        if missing:
            msg = "missing: " + ", ".join(missing)
            if os.environ.get("ASRKIT_REQUIRE_EVAL_SETS") == "1":
                raise AssertionError(msg)
            raise unittest.SkipTest(msg)
        cls.tmp = tempfile.TemporaryDirectory(prefix="asrkit-eval-sets-")
        cls.out = pathlib.Path(cls.tmp.name) / "out"
        cls.result = subprocess.run([sys.executable, str(TOOLS / "make-eval-sets"), str(cls.out)],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                 timeout=600)

    @classmethod
    def tearDownClass(cls):
        if hasattr(cls, "tmp"):
            cls.tmp.cleanup()

    def manifest(self, source):
        entries = []
        with open(self.out / ("%s.jsonl" % source), encoding="utf-8") as f:
            for line in f:
                self.assertTrue(line.endswith("\n"))
                entry = json.loads(line)
                # keys sorted, exactly the documented ones
                self.assertEqual(list(entry), sorted(entry))
                self.assertEqual(set(entry),
                                 {"audio", "duration", "speaker", "text", "original_text"})
                entries.append(entry)
        return entries

    def test_exit_status_and_summary(self):
        self.assertEqual(self.result.returncode, 0, self.result.stderr)
        self.assertIn("asterisk", self.result.stdout)
        self.assertIn("pocketsphinx", self.result.stdout)
        self.assertIn("minutes", self.result.stdout)

    def check_source(self, source, min_kept, min_minutes):
        entries = self.manifest(source)
        self.assertGreaterEqual(len(entries), min_kept)
        audios = [e["audio"] for e in entries]
        self.assertEqual(audios, sorted(audios), "manifest not sorted")
        self.assertEqual(len(set(audios)), len(audios), "duplicate audio")
        total = 0.0
        for e in entries:
            with self.subTest(audio=e["audio"]):
                self.assertTrue(e["audio"].startswith("wav/%s/" % source))
                self.assertTrue(e["audio"].endswith(".wav"))
                self.assertFalse(pathlib.PurePosixPath(e["audio"]).is_absolute())
                text = e["text"]
                self.assertTrue(text)
                self.assertTrue(set(text) <= ALPHABET, text)
                self.assertEqual(text, " ".join(text.split()))
                self.assertTrue(e["original_text"])
                self.assertTrue(e["speaker"])
                with wave.open(str(self.out / e["audio"]), "rb") as w:
                    self.assertEqual(w.getframerate(), 16000)
                    self.assertEqual(w.getnchannels(), 1)
                    self.assertEqual(w.getsampwidth(), 2)
                    self.assertEqual(w.getcomptype(), "NONE")
                    duration = w.getnframes() / 16000.0
                self.assertGreater(duration, 0.0)
                self.assertAlmostEqual(e["duration"], duration, delta=1e-3)
                total += duration
        self.assertGreaterEqual(total / 60.0, min_minutes)
        return entries

    def test_asterisk(self):
        entries = self.check_source("asterisk", 400, 15.0)
        self.assertEqual(len({e["speaker"] for e in entries}), 1)
        by_audio = {e["audio"]: e for e in entries}
        self.assertEqual(by_audio["wav/asterisk/digits/7.wav"]["text"], "seven")
        self.assertEqual(by_audio["wav/asterisk/vm-Cust1.wav"]["text"], "folder five")
        self.assertEqual(by_audio["wav/asterisk/dictate/forhelp.wav"]["text"],
                         "press zero for help")

    def test_pocketsphinx(self):
        entries = self.check_source("pocketsphinx", 5, 0.3)
        texts = {e["text"] for e in entries}
        self.assertIn("he was not an ill disposed young man", texts)

    def test_skipped(self):
        lines = (self.out / "skipped.txt").read_text(encoding="utf-8").splitlines()
        rows = [l.split("\t") for l in lines if l and not l.startswith("#")]
        self.assertTrue(rows)
        for row in rows:
            self.assertEqual(len(row), 3, row)
            self.assertIn(row[0], ("asterisk", "pocketsphinx"))
            self.assertTrue(row[2])
        reasons = {(r[0], r[1]): r[2] for r in rows}
        self.assertTrue(reasons[("asterisk", "beep")].startswith("no speech"))
        self.assertTrue(reasons[("asterisk", "spy-h323")].startswith("text cannot be normalised"))
        self.assertTrue(any(r.startswith("no transcript") for r in reasons.values()))
        self.assertTrue(any(r.startswith("audio missing") for r in reasons.values()))
        # a skipped prompt never appears in a manifest
        kept = set()
        for source in ("asterisk", "pocketsphinx"):
            kept |= {(source, e["audio"][len("wav/%s/" % source):-len(".wav")])
                     for e in self.manifest(source)}
        self.assertFalse(kept & set(reasons))

    def test_deterministic_with_limit(self):
        out2 = pathlib.Path(self.tmp.name) / "limited"
        res = subprocess.run([sys.executable, str(TOOLS / "make-eval-sets"), str(out2),
                              "--sources", "asterisk", "--limit", "20"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             timeout=300)
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertFalse((out2 / "pocketsphinx.jsonl").exists())
        limited = (out2 / "asterisk.jsonl").read_text(encoding="utf-8").splitlines()
        full = (self.out / "asterisk.jsonl").read_text(encoding="utf-8").splitlines()
        self.assertEqual(len(limited), 20)
        self.assertEqual(limited, full[:20])
        for line in limited:
            rel = json.loads(line)["audio"]
            self.assertEqual((out2 / rel).read_bytes(), (self.out / rel).read_bytes())

    def test_bad_source_rejected(self):
        res = subprocess.run([sys.executable, str(TOOLS / "make-eval-sets"),
                              str(pathlib.Path(self.tmp.name) / "bad"), "--sources", "nope"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.assertNotEqual(res.returncode, 0)


if __name__ == "__main__":
    unittest.main(argv=sys.argv[:1], verbosity=2)
