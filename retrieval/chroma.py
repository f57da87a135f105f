"""Opening Chroma: embedded in a folder, or a server, always with telemetry off.

Knowledge bases and the voice library share this, so both reach the same Chroma the
settings name, the same way.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from chromadb.api import ClientAPI

__all__ = ["open_chroma"]


def open_chroma(*, path: Path | None = None, url: str | None = None) -> ClientAPI:
    """A client for the server at `url` (`chroma run`, e.g. http://chroma:8000), else embedded at `path`."""
    import chromadb
    from chromadb.config import Settings

    settings = Settings(anonymized_telemetry=False)
    if url is not None:
        parts = urlsplit(url)
        ssl = parts.scheme == "https"
        port = parts.port or (443 if ssl else 8000)
        return chromadb.HttpClient(host=parts.hostname or "localhost", port=port, ssl=ssl, settings=settings)
    if path is None:
        raise ValueError("open_chroma needs a path or a url")
    path.mkdir(parents=True, exist_ok=True)
    return chromadb.PersistentClient(path=str(path), settings=settings)
