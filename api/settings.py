"""All configuration, read once at the composition root (prefix VOICEGRAPH_)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import AnyHttpUrl, Field, RedisDsn, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from agent.memory import MemoryKind
from api.forwarded import TrustedProxies
from model.asr import RELISTEN_BELOW
from retrieval.relevance import UNRELATED_BELOW
from tools.builtin.weather import FORECAST_URL, GEOCODING_URL
from tools.mcp_tools import McpServerConfig
from tools.outbound import DEFAULT_MAX_RESPONSE_BYTES

__all__ = ["Settings"]

_TENANT = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
RESERVED_TENANT = "builtin"
RESERVED = (
    "the tenant name 'builtin' is reserved for the built-in voices: "
    "choose another in VOICEGRAPH_API_KEYS or VOICEGRAPH_TENANT"
)
BAD_API_KEYS = "VOICEGRAPH_API_KEYS must be 'key:tenant' pairs separated by commas (tenant: letters, digits, _ . -)"


def _default_data_dir() -> Path:
    return Path.home() / ".local" / "share" / "voicegraph"


class Settings(BaseSettings):
    # An empty variable is as if unset: deploy files pass `VOICEGRAPH_X: ${VOICEGRAPH_X:-}` through.
    model_config = SettingsConfigDict(
        env_prefix="VOICEGRAPH_", extra="ignore", hide_input_in_errors=True, env_ignore_empty=True
    )

    data_dir: Path = Field(default_factory=_default_data_dir)
    """SQLite memory, Chroma, and the assembled model live here."""
    model_dir: Path | None = None
    """Where the planner model and Whisper base are assembled and converted; None: the data dir."""
    memory: MemoryKind | None = None
    """Where sessions live; None picks Redis when `redis_url` is set, else SQLite in the data dir."""
    redis_url: RedisDsn | None = None
    """Session memory on Redis (production: replicas share sessions); plain Redis 7 suffices."""
    redis_prefix: str = "voicegraph"
    """Prefix of every Redis key, so deployments can share one Redis."""
    session_lock_s: float = Field(default=30.0, ge=1, le=600)
    """A running turn's lease on its session (Redis): renewed while the turn runs, it frees the
    session this long at most after a replica died mid-turn, so the next turn can run elsewhere."""
    kb_dir: Path | None = None
    """A folder (txt, md, html, pdf, docx) ingested into the default knowledge base at start-up."""
    chroma_url: AnyHttpUrl | None = None
    """A Chroma server (`chroma run`) for knowledge bases; None: embedded Chroma in the data dir."""
    tenant: str = "local"
    """The tenant every request runs as when no API keys are configured."""
    api_keys: SecretStr | None = None
    """`key1:tenantA,key2:tenantB`: requests must bring a key, and see only its tenant's data."""
    rate_limit_per_minute: int | None = Field(default=None, ge=0)
    """Requests one API key (or the local tenant) may make per minute; None or 0: unlimited."""
    auth_failures_per_minute: int = Field(default=20, ge=0)
    """With API keys: requests with a missing or wrong key one client address may make per minute;
    past it, the address's requests get 429 until the minute is over. 0: unlimited."""
    trusted_proxies: str = ""
    """Reverse proxies (addresses or CIDR networks, comma-separated) whose X-Forwarded-For names the
    client address that limit counts; empty: none, and the header is ignored (anyone can write it)."""
    session_ttl_s: int | None = Field(default=None, ge=0)
    """A session idle this long is forgotten (sliding); None or 0: sessions are kept until deleted."""
    max_stored_turns: int = Field(default=50, ge=1)
    """Turns a session keeps; older ones are dropped, and turns the planner no longer sees are compacted."""

    max_upload_bytes: int = Field(default=10 * 1024 * 1024, gt=0)
    """An audio file or voice sample, and each file added to a knowledge base; a request carrying
    audio may be 64 KiB more (the form's other fields), or a third more as base64 in JSON."""
    max_json_bytes: int = Field(default=1024 * 1024, gt=0)
    """Any other request body (JSON); a bigger one is refused with 413 before it is read."""
    max_documents_bytes: int = Field(default=64 * 1024 * 1024, gt=0)
    """One request adding documents to a knowledge base: a batch of files, or a JSON text."""
    max_document_chars: int = Field(default=2_000_000, gt=0)
    """Characters of a text document sent as JSON (`text`)."""
    max_inflated_bytes: int = Field(default=64 * 1024 * 1024, gt=0)
    """What a document may inflate to: a DOCX's (zip) files together, a PDF's text; a zip bomb is refused unread."""
    max_inflated_member_bytes: int = Field(default=32 * 1024 * 1024, gt=0)
    """What one file inside a DOCX (zip) may inflate to."""
    max_archive_members: int = Field(default=2000, gt=0)
    """Files a DOCX (zip) may hold."""
    max_compression_ratio: float = Field(default=200.0, gt=1)
    """How many times its compressed size a file of 1 MiB or more inside a DOCX may inflate to."""
    max_audio_seconds: float = Field(default=60.0, gt=0)

    quota_sessions: int = Field(default=1000, gt=0)
    """Sessions one tenant may keep; a turn that would start one more answers 429."""
    quota_knowledge_bases: int = Field(default=50, gt=0)
    """Knowledge bases one tenant may keep."""
    quota_documents: int = Field(default=10_000, gt=0)
    """Documents one tenant may keep, across its knowledge bases."""
    quota_chunks: int = Field(default=200_000, gt=0)
    """Chunks (passages of about 800 characters) one tenant may keep, across its knowledge bases."""
    quota_tools: int = Field(default=50, gt=0)
    """HTTP tools one tenant may register."""
    quota_mcp_servers: int = Field(default=10, gt=0)
    """MCP servers one tenant may register."""
    quota_voices: int = Field(default=100, gt=0)
    """Voices one tenant may add to the voice library."""
    max_tool_rounds: int = Field(default=3, ge=0, le=10)
    history_turns: int = Field(default=8, ge=0)
    speak: bool = True
    """Synthesize reply audio; off gives text-only turns."""

    tools: list[str] = Field(default_factory=list)
    """Python tools to register, as a JSON list of `package.module:attribute` (functions, LangChain tools)."""
    mcp_servers: list[McpServerConfig] = Field(default_factory=list)
    """MCP servers (stdio or streamable HTTP) as a JSON list; their tools appear as `<name>_<tool>`."""
    tool_allow_private_hosts: str = ""
    """Hosts, addresses or CIDR networks (comma-separated) that tenants' HTTP tools may call though not public."""
    tool_max_response_bytes: int = Field(default=DEFAULT_MAX_RESPONSE_BYTES, gt=0)
    """Bytes of an HTTP tool's response that are read (after inflating gzip); reading stops there."""
    tool_concurrency: int = Field(default=4, ge=1, le=64)
    """Tool calls of one planning step that run at the same time."""
    web_search: Literal["ddgs", "searxng", "off"] = "ddgs"
    """The web_search backend: the ddgs package, a self-hosted SearxNG (`searxng_url`), or none."""
    searxng_url: AnyHttpUrl | None = None
    voices: bool = True
    """Build the voice library (the audio_search tool, /v1/voices); its first start renders the built-in voices."""
    web_search_cache_s: float = Field(default=600.0, ge=0)
    """How long a query's web results are reused."""
    weather: bool = True
    """The get_weather tool (Open-Meteo, no API key); off: not offered to the planner."""
    weather_geocoding_url: AnyHttpUrl = AnyHttpUrl(GEOCODING_URL)
    """Open-Meteo's geocoding API (`/v1/search` under it), or a self-hosted one."""
    weather_forecast_url: AnyHttpUrl = AnyHttpUrl(FORECAST_URL)
    """Open-Meteo's forecast API (`/v1/forecast` under it), or a self-hosted one."""
    weather_cache_s: float = Field(default=600.0, ge=0)
    """How long a place's weather is reused."""

    asr_model: Literal["tiny.en", "base", "tiny.en+base"] = "tiny.en+base"
    """The recognizer: Whisper tiny.en, the multilingual Whisper base (a third fewer words wrong on
    the spoken set, slower), or tiny.en heard again by base when it was unsure (below
    `asr_relisten_logprob`): clear speech at tiny.en's speed, the rest as base hears it
    (`voicegraph bench hearing` compares them)."""
    asr_relisten_logprob: float = Field(default=RELISTEN_BELOW, le=0)
    """tiny.en+base: the mean token log probability under which base hears a question again."""
    asr_beam: int = Field(default=5, ge=1, le=10)
    """The recognizer's beam: 5 heard a fifth fewer words wrong than 1, at the same speed."""

    engine: Literal["auto", "llama", "transformers"] = "auto"
    """The cascade's text engine: llama.cpp on the packaged GGUF (the CPU default), or transformers
    (CUDA hosts); "auto" picks transformers where the planner's device is CUDA, else llama.cpp."""
    device: str | None = None
    """Torch device for the transformers engine ("cpu", "cuda"); None picks CUDA when present."""
    threads: int | None = Field(default=None, gt=0)
    """CPU threads for the models; None uses every core."""
    kv_cache_mb: int = Field(default=256, ge=0)
    """Memory for the KV states of sessions the llama.cpp engine put aside (least recently used out)."""
    context_tokens: int = Field(default=8192, ge=1024, le=32768)
    """The llama.cpp engine's context: the longest prompt (system block, tools and the conversation shown)."""
    draft_tokens: int = Field(default=6, ge=0, le=32)
    """llama.cpp: the most tokens guessed ahead from the conversation and checked in one batch
    (an answer repeating its tool result is written 1.8x as fast, the same greedy text but
    for rare near-ties); 0: none."""
    reply_bias: float = Field(default=0.0, ge=0.0, le=20.0)
    """llama.cpp: added to the logit of answering directly (`reply`) when the planner picks a tool,
    against the lean toward calling that a call opened for the model gives it. 0 by default: at 3
    the packaged model stopped calling BFCL's functions on questions they do not answer (0.15 ->
    0.55 of those cases right) and on chit-chat, but also the voice search and the knowledge base
    on half the questions that needed them (`voicegraph eval`, README's Evaluation)."""
    tool_relevance_below: float = Field(default=UNRELATED_BELOW, ge=0.0, le=1.0)
    """A call of a tool that cannot judge it itself is thought over again, leaning toward answering,
    when the user's words are less similar than this to what the tool does (retrieval/relevance.py:
    cosine of MiniLM sentence embeddings); 0: never."""
    announce_tools: bool = True
    """Say a short line while a tool runs ("Let me check the time."); off waits in silence."""
    paralinguistics: bool = True
    """Measure how each spoken turn was said (pitch, loudness, pace, pauses): shown in the result
    and the trace, and a cue line for the planner when something stands out."""
    adapt_delivery: bool = True
    """Let the reply's pitch and pace follow that cue (calmer and slower for a hurried speaker)."""

    planner: Literal["cascade", "step-audio-2", "openai"] = "cascade"
    """The planner backend: the packaged local cascade, Step-Audio 2 on StepFun's vLLM/SGLang
    server, or a text model on an OpenAI-compatible server (vLLM, SGLang, llama.cpp, Ollama)."""
    planner_url: AnyHttpUrl | None = None
    """The planner server's base URL, ending in /v1 (step-audio-2 and openai)."""
    planner_model: str | None = None
    """The model name the server knows; None: `step-audio-2-mini` for step-audio-2."""
    planner_api_key: SecretStr | None = None
    planner_tool_choice: Literal["native", "forced"] = "native"
    """openai only: the server's own tool calling, or the cascade's forced choice (small models)."""
    vocoder_url: AnyHttpUrl | None = None
    """A token2wav service (step-audio-2): speech from the model's tokens; None: the local TTS speaks."""

    otlp_endpoint: AnyHttpUrl | None = None
    """An OTLP/HTTP receiver (OpenTelemetry Collector, Jaeger, Tempo, ...): every span is also
    sent to `{endpoint}/v1/traces`. Traces are kept and shown without it."""
    trace_max_chars: int = Field(default=2000, ge=16)
    """Trace attribute values (tool arguments and results, transcripts, answers) are cut to this length."""
    trace_content: bool = True
    """Keep what was said and what tools took and gave in traces; off keeps names, timings and statuses."""

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    allowed_hosts: str = ""
    """Without API keys: host names (comma-separated) the service may be addressed by besides loopback
    ones (localhost, 127.0.0.1, [::1]) and `host`; `*`: any. Others are refused (DNS rebinding)."""
    allowed_origins: str = ""
    """Without API keys: web origins (`https://app.example`, comma-separated) whose pages may call the
    service besides its own; `*`: any. A browser request from another site is refused."""

    @model_validator(mode="after")
    def _redis_needs_url(self) -> Settings:
        if self.memory == "redis" and self.redis_url is None:
            raise ValueError("VOICEGRAPH_MEMORY=redis needs VOICEGRAPH_REDIS_URL")
        return self

    @model_validator(mode="after")
    def _searxng_needs_url(self) -> Settings:
        if self.web_search == "searxng" and self.searxng_url is None:
            raise ValueError("VOICEGRAPH_WEB_SEARCH=searxng needs VOICEGRAPH_SEARXNG_URL")
        return self

    @model_validator(mode="after")
    def _served_planner_needs_url(self) -> Settings:
        if self.planner != "cascade" and self.planner_url is None:
            raise ValueError(f"VOICEGRAPH_PLANNER={self.planner} needs VOICEGRAPH_PLANNER_URL")
        if self.planner == "openai" and not self.planner_model:
            raise ValueError("VOICEGRAPH_PLANNER=openai needs VOICEGRAPH_PLANNER_MODEL")
        return self

    @model_validator(mode="after")
    def _proxies_parse(self) -> Settings:
        TrustedProxies(self.trusted_proxy_list)
        return self

    @model_validator(mode="after")
    def _api_keys_parse(self) -> Settings:
        if RESERVED_TENANT in {self.tenant, *self.tenant_keys().values()}:
            raise ValueError(RESERVED)
        return self

    def tenant_keys(self) -> dict[str, str]:
        """API key -> tenant; empty when no keys are configured (one local tenant)."""
        if self.api_keys is None or not self.api_keys.get_secret_value().strip():
            return {}
        keys: dict[str, str] = {}
        for pair in self.api_keys.get_secret_value().split(","):
            key, sep, tenant = pair.strip().rpartition(":")
            if not sep or not key or not _TENANT.fullmatch(tenant):
                raise ValueError(BAD_API_KEYS)  # never echo the value: it holds secrets
            keys[key] = tenant
        return keys

    @property
    def memory_kind(self) -> MemoryKind:
        return self.memory or ("redis" if self.redis_url else "sqlite")

    def resolved_engine(self) -> Literal["llama", "transformers"]:
        """The engine "auto" stands for on this machine."""
        if self.engine != "auto":
            return self.engine
        if self.device is not None:
            return "transformers" if self.device.startswith("cuda") else "llama"
        if not any(Path("/dev").glob("nvidia[0-9]*")):  # no GPU: no need to load torch (~480 MB) to ask it
            return "llama"
        import torch

        return "transformers" if torch.cuda.is_available() else "llama"

    @property
    def models_root(self) -> Path:
        return self.model_dir or self.data_dir

    @property
    def sqlite_path(self) -> Path:
        return self.data_dir / "memory.sqlite"

    @property
    def chroma_path(self) -> Path:
        return self.data_dir / "chroma"

    @property
    def voices_path(self) -> Path:
        """The voice library's sample clips (the records themselves are in Chroma)."""
        return self.data_dir / "voices"

    @property
    def tools_path(self) -> Path:
        """Where older versions kept the tools tenants registered (one JSON file per tenant);
        moved into the memory backend at start-up."""
        return self.data_dir / "tools"

    @property
    def private_hosts(self) -> list[str]:
        return _items(self.tool_allow_private_hosts)

    @property
    def trusted_proxy_list(self) -> list[str]:
        return _items(self.trusted_proxies)

    @property
    def allowed_host_names(self) -> list[str]:
        return [*_items(self.allowed_hosts.lower()), self.host.lower()]

    @property
    def allowed_origin_list(self) -> list[str]:
        return [origin.rstrip("/") for origin in _items(self.allowed_origins.lower())]


def _items(text: str) -> list[str]:
    """A comma-separated setting's items, trimmed, without empty ones."""
    return [item.strip() for item in text.split(",") if item.strip()]
