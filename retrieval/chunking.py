"""Chunking: documents cut into passages that embed well and can be cited exactly.

Chunks follow the document's structure (a heading starts a new chunk, paragraphs stay
whole where they fit) because a passage about one topic embeds closer to a question about
it than a window cut at an arbitrary offset. Every chunk is an exact slice of the text, so
its span points at the characters a citation rests on.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

__all__ = ["Chunk", "chunk_text", "document_title"]

_HEADING = re.compile(r"#{1,6}\s+(.+?)\s*#*\s*$")


@dataclass(frozen=True)
class Chunk:
    """A slice of a document: text == document[start:end]."""

    text: str
    start: int
    end: int


def document_title(text: str, fallback: str) -> str:
    """The first markdown heading, else the fallback (the file stem)."""
    for line in text.splitlines():
        match = _HEADING.match(line.strip())
        if match:
            return match.group(1)
    return fallback


def _blocks(text: str, target: int) -> Iterator[tuple[int, int, bool]]:
    """Paragraph and heading spans (start, end, is_heading); long paragraphs cut near target."""
    pos, start, end = 0, -1, -1
    for line in text.splitlines(keepends=True):
        stripped = line.strip()
        if not stripped or _HEADING.match(stripped):
            if start >= 0:
                yield from _cut(text, start, end, target)
                start = -1
            if stripped:
                yield pos + line.index(stripped[0]), pos + len(line.rstrip()), True
        else:
            if start < 0:
                start = pos + line.index(stripped[0])
            end = pos + len(line.rstrip())
        pos += len(line)
    if start >= 0:
        yield from _cut(text, start, end, target)


def _cut(text: str, start: int, end: int, target: int) -> Iterator[tuple[int, int, bool]]:
    """Split one paragraph at sentence ends (else spaces) into pieces of at most target."""
    while end - start > target:
        window = text[start : start + target]
        cut = max(window.rfind(". "), window.rfind("? "), window.rfind("! "), window.rfind("\n"))
        cut = cut + 1 if cut > target // 2 else window.rfind(" ")
        if cut <= 0:
            cut = target
        yield start, start + cut, False
        start += cut
        while start < end and text[start].isspace():
            start += 1
    yield start, end, False


def _overlap_start(text: str, start: int, end: int, overlap: int) -> int:
    """Where the next chunk begins so it repeats about `overlap` chars, from a sentence or word."""
    begin = max(start, end - overlap)
    tail = text[begin:end]
    sentence = re.search(r"[.!?]\s+(?=\S)", tail)
    if sentence:
        return begin + sentence.end()
    space = tail.find(" ")
    return begin + space + 1 if 0 <= space < len(tail) - 1 else end


def chunk_text(text: str, *, target: int = 800, overlap: int = 120) -> list[Chunk]:
    """Pack paragraphs into chunks of about `target` chars, starting a new one at headings.

    A heading does not cut a chunk that is still short: tiny chunks embed poorly. A chunk
    cut for size repeats the last ~`overlap` chars of the one before, so a fact that
    straddles the cut is still whole in one of them.
    """
    spans: list[tuple[int, int]] = []
    start = end = -1
    has_body = False
    for block_start, block_end, heading in _blocks(text, target):
        if start >= 0 and has_body and ((heading and end - start >= target // 4) or block_end - start > target):
            spans.append((start, end))
            resume = _overlap_start(text, start, end, overlap)
            start = block_start if heading or resume >= end else resume
            has_body = False
        if start < 0:
            start = block_start
        end = block_end
        has_body = has_body or not heading
    if start >= 0:
        spans.append((start, end))
    return [Chunk(text[s:e], s, e) for s, e in spans]
