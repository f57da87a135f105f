"""File formats to plain text: txt, md, html, pdf and docx.

Every format becomes markdown-like text whose headings are `#` lines, so one chunker
follows the structure of all of them and one title rule applies. Parsing is strict about
what it cannot read: an unknown suffix, an empty file or bytes that do not parse raise a
DocumentError naming the file, which a batch records and moves past.

A few kilobytes can inflate to gigabytes (a zip bomb), and the parsers inflate whole: a
DOCX (a zip archive) is checked against ArchiveLimits from its directory before any member
is inflated, and a PDF's text stops at the same total (pypdf bounds each stream itself).
Python's zipfile never inflates a member past the size its directory declares, so checking
the declared sizes is enough.
"""

from __future__ import annotations

import io
import re
import zipfile
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import PurePath

from retrieval.chunking import document_title
from retrieval.errors import CorruptDocumentError, EmptyDocumentError, FileTooLargeError, UnsupportedFileError

__all__ = ["SUFFIXES", "ArchiveLimits", "ParsedDocument", "parse_document"]

SUFFIXES = (".md", ".markdown", ".txt", ".html", ".htm", ".pdf", ".docx")
_UNSUPPORTED = "{name}: unsupported file type {suffix!r} (supported: " + ", ".join(SUFFIXES) + ")"
_EMPTY = "{name}: the file is empty"
_NO_TEXT = "{name}: no text could be extracted"
_CORRUPT = "{name}: not a readable {kind} file ({error})"
_BLOCK_TAGS = {"p", "div", "section", "article", "li", "tr", "br", "pre", "blockquote", "table", "ul", "ol", "hr"}
_SKIP_TAGS = {"script", "style", "noscript", "template", "head"}
_DOCX_HEADING = re.compile(r"(?:heading|title)\s*(\d?)", re.IGNORECASE)
_ZIP_SUFFIXES = {".docx"}
_TOO_MANY_MEMBERS = "{name}: the archive holds {count} files, more than {limit}"
_MEMBER_TOO_LARGE = "{name}: {member!r} would inflate to {size} bytes, more than {limit}"
_TOTAL_TOO_LARGE = "{name}: would inflate to {size} bytes, more than {limit}"
_TEXT_TOO_LONG = "{name}: its text runs past {limit} characters"
_TOO_COMPRESSED = "{name}: {member!r} is compressed {ratio:.0f} to 1, more than {limit:.0f} to 1 (a zip bomb?)"
_RATIO_FLOOR = 1024 * 1024
"""Members smaller than this inflated are not held to the ratio: a small file of blanks compresses well."""


@dataclass(frozen=True)
class ArchiveLimits:
    """How far a document may inflate: a zip's members, their sizes and ratios; a PDF's text."""

    max_total_bytes: int = 64 * 1024 * 1024
    """All of a zip's members inflated together, and a PDF's extracted text."""
    max_member_bytes: int = 32 * 1024 * 1024
    max_members: int = 2000
    max_ratio: float = 200.0
    """Inflated over compressed size, for members of 1 MiB or more."""


_DEFAULT_LIMITS = ArchiveLimits()


@dataclass(frozen=True)
class ParsedDocument:
    text: str
    """Markdown-like text: headings are `#` lines, paragraphs are separated by blank lines."""
    title: str


