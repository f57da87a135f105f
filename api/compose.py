"""The composition root: builds every part from Settings, once, and hands out the turn runner and session service."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field, replace
from typing import Any

from agent.context import AgentDeps, VoiceActivityDetector
from agent.memory import MemoryBackend, open_memory
from agent.runner import TurnRunner
from agent.session_service import SessionService
from agent.vocabulary import VocabularyCache
from api.forwarded import TrustedProxies
from api.quotas import Quotas
from api.ratelimit import RateLimiter
from api.settings import Settings
from api.telemetry import Metrics, build_tracing
from api.tooling import open_tools
from model.base import Planner, SpeechRecognizer, SpeechSynthesizer
from model.llm import ChatEngine, SteppingEngine
from model.step_audio2 import VoiceClip
from retrieval.embedder import Embedder, MiniLMEmbedder
from retrieval.knowledge import KnowledgeStore
from retrieval.parsers import ArchiveLimits
from retrieval.registrations import BlockingRegistrations
from retrieval.relevance import ToolRelevance
from retrieval.voices import VoiceLibrary
from tools.base import Tool
from tools.builtin.audio_search import audio_search_tool
from tools.custom import TenantTools
from tools.registry import ToolRegistry

__all__ = [
    "DEFAULT_KB",
    "Services",
    "build_engine",
    "build_planner",
    "open_knowledge",
    "open_services",
    "open_settings_memory",
]

log = logging.getLogger(__name__)

DEFAULT_KB = "default"
"""The knowledge base that `--kb DIR` / VOICEGRAPH_KB_DIR fills."""


@dataclass
class Services:
    settings: Settings
    runner: TurnRunner
    """Runs turns."""
    sessions: SessionService
    """Lists, reads and deletes sessions and their traces."""
    knowledge: KnowledgeStore
    load_seconds: dict[str, float] = field(default_factory=dict)
    """How long each part took to build, for the benchmark and the logs."""
    rate_limiter: RateLimiter | None = None
    """Requests per API key per minute; None: unlimited."""
    auth_failures: RateLimiter | None = None
    """Requests refused for their API key, per client address per minute; None: unlimited."""
    quotas: Quotas = field(default_factory=Quotas)
    """Each quota's check and the write it allows, as one step per tenant (held in the memory backend)."""
    proxies: TrustedProxies = field(default_factory=TrustedProxies)
    """The reverse proxies whose X-Forwarded-For names that client address; none by default."""
    tenant_keys: dict[str, str] = field(default_factory=dict)
    """API key -> tenant, parsed once from the settings; empty: one local tenant."""
    tenant_tools: TenantTools | None = None
    """The HTTP tools and MCP servers tenants registered at run time."""
    voices: VoiceLibrary | None = None
    """The voice library (built-ins and tenants' voices); None when `settings.voices` is off."""
    metrics: Metrics = field(default_factory=Metrics)
    """Prometheus metrics (GET /metrics), counted from the agent's spans."""


def _timed(load_seconds: dict[str, float], name: str, started: float) -> None:
    load_seconds[name] = round(time.perf_counter() - started, 2)


def _rate_limiter(memory: MemoryBackend, per_minute: int | None) -> RateLimiter | None:
    """Counted in the memory backend: shared by the replicas on Redis, per process otherwise
    (the callers of each limiter are named apart: `key:...`, `tenant:...`, `address:...`)."""
    if not per_minute:
        return None
    return RateLimiter(memory.counters, per_minute)


def open_knowledge(settings: Settings, embedder: MiniLMEmbedder | None = None) -> KnowledgeStore:
    """The knowledge store: a Chroma server when `chroma_url` is set, else embedded in the data dir.

    The CLI's `kb` commands use this alone, so managing bases never loads the speech models.
    """
    embedder = embedder or MiniLMEmbedder()
    limits = ArchiveLimits(
        max_total_bytes=settings.max_inflated_bytes,
        max_member_bytes=settings.max_inflated_member_bytes,
        max_members=settings.max_archive_members,
        max_ratio=settings.max_compression_ratio,
    )
    options: dict[str, Any] = {"max_file_bytes": settings.max_upload_bytes, "archive_limits": limits}
    if settings.chroma_url is not None:
        return KnowledgeStore.from_url(str(settings.chroma_url), embedder, **options)
    return KnowledgeStore.from_path(settings.chroma_path, embedder, **options)


