"""Failures of the retrieval layer: knowledge bases, their files and their names.

They subclass the one VoicegraphError tree so that the API maps them to one status; a bad
name, a missing folder or an unreadable file is the caller's mistake and is also an
InputError (HTTP 4xx). Each per-file problem has its own class so that a batch report and
the HTTP layer can say precisely what was wrong with which file.
"""

from __future__ import annotations

from model.errors import InputError, VoicegraphError

__all__ = [
    "BaseExistsError",
    "BaseNotFoundError",
    "CorruptDocumentError",
    "DocumentError",
    "DocumentNotFoundError",
    "EmptyDocumentError",
    "FileTooLargeError",
    "InvalidFilterError",
    "InvalidNameError",
    "RetrievalError",
    "SourceNotFoundError",
    "UnsupportedFileError",
]


class RetrievalError(VoicegraphError):
    """A knowledge base could not be read, written or searched."""


class InvalidNameError(RetrievalError, InputError):
    """A tenant or base name cannot name a collection (letters, digits, single - or _)."""


class InvalidFilterError(RetrievalError, InputError):
    """A search filter names a field chunks do not have."""


class SourceNotFoundError(RetrievalError, InputError):
    """The folder or file to ingest does not exist or is not what was asked for."""


class BaseNotFoundError(RetrievalError, InputError):
    """The tenant has no knowledge base of that name."""


class BaseExistsError(RetrievalError, InputError):
    """Creating a knowledge base whose name the tenant already uses."""


class DocumentNotFoundError(RetrievalError, InputError):
    """The base holds no document with that id."""


class DocumentError(RetrievalError, InputError):
    """One file could not be ingested; in a batch the others still are."""

    reason = "unreadable"
    """A stable word for reports and clients: unsupported, empty, corrupt, too_large."""


class UnsupportedFileError(DocumentError):
    """The file's type is not one we can read (see retrieval.parsers.SUFFIXES)."""

    reason = "unsupported"


class EmptyDocumentError(DocumentError):
    """The file holds no text (an empty file, or a PDF of scanned images)."""

    reason = "empty"


class CorruptDocumentError(DocumentError):
    """The file claims a type but its bytes do not parse as one."""

    reason = "corrupt"


class FileTooLargeError(DocumentError):
    """The file is over the size limit, so it is refused before it is parsed."""

    reason = "too_large"