class _HtmlText(HTMLParser):
    """Visible text of a page, with h1-h6 as `#` lines and block elements as paragraphs."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.title = ""
        self._skip = 0
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "title":
            self._in_title = True
        elif tag in _SKIP_TAGS:
            self._skip += 1
        elif len(tag) == 2 and tag[0] == "h" and tag[1] in "123456":
            self.parts.append("\n\n" + "#" * int(tag[1]) + " ")
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n\n")

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False
        elif tag in _SKIP_TAGS:
            self._skip = max(0, self._skip - 1)
        elif (len(tag) == 2 and tag[0] == "h" and tag[1] in "123456") or tag in _BLOCK_TAGS:
            self.parts.append("\n\n")

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data
        elif not self._skip:
            # Inline tags split text into pieces: keep one space where the source had any.
            lead = " " if data[:1].isspace() else ""
            trail = " " if data[-1:].isspace() else ""
            self.parts.append(lead + " ".join(data.split()) + trail if data.strip() else lead)


def _tidy(text: str) -> str:
    """Strip each line and collapse runs of blank lines, so paragraphs are one blank line apart."""
    lines = [line.strip() for line in text.splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip() + "\n"


def _html(data: bytes) -> tuple[str, str]:
    parser = _HtmlText()
    parser.feed(data.decode("utf-8", errors="replace"))
    parser.close()
    return _tidy("".join(parser.parts)), " ".join(parser.title.split())


def _check_archive(name: str, data: bytes, limits: ArchiveLimits) -> None:
    """Refuse a zip whose directory says it inflates too far, before anything is inflated."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        members = archive.infolist()
        if len(members) > limits.max_members:
            raise FileTooLargeError(_TOO_MANY_MEMBERS.format(name=name, count=len(members), limit=limits.max_members))
        total = 0
        for member in members:
            size = member.file_size
            if size > limits.max_member_bytes:
                message = _MEMBER_TOO_LARGE.format(
                    name=name, member=member.filename, size=size, limit=limits.max_member_bytes
                )
                raise FileTooLargeError(message)
            ratio = size / max(member.compress_size, 1)
            if size >= _RATIO_FLOOR and ratio > limits.max_ratio:
                message = _TOO_COMPRESSED.format(name=name, member=member.filename, ratio=ratio, limit=limits.max_ratio)
                raise FileTooLargeError(message)
            total += size
        if total > limits.max_total_bytes:
            raise FileTooLargeError(_TOTAL_TOO_LARGE.format(name=name, size=total, limit=limits.max_total_bytes))


def _pdf(name: str, data: bytes, limits: ArchiveLimits) -> tuple[str, str]:
    from pypdf import PdfReader

    reader = PdfReader(io.BytesIO(data), strict=False)
    pages: list[str] = []
    total = 0
    for page in reader.pages:  # pages may share one huge stream: stop at the limit, not at the end
        pages.append(page.extract_text() or "")
        total += len(pages[-1])
        if total > limits.max_total_bytes:
            raise FileTooLargeError(_TEXT_TOO_LONG.format(name=name, limit=limits.max_total_bytes))
    title = str(reader.metadata.title or "").strip() if reader.metadata is not None else ""
    return _tidy("\n\n".join(pages)), title


def _docx(data: bytes) -> tuple[str, str]:
    import docx

    document = docx.Document(io.BytesIO(data))
    lines: list[str] = []
    for paragraph in document.paragraphs:
        text = paragraph.text.strip()
        if not text:
            continue
        style = paragraph.style.name if paragraph.style is not None and paragraph.style.name else ""
        heading = _DOCX_HEADING.fullmatch(style)
        level = int(heading.group(1) or 1) if heading else 0
        lines.append(f"{'#' * level} {text}" if level else text)
    return "\n\n".join(lines) + "\n", (document.core_properties.title or "").strip()


def parse_document(name: str, data: bytes, limits: ArchiveLimits = _DEFAULT_LIMITS) -> ParsedDocument:
    """Text and title of a file given its name (for the type) and bytes.

    The title is the document's own (HTML <title>, PDF or DOCX properties), else its first
    heading, else the file's stem. A document that would inflate past `limits` raises
    FileTooLargeError.
    """
    path = PurePath(name)
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise UnsupportedFileError(_UNSUPPORTED.format(name=name, suffix=suffix or "(none)"))
    if not data.strip():
        raise EmptyDocumentError(_EMPTY.format(name=name))
    title = ""
    try:
        if suffix in _ZIP_SUFFIXES:
            _check_archive(name, data, limits)
        if suffix in {".html", ".htm"}:
            text, title = _html(data)
        elif suffix == ".pdf":
            text, title = _pdf(name, data, limits)
        elif suffix == ".docx":
            text, title = _docx(data)
        else:
            text = data.decode("utf-8", errors="replace")
    except FileTooLargeError:
        raise
    except (ValueError, KeyError, OSError, zipfile.BadZipFile) as error:
        raise CorruptDocumentError(_CORRUPT.format(name=name, kind=suffix[1:].upper(), error=error)) from error
    except Exception as error:  # parsers of hostile bytes raise anything (pypdf, python-docx): the file's fault
        raise CorruptDocumentError(_CORRUPT.format(name=name, kind=suffix[1:].upper(), error=error)) from error
    if not text.strip():
        raise EmptyDocumentError(_NO_TEXT.format(name=name))
    return ParsedDocument(text=text, title=title or document_title(text, path.stem))
