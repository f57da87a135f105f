"""All configuration, read once at the composition root (prefix VOICEGRAPH_)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import AnyHttpUrl, Field, RedisDsn, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["Settings"]

_TENANT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
BAD_API_KEYS = "VOICEGRAPH_API_KEYS must be 'key:tenant' pairs separated by commas (tenant: letters, digits, _ . -)"


def _default_data_dir() -> Path:
    return Path.home() / ".local" / "share" / "voicegraph"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VOICEGRAPH_", extra="ignore", hide_input_in_errors=True)

    data_dir: Path = Field(default_factory=_default_data_dir)
    """SQLite memory, Chroma, and the assembled model live here."""
    model_dir: Path | None = None
    """Where the planner model is assembled and converted; None: the data dir."""
    memory: Literal["sqlite", "memory", "redis"] | None = None
    """Where sessions live; None picks Redis when `redis_url` is set, else SQLite in the data dir."""
    redis_url: RedisDsn | None = None
    """Session memory on Redis (production: replicas share sessions); plain Redis 7 suffices."""
    redis_prefix: str = "voicegraph"
    """Prefix of every Redis key, so deployments can share one Redis."""
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
    session_ttl_s: int | None = Field(default=None, ge=0)
    """A session idle this long is forgotten (sliding); None or 0: sessions are kept until deleted."""
    max_stored_turns: int = Field(default=50, ge=1)
    """Turns a session keeps; older ones are dropped, and turns the planner no longer sees are compacted."""

    max_upload_bytes: int = Field(default=10 * 1024 * 1024, gt=0)
    max_audio_seconds: float = Field(default=60.0, gt=0)
    max_tool_rounds: int = Field(default=3, ge=0, le=10)
    history_turns: int = Field(default=8, ge=0)
    speak: bool = True
    """Synthesize reply audio; off gives text-only turns."""

    device: str | None = None
    """Torch device for the planner ("cpu", "cuda"); None picks CUDA when present."""
    threads: int | None = Field(default=None, gt=0)
    """CPU threads for the models; None uses every core."""

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)

    @model_validator(mode="after")
    def _redis_needs_url(self) -> Settings:
        if self.memory == "redis" and self.redis_url is None:
            raise ValueError("VOICEGRAPH_MEMORY=redis needs VOICEGRAPH_REDIS_URL")
        return self

    @model_validator(mode="after")
    def _api_keys_parse(self) -> Settings:
        self.tenant_keys()
        return self

    def tenant_keys(self) -> dict[str, str]:
        """API key -> tenant; empty when no keys are configured (one local tenant)."""
        if self.api_keys is None or not self.api_keys.get_secret_value().strip():
            return {}
        keys: dict[str, str] = {}
        for pair in self.api_keys.get_secret_value().split(","):
            key, sep, tenant = pair.strip().rpartition(":")
            if not sep or not key or not _TENANT.match(tenant):
                raise ValueError(BAD_API_KEYS)  # never echo the value: it holds secrets
            keys[key] = tenant
        return keys

    @property
    def memory_kind(self) -> Literal["sqlite", "memory", "redis"]:
        return self.memory or ("redis" if self.redis_url else "sqlite")

    @property
    def models_root(self) -> Path:
        return self.model_dir or self.data_dir

    @property
    def sqlite_path(self) -> Path:
        return self.data_dir / "memory.sqlite"

    @property
    def chroma_path(self) -> Path:
        return self.data_dir / "chroma"
