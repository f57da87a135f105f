"""The names a document uses: what the recognizer should expect to hear and what tells the
planner which questions the user's documents answer.

A small recognizer hears an invented name as ordinary words ("Zorblat" as "more black"),
and a small planner sends a question about it to the web, because nothing tells either of
them the name exists. The names are picked out once, when a document is written, and kept
with its chunks, so reading a base's vocabulary is one metadata read, not a scan.

A name is a run of capitalised words, with a number or code after it ("Copper Kettle",
"Quintrex 9", "Heron"), or a code ("ZX-4471"). A lone capitalised word that opens a
sentence or a line counts only if the document also capitalises it elsewhere: "Submit"
opens a sentence but is no name; "Zorblat" is, once it is written mid-sentence too.
"""

from __future__ import annotations

import functools
import json
import re
from collections import Counter
from collections.abc import Iterable

__all__ = ["MAX_TERMS", "join_terms", "salient_terms", "split_terms", "uncommon_words", "words_in", "words_of"]

MAX_TERMS = 12
"""Names kept per document."""
_WORD = re.compile(r"[^\W_]+(?:[-./'’][^\W_]+)*")
_CODE = re.compile(r"^(?=.*\d)(?=.*[A-Za-z])[A-Za-z0-9][\w.-]*$")
_POSSESSIVE = re.compile(r"['’]s\b")
_BREAK = re.compile(r"[.!?:;\n]")
_MAX_RUN = 4
_SEPARATOR = "|"
_COMMON = frozenset(
    """i a an the this that these those it its he she they we you my your our their his her what when where who
    why how which yes no not and or but if then so as at by for from in into of on to with is are was were be
    been has have had do does did can could will would should may might must shall also all any each every
    some many most more other such there here please note see thanks thank hello hi mr mrs ms dr st monday
    tuesday wednesday thursday friday saturday sunday mondays tuesdays wednesdays thursdays fridays
    saturdays sundays today tomorrow january february march april may june july august
    september october november december""".split()
)


def salient_terms(text: str, limit: int = MAX_TERMS) -> list[str]:
    """The document's names and codes, most used first (ties: first seen first), at most `limit`."""
    runs = _runs(text)
    inside = {word for run, opens in runs for word in run[1 if opens else 0 :]}
    counts: Counter[str] = Counter()
    first_seen: dict[str, int] = {}
    for run, opens in runs:
        alone = not any(w[:1].isupper() for w in run[1:])
        if opens and (run[0].lower() in _COMMON or (alone and run[0] not in inside)):
            run = run[1:]  # "When ...", or a word seen only where any word is capitalised
        while run and run[0].lower() in _COMMON:
            run = run[1:]
        while run and run[-1].lower() in _COMMON:
            run = run[:-1]
        if not run or not any(w[0].isupper() or _CODE.match(w) for w in run):
            continue
        term = " ".join(run)
        counts[term] += 1
        first_seen.setdefault(term, len(first_seen))
    ranked = sorted(counts, key=lambda t: (-counts[t], first_seen[t]))
    return ranked[:limit]


def uncommon_words(names: Iterable[str]) -> tuple[str, ...]:
    """The words of `names` that are no common English word, lower-cased, each once: "Veldt"
    of "The Veldt bridge", "Zorblat", "ZX-4471"; not "Berlin", "UTC" or "Heron".

    Common means held whole by the packaged embedder's vocabulary: the 30,522 word pieces of
    uncased English BERT, which spell places, people and things most text names ("berlin",
    "paris", "ford", "transit") as one piece and invented or rare names ("zorblat", "hexlow",
    "okonkwo", "kestrel") as several. A document's name made of such words is one only that
    document knows, so a question that says it is a question about the document; "What time
    is it in Berlin?" is not, though a travel policy names Berlin."""
    common = _common_words()
    words = (word.lower() for name in names for word in words_in(name))
    return tuple(dict.fromkeys(w for w in words if len(w) > 2 and w not in common and w not in _COMMON))


def words_in(text: str) -> list[str]:
    """The words of `text` in order, as written ("ZX-4471" and "Raman's" each one word)."""
    return _WORD.findall(text)


def words_of(text: str) -> set[str]:
    """The words `text` says, lower-cased, without a possessive's "'s" ("Priya Raman's")."""
    return {word.casefold() for word in words_in(_POSSESSIVE.sub("", text))}


@functools.cache
def _common_words() -> frozenset[str]:
    from retrieval.embedder import minilm_model_path

    with open(minilm_model_path() / "tokenizer.json", encoding="utf-8") as file:
        pieces = json.load(file)["model"]["vocab"]
    return frozenset(piece for piece in pieces if piece.isalpha())


def _runs(text: str) -> list[tuple[list[str], bool]]:
    """Runs of capitalised words (with numbers and codes after them), and whether each opens a sentence."""
    runs: list[tuple[list[str], bool]] = []
    current: list[str] = []
    opens = at_start = True
    previous_end = 0
    for match in _WORD.finditer(text):
        word = match.group(0).rstrip(".-")
        gap = text[previous_end : match.start()]
        previous_end = match.end()
        if current and (gap.strip() or "\n" in gap):  # punctuation or a line break ends a run
            runs.append((current, opens))
            current = []
        if _BREAK.search(gap):
            at_start = True
        if (word[:1].isupper() or _CODE.match(word) or (current and word[:1].isdigit())) and len(current) < _MAX_RUN:
            if not current:
                opens = at_start
            current.append(word)
        elif current:
            runs.append((current, opens))
            current = []
        at_start = False
    if current:
        runs.append((current, opens))
    return runs


def join_terms(terms: list[str]) -> str:
    """Terms as one metadata value (Chroma keeps strings, not lists)."""
    return _SEPARATOR.join(t.replace(_SEPARATOR, " ") for t in terms)


def split_terms(value: object) -> list[str]:
    return [t for t in str(value or "").split(_SEPARATOR) if t]
