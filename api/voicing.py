"""Builds the voice library from Settings: its Chroma client, synthesizer and speaker encoder.

Shared by the service (compose.py) and `voicegraph voices`, which manages voices without
loading the planner. The first start of a data dir renders the built-in voices' samples
(seconds); later starts find them in Chroma and on disk.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from api.settings import Settings
from model.base import SpeechSynthesizer
from model.speaker import SpeakerEncoder
from model.voices import VoiceSynthesizer
from retrieval.chroma import open_chroma
from retrieval.embedder import MiniLMEmbedder
from retrieval.registrations import BlockingRegistrations, SyncRegistrations
from retrieval.voices import VoiceLibrary

__all__ = ["chroma_client", "memory_registrations", "open_voice_library"]

log = logging.getLogger(__name__)


def chroma_client(settings: Settings) -> Any:
    """The Chroma the settings name: a server, or embedded in the data dir."""
    url = str(settings.chroma_url) if settings.chroma_url is not None else None
    return open_chroma(path=settings.chroma_path, url=url)


def open_voice_library(
    settings: Settings,
    tts: SpeechSynthesizer | None = None,
    embedder: MiniLMEmbedder | None = None,
    *,
    registrations: SyncRegistrations,
) -> VoiceLibrary:
    """The library with its built-ins rendered; `tts` is reused when it can speak voice ids.
    Tenants' voices are kept in `registrations` (the memory backend's, seen from worker threads)."""
    synthesizer = tts if isinstance(tts, VoiceSynthesizer) else VoiceSynthesizer.default()
    library = VoiceLibrary(
        chroma_client(settings),
        embedder or MiniLMEmbedder(),
        SpeakerEncoder(),
        synthesizer,
        settings.voices_path,
        registrations=registrations,
    )
    rendered = library.ensure_builtins()
    if rendered:
        log.info("rendered %d built-in voices into %s", rendered, settings.voices_path)
    return library


@contextmanager
def memory_registrations(settings: Settings) -> Iterator[SyncRegistrations]:
    """The registrations of the memory backend the settings name, for a caller with no event
    loop (`voicegraph voices`): the backend runs on a loop in a thread of its own meanwhile."""
    from api.compose import open_settings_memory

    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="voicegraph-memory", daemon=True)
    thread.start()
    opened = open_settings_memory(settings)
    try:
        memory = asyncio.run_coroutine_threadsafe(opened.__aenter__(), loop).result()
        try:
            yield BlockingRegistrations(memory.registrations, loop)
        finally:
            asyncio.run_coroutine_threadsafe(opened.__aexit__(None, None, None), loop).result()
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        loop.close()
