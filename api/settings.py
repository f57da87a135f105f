"""All configuration, read once at the composition root (prefix VOICEGRAPH_)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, RedisDsn, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["Settings"]


def _default_data_dir() -> Path:
    return Path.home() / ".local" / "share" / "voicegraph"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VOICEGRAPH_", extra="ignore")

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
    """A folder of .txt/.md files ingested into the default knowledge base at start-up."""
    tenant: str = "local"
    """The tenant every request runs as until API keys exist."""

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