def tool_relevance(settings: Settings, embedder: Embedder) -> ToolRelevance | None:
    """What tells a call the user's words do not ask for, unless the settings turn it off."""
    if settings.tool_relevance_below <= 0:
        return None
    return ToolRelevance(embedder, below=settings.tool_relevance_below)


def open_settings_memory(settings: Settings) -> AbstractAsyncContextManager[MemoryBackend]:
    """The session memory the settings name (also read alone by `voicegraph trace`)."""
    return open_memory(
        settings.memory_kind,
        settings.sqlite_path,
        redis_url=str(settings.redis_url) if settings.redis_url else None,
        redis_prefix=settings.redis_prefix,
        lease_ms=round(settings.session_lock_s * 1000),
        ttl_s=settings.session_ttl_s,
        max_turns=settings.max_stored_turns,
    )


def build_planner(settings: Settings, *, voice_clip: VoiceClip | None = None) -> Planner:
    """The planner `settings.planner` names: the packaged cascade (default), Step-Audio 2 on
    its server (with token2wav when `vocoder_url` is set), or a served text model.

    `voice_clip` resolves the session voice to a WAV clip for Step-Audio 2 (the vocoder's
    prompt): the voice library's sample clips.
    """
    from model.cascade import CascadePlanner

    api_key = settings.planner_api_key.get_secret_value() if settings.planner_api_key else None
    if settings.planner == "step-audio-2":
        from model.step_audio2 import StepAudio2Planner
        from model.vocoder import HttpToken2Wav

        vocoder = HttpToken2Wav(str(settings.vocoder_url)) if settings.vocoder_url else None
        return StepAudio2Planner(
            str(settings.planner_url),
            settings.planner_model or "step-audio-2-mini",
            api_key=api_key,
            vocoder=vocoder,
            voice_clip=voice_clip,
        )
    if settings.planner == "openai":
        from model.openai_engine import OpenAIEngine
        from model.openai_planner import OpenAIPlanner

        url, model = str(settings.planner_url), settings.planner_model or ""
        if settings.planner_tool_choice == "forced":
            return CascadePlanner(OpenAIEngine(url, model, api_key=api_key))
        return OpenAIPlanner(url, model, api_key=api_key)
    return CascadePlanner(build_engine(settings), reply_bias=settings.reply_bias)


def build_engine(settings: Settings) -> ChatEngine | SteppingEngine:
    """The cascade's text engine on the packaged model: llama.cpp runs the GGUF as it is;
    transformers needs the bf16 copy (converted once, on first use)."""
    from model.assets import assemble_planner_gguf, prepare_planner_model

    if settings.resolved_engine() == "transformers":
        from model.llm import load_engine

        return load_engine(prepare_planner_model(settings.models_root), device=settings.device)
    from model.llama_engine import load_llama_engine

    return load_llama_engine(
        assemble_planner_gguf(settings.models_root),
        context_tokens=settings.context_tokens,
        threads=settings.threads,
        kv_budget_bytes=settings.kv_cache_mb << 20,
        state_dir=settings.data_dir / "kv",
        draft_tokens=settings.draft_tokens,
    )


@asynccontextmanager
async def open_services(
    settings: Settings,
    *,
    planner: Planner | None = None,
    asr: SpeechRecognizer | None = None,
    tts: SpeechSynthesizer | None = None,
    vad: VoiceActivityDetector | None = None,
) -> AsyncIterator[Services]:
    """Build the parts (tests pass their own planner), open memory, and ingest `kb_dir`."""
    loads: dict[str, float] = {}
    engine: asyncio.Task[ChatEngine | SteppingEngine] | None = None
    if planner is None and settings.planner == "cascade":
        # Loading the planner's weights runs in C, outside the GIL: alongside everything else.
        engine = asyncio.create_task(asyncio.to_thread(build_engine, settings))
    try:
        async with _open_services(settings, loads, engine, planner, asr, tts, vad) as services:
            yield services
    finally:
        if engine is not None:  # a start-up that failed elsewhere waits for the load to end
            await asyncio.wait([engine])
            if not engine.cancelled():
                engine.exception()  # raised above where it mattered; not an unretrieved error


