"""Text normalisation for asrkit evaluation transcripts (standard library only).

The corpus alphabet is `<blank>`, `<space>`, `'` and `a`..`z`, so every text a manifest carries
must be made of `abcdefghijklmnopqrstuvwxyz' ` with single spaces between words.
`normalize_text` turns a written transcript into that form or returns None when it cannot do so
without guessing (another script, an unknown symbol, an ambiguous token, nothing left).

    >>> normalize_text("Press 1, then #.", symbols=TELEPHONY_SYMBOLS)
    'press one then pound'
    >>> number_to_words(1990), year_to_words(1990)
    ('one thousand nine hundred ninety', 'nineteen ninety')

The rules, in the order they are applied, are listed in docs/eval-sets.md.
"""
import re
import unicodedata

ALPHABET = frozenset("abcdefghijklmnopqrstuvwxyz' ")

_ONES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
         "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen",
         "eighteen", "nineteen"]
_TENS = ["", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
_ORDINAL_IRREGULAR = {"one": "first", "two": "second", "three": "third", "five": "fifth",
                      "eight": "eighth", "nine": "ninth", "twelve": "twelfth"}

# Symbols read out in telephone prompts ("press * to ...", "followed by #").
TELEPHONY_SYMBOLS = {"*": "star", "#": "pound"}

# Abbreviations that are read as a word (matched case-insensitively, with their full stop).
_ABBREVIATIONS = {"mr": "mister", "mrs": "missus", "dr": "doctor"}

# Punctuation that is dropped (replaced by a space). Other symbols (*, #, +, =, @, /, ...) are
# spoken differently depending on context, so they are left in place and make the text fail
# unless the caller maps them through `symbols`.
_DROPPED = set(".,;:!?\"()[]{}-\u2013\u2014\u2026_")

MAX_NUMBER = 999_999_999


def _below_thousand(n):
    words = []
    if n >= 100:
        words += [_ONES[n // 100], "hundred"]
        n %= 100
        if n == 0:
            return words
    if n >= 20:
        words.append(_TENS[n // 10])
        if n % 10:
            words.append(_ONES[n % 10])
    else:
        words.append(_ONES[n])
    return words


def number_to_words(n):
    """Cardinal number in words, 0..999999999, without "and": 123 -> "one hundred twenty three"."""
    if not isinstance(n, int) or isinstance(n, bool):
        raise TypeError("number_to_words expects an int")
    if n < 0 or n > MAX_NUMBER:
        raise ValueError("number_to_words supports 0..%d, got %d" % (MAX_NUMBER, n))
    if n == 0:
        return "zero"
    words = []
    for scale, name in ((1_000_000, "million"), (1_000, "thousand")):
        if n >= scale:
            words += _below_thousand(n // scale) + [name]
            n %= scale
    if n:
        words += _below_thousand(n)
    return " ".join(words)


def ordinal_to_words(n):
    """Ordinal number in words: 1 -> "first", 22 -> "twenty second", 100 -> "one hundredth"."""
    words = number_to_words(n).split(" ")
    last = words[-1]
    if last in _ORDINAL_IRREGULAR:
        last = _ORDINAL_IRREGULAR[last]
    elif last.endswith("y"):
        last = last[:-1] + "ieth"
    else:
        last += "th"
    return " ".join(words[:-1] + [last])


def is_year_like(n):
    """Four-digit numbers that are read as years when written without a comma: 1100..2099."""
    return 1100 <= n <= 2099


def year_to_words(n):
    """Year reading: 1990 -> "nineteen ninety", 1905 -> "nineteen oh five",
    1900 -> "nineteen hundred", 2000 -> "two thousand", 2007 -> "two thousand seven",
    2024 -> "twenty twenty four". Falls back to number_to_words outside 1100..2099."""
    if not is_year_like(n):
        return number_to_words(n)
    if 2000 <= n <= 2009:
        return number_to_words(n)
    high, low = divmod(n, 100)
    if low == 0:
        return number_to_words(high) + " hundred"
    if low < 10:
        return number_to_words(high) + " oh " + _ONES[low]
    return number_to_words(high) + " " + number_to_words(low)


def _plural(words):
    """'nineteen ninety' -> 'nineteen nineties', 'six' -> 'sixes'."""
    if words.endswith("y"):
        return words[:-1] + "ies"
    if words.endswith(("x", "s")):
        return words + "es"
    return words + "s"


def _digits_to_words(digits):
    return " ".join(_ONES[int(d)] for d in digits)


class _Unnormalisable(Exception):
    pass


def _integer_words(digits, max_digits):
    """Words for a bare digit string (no commas)."""
    if max_digits is not None and len(digits) >= max_digits:
        raise _Unnormalisable(digits)
    if len(digits) > 1 and digits[0] == "0":
        return _digits_to_words(digits)  # "007" -> "zero zero seven"
    n = int(digits)
    if n > MAX_NUMBER:
        raise _Unnormalisable(digits)
    if len(digits) == 4 and is_year_like(n):
        return year_to_words(n)
    return number_to_words(n)


def _strip_accents(s):
    """'café' -> 'cafe'; letters of other scripts are kept (and fail the final check)."""
    out = []
    for ch in unicodedata.normalize("NFKD", s):
        if unicodedata.combining(ch):
            continue
        out.append(ch)
    return unicodedata.normalize("NFC", "".join(out))


_ANNOTATION = re.compile(r"\[[^\]]*\]|\([^)]*\)|<[^>]*>|\{[^}]*\}")
_MONEY = re.compile(r"\$\s?(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d\d))?(?!\d)")
_AMBIGUOUS_DOT = re.compile(r"[A-Za-z]\.\d|\d\.[A-Za-z]|\d\.\d+\.\d")
_INITIALS = re.compile(r"\b(?:[A-Za-z]\.){2,}|\b(?:[A-Za-z]\.)(?:[A-Za-z])\b")
# Web addresses: a "www." prefix or a common top-level domain, so "end.Start" is not one.
_DOMAIN = re.compile(r"\b(?:www\.)?[A-Za-z][A-Za-z0-9-]*(?:\.[A-Za-z][A-Za-z0-9-]*)*"
                     r"\.(?:com|org|net|edu|gov|info|io|uk|de)\b", re.IGNORECASE)
_ABBREV = re.compile(r"\b(" + "|".join(_ABBREVIATIONS) + r")\.", re.IGNORECASE)
_COMMA_NUMBER = re.compile(r"(?<![\d.])\d{1,3}(?:,\d{3})+(?![\d,])")
_DECIMAL = re.compile(r"(?<![\d.])(\d+)\.(\d+)(?![\d.])")
_ORDINAL = re.compile(r"\b(\d+)(st|nd|rd|th)\b", re.IGNORECASE)
_DECADE = re.compile(r"(?:(?<=\s)|^)'(\d0)s\b|\b(\d+0)'?s\b")
_PERCENT = re.compile(r"(\d)\s*%")
_DIGIT_LETTER = re.compile(r"(?<=\d)(?=[A-Za-z])|(?<=[A-Za-z])(?=\d)")
_INTEGER = re.compile(r"\d+")


def normalize_text(s, symbols=None, max_digits=None):
    """Normalise a transcript to `abcdefghijklmnopqrstuvwxyz' ` with single spaces.

    symbols: extra {character: words} map applied first (e.g. TELEPHONY_SYMBOLS).
    max_digits: if given, a bare digit string with at least this many digits is treated as
        ambiguous (could be read digit by digit, as a year or as a number) and the text fails.
    Returns the normalised text, or None when it cannot be normalised or nothing is left.
    """
    if s is None:
        return None
    try:
        return _normalize(s, symbols or {}, max_digits)
    except _Unnormalisable:
        return None


def _normalize(s, symbols, max_digits):
    s = unicodedata.normalize("NFKC", s)
    s = s.replace("\u2019", "'").replace("\u2018", "'").replace("\u02bc", "'")
    s = s.replace("\u201c", '"').replace("\u201d", '"')
    s = _strip_accents(s)
    # Bracketed annotations: "[beep]", "(10 seconds of silence)", "<s>".
    s = _ANNOTATION.sub(" ", s)
    for ch, words in symbols.items():
        s = s.replace(ch, " %s " % words)
    # Money before anything else touches "$" or the decimal point.
    def money(m):
        dollars = int(m.group(1).replace(",", ""))
        if dollars > MAX_NUMBER:
            raise _Unnormalisable(m.group(0))
        out = number_to_words(dollars) + (" dollar" if dollars == 1 else " dollars")
        if m.group(2) and int(m.group(2)):
            cents = int(m.group(2))
            out += " and " + number_to_words(cents) + (" cent" if cents == 1 else " cents")
        return " %s " % out
    s = _MONEY.sub(money, s)
    s = _PERCENT.sub(r"\1 percent ", s)
    s = s.replace("%", " percent ").replace("&", " and ")
    # "H.323", "1.2.3": no safe reading.
    if _AMBIGUOUS_DOT.search(s):
        raise _Unnormalisable(s)
    s = _ABBREV.sub(lambda m: " %s " % _ABBREVIATIONS[m.group(1).lower()], s)
    # "A.M." / "U.S.A." -> spelled letters.
    s = _INITIALS.sub(lambda m: " %s " % " ".join(c for c in m.group(0) if c.isalpha()), s)
    # "www.asterisk.org" -> "w w w dot asterisk dot org".
    def domain(m):
        parts = m.group(0).split(".")
        return " %s " % " dot ".join(" ".join(p) if p.lower() == "www" else p for p in parts)
    s = _DOMAIN.sub(domain, s)
    def comma_number(m):
        n = int(m.group(0).replace(",", ""))
        if n > MAX_NUMBER:
            raise _Unnormalisable(m.group(0))
        return " %s " % number_to_words(n)  # "1,990" is a number, not a year
    s = _COMMA_NUMBER.sub(comma_number, s)
    def decimal(m):
        return " %s point %s " % (_integer_words(m.group(1), max_digits),
                                  _digits_to_words(m.group(2)))
    s = _DECIMAL.sub(decimal, s)
    def ordinal(m):
        n = int(m.group(1))
        if n > MAX_NUMBER:
            raise _Unnormalisable(m.group(0))
        return " %s " % ordinal_to_words(n)
    s = _ORDINAL.sub(ordinal, s)
    def decade(m):
        if m.group(1):  # '90s
            return " %s " % _plural(number_to_words(int(m.group(1))))
        return " %s " % _plural(_integer_words(m.group(2), max_digits))
    s = _DECADE.sub(decade, s)
    s = _DIGIT_LETTER.sub(" ", s)  # "3D" -> "3 D"
    s = _INTEGER.sub(lambda m: " %s " % _integer_words(m.group(0), max_digits), s)
    s = s.lower()
    s = "".join(" " if ch in _DROPPED else ch for ch in s)
    s = s.replace("/", " ")
    # Apostrophes only inside words.
    s = re.sub(r"(?<![a-z])'+|'+(?![a-z])", " ", s)
    s = " ".join(s.split())
    if not s or any(ch not in ALPHABET for ch in s):
        return None
    return s
