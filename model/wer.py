"""Word error rate, for judging what the speech recognizer heard against what was said.

The comparison is on words as a listener would count them, not on spelling: case and
punctuation are dropped, hyphens and apostrophes do not split or join words differently
("twenty-five" is "twenty five", "what's" is "whats"), and numbers written in digits are
spelled out ("9" is "nine", "25" is "twenty five"), because Whisper writes either form for
the same speech and neither is a mishearing. Pure Python, so the product and the tests can
use it without a dependency.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = ["CARDINALS", "normalize_words", "ordinal", "wer", "word_errors"]

_ONES = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
    "sixteen seventeen eighteen nineteen"
).split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
_ORDINAL_ENDS = {"one": "first", "two": "second", "three": "third", "five": "fifth", "eight": "eighth"}
_ORDINAL_ENDS |= {"nine": "ninth", "twelve": "twelfth"}

# A number (with thousands separators or a decimal part) and an optional ordinal suffix.
_NUMBER = re.compile(r"(?<![\w.])(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d+))?(st|nd|rd|th)?(?!\w)")
_JOINERS = re.compile(r"[-‐‑‒–—/_]")  # the dashes Whisper and people write, and slashes
_APOSTROPHES = re.compile(r"['’ʼ`]")
_ACRONYM = re.compile(r"\b(?:[a-z]\.){2,}")  # "p.m.", "u.s." are one word each
_NOT_WORD = re.compile(r"[^\w\s]")


def normalize_words(text: str) -> list[str]:
    """The words of `text` as they are compared: lower case, no punctuation, numbers spelled out."""
    out = _NUMBER.sub(_spell_match, text.lower())
    out = _ACRONYM.sub(lambda m: m.group(0).replace(".", ""), out)
    out = _JOINERS.sub(" ", out)
    out = _APOSTROPHES.sub("", out)
    out = _NOT_WORD.sub(" ", out)
    return out.split()


def word_errors(reference: str, hypothesis: str) -> tuple[int, int]:
    """(substitutions + deletions + insertions, words in the reference).

    Returning the pair rather than a rate lets a caller pool a whole set: the set's WER is
    the sum of the errors over the sum of the reference words, not a mean of rates.
    """
    ref = normalize_words(reference)
    hyp = normalize_words(hypothesis)
    return _edit_distance(ref, hyp), len(ref)


def wer(reference: str | Iterable[tuple[str, str]], hypothesis: str | None = None) -> float:
    """The word error rate of `hypothesis` against `reference`, or of a set of (reference, hypothesis) pairs.

    It can exceed 1 when the hypothesis has many extra words. An empty reference scores 0
    against an empty hypothesis and 1 otherwise, so that words heard in silence count.
    """
    if isinstance(reference, str):
        if hypothesis is None:
            raise TypeError("wer(reference, hypothesis) needs the hypothesis")
        pairs: Iterable[tuple[str, str]] = [(reference, hypothesis)]
    else:
        if hypothesis is not None:
            raise TypeError("pass either two strings or one iterable of pairs")
        pairs = reference
    errors = words = 0
    for ref, hyp in pairs:
        e, n = word_errors(ref, hyp)
        errors += e
        words += n
    if words == 0:
        return 0.0 if errors == 0 else 1.0
    return errors / words


def _edit_distance(ref: list[str], hyp: list[str]) -> int:
    """Word-level Levenshtein distance, one row at a time (utterances are short)."""
    previous = list(range(len(hyp) + 1))
    for i, word in enumerate(ref, start=1):
        current = [i]
        for j, heard in enumerate(hyp, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (word != heard)))
        previous = current
    return previous[-1]


def _spell_match(match: re.Match[str]) -> str:
    whole, fraction, suffix = match.group(1), match.group(2), match.group(3)
    words = _spell(int(whole.replace(",", "")))
    if fraction is not None:
        words += " point " + " ".join(_ONES[int(d)] for d in fraction)
    elif suffix:
        words = ordinal(words)
    return f" {words} "


def _spell(n: int) -> str:
    """A whole number in English words; beyond the billions the digits are read one by one."""
    if n >= 10**12:
        return " ".join(_ONES[int(d)] for d in str(n))
    if n < 20:
        return _ONES[n]
    if n < 100:
        tens, ones = divmod(n, 10)
        return _TENS[tens] + (f" {_ONES[ones]}" if ones else "")
    for size, name in ((10**9, "billion"), (10**6, "million"), (1000, "thousand"), (100, "hundred")):
        if n >= size:
            high, rest = divmod(n, size)
            return f"{_spell(high)} {name}" + (f" {_spell(rest)}" if rest else "")
    raise AssertionError("unreachable")


def ordinal(words: str) -> str:
    """The ordinal of a number in words ("twenty one" -> "twenty first")."""
    head, _, last = words.rpartition(" ")
    if last in _ORDINAL_ENDS:
        last = _ORDINAL_ENDS[last]
    elif last.endswith("y"):
        last = last[:-1] + "ieth"
    else:
        last += "th"
    return f"{head} {last}".strip()


CARDINALS = {word: n for n, word in enumerate(_ONES)} | {word: n * 10 for n, word in enumerate(_TENS) if n >= 2}
"""The words whole numbers are spelled with below a hundred, and their values ("seven": 7, "twenty": 20)."""
