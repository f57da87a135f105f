"""What leaves the service about its turns: Prometheus metrics and, optionally, OTLP spans.

Both hang off the agent's tracer (agent/tracing.py) as span processors, so the metrics are
counted from the very spans a trace shows, and a stage cannot be timed one way in a trace
and another way on a dashboard.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor
from opentelemetry.sdk.trace import Span as SdkSpan
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import StatusCode
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from agent.tracing import (
    CACHED_TOKENS,
    CONVERSATION,
    FIRST_AUDIO_MS,
    INPUT_TOKENS,
    OPERATION,
    OUTPUT_TOKENS,
    PREFILLED_TOKENS,
    QUEUE_MS,
    TENANT,
    TIMING_MS,
    TOOL_NAME,
    TOOL_OWNER,
    TOOL_STATUS,
    Tracing,
)
from api.settings import Settings

__all__ = ["ACTIVE_WINDOW_S", "STAGES", "Metrics", "build_tracing", "otlp_traces_url"]

STAGES = ("asr", "plan", "act", "speak", "total")
"""The turn's stages, as in a turn's `timings_ms`."""
ACTIVE_WINDOW_S = 300.0
"""A session counts as active for this long after its last turn."""
_SECONDS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0)
_TOKEN_KINDS = (
    ("input", INPUT_TOKENS),
    ("output", OUTPUT_TOKENS),
    ("prefilled", PREFILLED_TOKENS),
    ("reused", CACHED_TOKENS),
)
OTLP_EXPORT_DELAY_MS = 1000
"""Spans are batched for at most this long before they are sent."""


class Metrics(SpanProcessor):
    """Prometheus metrics counted from ended spans, in a registry of the service's own."""

    def __init__(self, *, active_window_s: float = ACTIVE_WINDOW_S, clock: Callable[[], float] = time.monotonic):
        self.registry = CollectorRegistry()
        self._window = active_window_s
        self._clock = clock
        self._lock = threading.Lock()
        self._last_turn: dict[tuple[str, str], float] = {}
        r = self.registry
        self.stage_seconds = Histogram(
            "voicegraph_turn_stage_seconds", "Time a turn spent in each stage.", ["stage"], registry=r, buckets=_SECONDS
        )
        self.first_audio_seconds = Histogram(
            "voicegraph_time_to_first_audio_seconds", "From a turn's start to its first audio.", registry=r
        )
        self.turns = Counter("voicegraph_turns", "Turns by outcome.", ["status"], registry=r)
        self.in_progress = Gauge("voicegraph_turns_in_progress", "Turns running now.", registry=r)
        self.tool_calls = Counter(
            "voicegraph_tool_calls", "Tool calls by tool and status.", ["tool", "status"], registry=r
        )
        self.tool_seconds = Histogram(
            "voicegraph_tool_call_seconds", "Time a tool call took.", ["tool"], registry=r, buckets=_SECONDS
        )
        self.tokens = Counter(
            "voicegraph_planner_tokens",
            "Planner tokens: input (prefilled + reused, the KV state already held), output.",
            ["type"],
            registry=r,
        )
        self.queue_seconds = Histogram(
            "voicegraph_planner_queue_seconds",
            "How long a planning step waited for the model while other sessions' steps ran.",
            registry=r,
            buckets=(0.001, *_SECONDS),
        )
        active = Gauge(
            "voicegraph_active_sessions", f"Sessions with a turn in the last {active_window_s:g} seconds.", registry=r
        )
        active.set_function(self.active_sessions)

    def active_sessions(self) -> int:
        cutoff = self._clock() - self._window
        with self._lock:
            self._last_turn = {key: at for key, at in self._last_turn.items() if at >= cutoff}
            return len(self._last_turn)

    def on_start(self, span: SdkSpan, parent_context: Context | None = None) -> None:
        if span.name == "turn":
            self.in_progress.inc()

    def on_end(self, span: ReadableSpan) -> None:
        attributes = span.attributes or {}
        failed = span.status.status_code == StatusCode.ERROR
        seconds = ((span.end_time or 0) - (span.start_time or 0)) / 1e9
        if span.name == "turn":
            self.in_progress.dec()
            self.turns.labels("error" if failed else "ok").inc()
            for stage in STAGES:
                ms = attributes.get(TIMING_MS.format(stage=stage))
                if isinstance(ms, int | float):
                    self.stage_seconds.labels(stage).observe(ms / 1000)
            first = attributes.get(FIRST_AUDIO_MS)
            if isinstance(first, int | float):
                self.first_audio_seconds.observe(first / 1000)
            with self._lock:
                self._last_turn[(str(attributes.get(TENANT)), str(attributes.get(CONVERSATION)))] = self._clock()
        elif attributes.get(OPERATION) == "execute_tool":
            tool = _tool_label(attributes)
            self.tool_calls.labels(tool, str(attributes.get(TOOL_STATUS, "error" if failed else "ok"))).inc()
            self.tool_seconds.labels(tool).observe(seconds)
        elif attributes.get(OPERATION) == "chat":
            for kind, key in _TOKEN_KINDS:
                count = attributes.get(key)
                if isinstance(count, int):
                    self.tokens.labels(kind).inc(count)
            queued = attributes.get(QUEUE_MS)
            if isinstance(queued, int | float):
                self.queue_seconds.observe(queued / 1000)

    def exposition(self) -> bytes:
        """The registry in Prometheus's text format."""
        return generate_latest(self.registry)


TENANT_TOOL = "tenant-registered"
"""The `tool` label of every tool a tenant registered: /metrics is open, and those names are the tenant's."""


def _tool_label(attributes: Mapping[str, Any]) -> str:
    """The tool's name for the service's own tools; one label for all of the tenants' tools, so
    their names do not show on /metrics and the label's values stay bounded."""
    return TENANT_TOOL if attributes.get(TOOL_OWNER) == "tenant" else str(attributes.get(TOOL_NAME))


def otlp_traces_url(endpoint: str) -> str:
    """OTLP/HTTP's traces URL from a receiver's base URL (as OTEL_EXPORTER_OTLP_ENDPOINT means it)."""
    endpoint = endpoint.rstrip("/")
    return endpoint if endpoint.endswith("/v1/traces") else f"{endpoint}/v1/traces"


def build_tracing(settings: Settings, metrics: Metrics) -> Tracing:
    """The agent's tracer with the metrics and, when `otlp_endpoint` is set, the OTLP exporter.

    The exporter sends protobuf over HTTP from its own thread, so a slow or absent receiver
    never holds up a turn; OTEL_EXPORTER_OTLP_HEADERS adds headers (an API key, say).
    """
    processors: list[SpanProcessor] = [metrics]
    if settings.otlp_endpoint is not None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter(endpoint=otlp_traces_url(str(settings.otlp_endpoint)))
        processors.append(BatchSpanProcessor(exporter, schedule_delay_millis=OTLP_EXPORT_DELAY_MS))
    return Tracing(
        max_attribute_chars=settings.trace_max_chars,
        capture_content=settings.trace_content,
        processors=processors,
    )
