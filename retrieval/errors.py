"""Failures of the retrieval layer: knowledge bases, their files and their names.

They subclass the one VoicegraphError tree so that the API maps them to one status; a bad
name or a missing folder is the caller's mistake and is also an InputError (HTTP 4xx).
"""

from __future__ import annotations

from model.errors import InputError, VoicegraphError

__all__ = ["InvalidNameError", "RetrievalError", "SourceNotFoundError"]


class RetrievalError(VoicegraphError):
    """A knowledge base could not be read, written or searched."""


class InvalidNameError(RetrievalError, InputError):
    """A tenant or base name cannot name a collection (letters, digits, single - or _)."""


class SourceNotFoundError(RetrievalError, InputError):
    """The folder or file to ingest does not exist or is not what was asked for."""
