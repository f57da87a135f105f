"""File formats to plain text: txt, md, html, pdf and docx.

Every format becomes markdown-like text whose headings are `#` lines, so one chunker
follows the structure of all of them and one title rule applies. Parsing is strict about
what it cannot read: an unknown suffix, an empty file or bytes that do not parse raise a
DocumentError naming the file, which a batch records and moves past.
"""

from __future__ import annotations

import io
import re
import zipfile
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import PurePath

from retrieval.chunking import document_title
from retrieval.errors import CorruptDocumentError, EmptyDocumentError, UnsupportedFileError

__all__ = ["SUFFIXES", "ParsedDocument", "parse_document"]

SUFFIXES = (".md", ".markdown", ".txt", ".html", ".htm", ".pdf", ".docx")
_UNSUPPORTED = "{name}: unsupported file type {suffix!r} (supported: " + ", ".join(SUFFIXES) + ")"
_EMPTY = "{name}: the file is empty"
_NO_TEXT = "{name}: no text could be extracted"
_CORRUPT = "{name}: not a readable {kind} file ({error})"
_BLOCK_TAGS = {"p", "div", "section", "article", "li", "tr", "br", "pre", "blockquote", "table", "ul", "ol", "hr"}
_SKIP_TAGS = {"script", "style", "noscript", "template", "head"}
_DOCX_HEADING = re.compile(r"(?:heading|title)\s*(\d?)", re.IGNORECASE)


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


def _pdf(data: bytes) -> tuple[str, str]:
    from pypdf import PdfReader

    reader = PdfReader(io.BytesIO(data), strict=False)
    pages = [page.extract_text() or "" for page in reader.pages]
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


def parse_document(name: str, data: bytes) -> ParsedDocument:
    """Text and title of a file given its name (for the type) and bytes.

    The title is the document's own (HTML <title>, PDF or DOCX properties), else its first
    heading, else the file's stem.
    """
    path = PurePath(name)
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise UnsupportedFileError(_UNSUPPORTED.format(name=name, suffix=suffix or "(none)"))
    if not data.strip():
        raise EmptyDocumentError(_EMPTY.format(name=name))
    title = ""
    try:
        if suffix in {".html", ".htm"}:
            text, title = _html(data)
        elif suffix == ".pdf":
            text, title = _pdf(data)
        elif suffix == ".docx":
            text, title = _docx(data)
        else:
            text = data.decode("utf-8", errors="replace")
    except (ValueError, KeyError, OSError, zipfile.BadZipFile) as error:
        raise CorruptDocumentError(_CORRUPT.format(name=name, kind=suffix[1:].upper(), error=error)) from error
    except Exception as error:  # parsers of hostile bytes raise anything (pypdf, python-docx): the file's fault
        raise CorruptDocumentError(_CORRUPT.format(name=name, kind=suffix[1:].upper(), error=error)) from error
    if not text.strip():
        raise EmptyDocumentError(_NO_TEXT.format(name=name))
    return ParsedDocument(text=text, title=title or document_title(text, path.stem))
