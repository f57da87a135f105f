"""Settings read from the environment the way deploy files set it."""

from __future__ import annotations

import pytest

from api.settings import Settings


def test_an_empty_variable_is_as_if_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    """Compose passes optional settings through as `${VAR:-}`: empty must mean the default."""
    for name in ("OTLP_ENDPOINT", "PLANNER_URL", "REDIS_URL", "SESSION_TTL_S", "API_KEYS", "PLANNER"):
        monkeypatch.setenv(f"VOICEGRAPH_{name}", "")
    settings = Settings()
    assert settings.otlp_endpoint is None and settings.planner_url is None and settings.redis_url is None
    assert settings.session_ttl_s is None and settings.tenant_keys() == {} and settings.planner == "cascade"
    assert settings.memory_kind == "sqlite"


def test_a_set_variable_still_counts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VOICEGRAPH_OTLP_ENDPOINT", "http://otel-collector:4318")
    monkeypatch.setenv("VOICEGRAPH_REDIS_URL", "redis://redis:6379/0")
    settings = Settings()
    assert str(settings.otlp_endpoint) == "http://otel-collector:4318/" and settings.memory_kind == "redis"
