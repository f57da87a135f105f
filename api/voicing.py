"""Builds the voice library from Settings: its Chroma client, synthesizer and speaker encoder.

Shared by the service (compose.py) and `voicegraph voices`, which manages voices without
loading the planner. The first start of a data dir renders the built-in voices' samples
(seconds); later starts find them in Chroma and on disk.
"""

from __future__ import annotations

import logging
from typing import Any

from api.settings import Settings
from model.base import SpeechSynthesizer
from model.speaker import SpeakerEncoder
from model.voices import VoiceSynthesizer
from retrieval.embedder import MiniLMEmbedder
from retrieval.voices import VoiceLibrary

__all__ = ["chroma_client", "open_voice_library"]

log = logging.getLogger(__name__)


def chroma_client(settings: Settings) -> Any:
    """The Chroma client the settings name (a server, or embedded in the data dir), telemetry off."""
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    chroma = ChromaSettings(anonymized_telemetry=False)
    if settings.chroma_url is not None:
        url = settings.chroma_url
        ssl = url.scheme == "https"
        return chromadb.HttpClient(host=url.host or "localhost", port=url.port or 8000, ssl=ssl, settings=chroma)
    settings.chroma_path.mkdir(parents=True, exist_ok=True)
    return chromadb.PersistentClient(path=str(settings.chroma_path), settings=chroma)


def open_voice_library(
    settings: Settings, tts: SpeechSynthesizer | None = None, embedder: MiniLMEmbedder | None = None
) -> VoiceLibrary:
    """The library with its built-ins rendered; `tts` is reused when it can speak voice ids."""
    synthesizer = tts if isinstance(tts, VoiceSynthesizer) else VoiceSynthesizer.default()
    library = VoiceLibrary(
        chroma_client(settings), embedder or MiniLMEmbedder(), SpeakerEncoder(), synthesizer, settings.voices_path
    )
    rendered = library.ensure_builtins()
    if rendered:
        log.info("rendered %d built-in voices into %s", rendered, settings.voices_path)
    return library