@asynccontextmanager
async def _open_services(
    settings: Settings,
    loads: dict[str, float],
    engine: asyncio.Task[ChatEngine | SteppingEngine] | None,
    planner: Planner | None,
    asr: SpeechRecognizer | None,
    tts: SpeechSynthesizer | None,
    vad: VoiceActivityDetector | None,
) -> AsyncIterator[Services]:
    from api.voicing import open_voice_library
    from model.asr import packaged_recognizer
    from model.vad import SileroVAD
    from model.voices import VoiceSynthesizer

    # Opened first: the voice library keeps tenants' voices in it.
    async with open_settings_memory(settings) as memory:
        started = time.perf_counter()
        embedder = MiniLMEmbedder()
        await asyncio.to_thread(embedder.load)  # so the first search does not pay for it under its timeout
        knowledge = open_knowledge(settings, embedder)
        # Changes to a tenant's bases move its generation: every replica reads their names again.
        blocking = BlockingRegistrations(memory.registrations, asyncio.get_running_loop())  # for worker threads
        knowledge.on_change = blocking.touch
        if settings.kb_dir is not None:
            report = await asyncio.to_thread(knowledge.ingest_folder, settings.tenant, DEFAULT_KB, settings.kb_dir)
            log.info("knowledge base %r: %s", DEFAULT_KB, report)
        _timed(loads, "knowledge", started)
        extra_tools: list[Tool] = []
        if tts is None and settings.speak:
            started = time.perf_counter()
            tts = await asyncio.to_thread(VoiceSynthesizer.default)
            _timed(loads, "tts", started)
        voices: VoiceLibrary | None = None
        if settings.voices:
            started = time.perf_counter()
            voices = await asyncio.to_thread(open_voice_library, settings, tts, embedder, registrations=blocking)
            extra_tools.append(audio_search_tool(voices))
            _timed(loads, "voices", started)
        if planner is None:
            started = time.perf_counter()
            if engine is not None:
                await engine  # build_planner then finds it loaded
            planner = build_planner(settings, voice_clip=voices.sample_wav if voices else None)
            _timed(loads, "planner", started)  # what is left of its load once the rest is done
        if asr is None and not planner.speech_native:
            started = time.perf_counter()
            asr = await asyncio.to_thread(
                packaged_recognizer,
                settings.asr_model,
                settings.models_root,
                threads=settings.threads or 0,
                beam_size=settings.asr_beam,
                relisten_below=settings.asr_relisten_logprob,
            )
            _timed(loads, "asr", started)
        deps = AgentDeps(
            planner=planner,
            registry=ToolRegistry(),  # replaced below, once the tools are open
            asr=asr,
            tts=tts,
            vad=vad or SileroVAD(),
            max_tool_rounds=settings.max_tool_rounds,
            history_turns=settings.history_turns,
            max_stored_turns=settings.max_stored_turns,
            max_tool_concurrency=settings.tool_concurrency,
            announce_tools=settings.announce_tools,
            paralinguistics=settings.paralinguistics,
            adapt_delivery=settings.adapt_delivery,
            relevance=tool_relevance(settings, embedder),
            vocabularies=VocabularyCache(memory.registrations.generation),
        )
        async with open_tools(settings, knowledge, memory.registrations, extra_tools) as tooling:
            deps = replace(deps, registry=tooling.registry, tenant_tools=tooling.tenant_tools.tools_for)
            started = time.perf_counter()
            await planner.warm_up(tooling.registry.declarations())
            _timed(loads, "warm_up", started)
            metrics = Metrics()
            tracing = build_tracing(settings, metrics)
            try:
                yield Services(
                    settings=settings,
                    runner=TurnRunner(deps, memory, tracing=tracing),
                    sessions=SessionService(memory),
                    knowledge=knowledge,
                    load_seconds=loads,
                    rate_limiter=_rate_limiter(memory, settings.rate_limit_per_minute),
                    auth_failures=_rate_limiter(memory, settings.auth_failures_per_minute),
                    quotas=Quotas(memory.locks),
                    proxies=TrustedProxies(settings.trusted_proxy_list),
                    tenant_keys=settings.tenant_keys(),
                    tenant_tools=tooling.tenant_tools,
                    voices=voices,
                    metrics=metrics,
                )
            finally:
                await asyncio.to_thread(tracing.shutdown)  # sends the spans still batched for OTLP
    await planner.aclose()
