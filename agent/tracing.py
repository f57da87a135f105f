"""Traces: one span tree per turn, named by OpenTelemetry's GenAI conventions.

    turn (invoke_agent)
      listen            the input becomes a user message
        asr             speech to text (audio turns of a cascade)
      plan (chat)       one planning step; a turn has one per tool round, plus the answer
      execute_tool NAME one per tool call, arguments and result kept (truncated)
      speak             from the first spoken sentence to the last
        synthesize      one per sentence; it overlaps `plan` while the answer streams

The spans are real OpenTelemetry SDK spans: every span processor the service adds sees
them (the OTLP exporter, the Prometheus metrics), and a collector of our own gathers each
turn's spans into one JSON tree for the trace store, the API, the CLI and the playground.

Attribute names are part of the contract: dashboards and queries are built on them, so
they live here, once, and tests pin them (tests/test_tracing.py). String values longer
than `max_attribute_chars` are truncated by the SDK's own span limits; with
`capture_content` off, transcripts, answers and tool arguments and results are left out.
"""

from __future__ import annotations

import json
import logging
import threading
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from opentelemetry import trace as otel
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanLimits, SpanProcessor, TracerProvider
from opentelemetry.trace import Span, Status, StatusCode

__all__ = [
    "AGENT_NAME",
    "DEFAULT_MAX_ATTRIBUTE_CHARS",
    "TraceTree",
    "Tracing",
    "TurnTrace",
    "iter_spans",
    "untraced",
]

# Cutting long values is what `max_attribute_chars` asks for, not news worth a warning per value.
logging.getLogger("opentelemetry.attributes").setLevel(logging.ERROR)

DEFAULT_MAX_ATTRIBUTE_CHARS = 2000
AGENT_NAME = "voicegraph"

# OpenTelemetry GenAI semantic conventions (and error.type from the general ones).
OPERATION = "gen_ai.operation.name"
PROVIDER = "gen_ai.provider.name"
REQUEST_MODEL = "gen_ai.request.model"
AGENT = "gen_ai.agent.name"
CONVERSATION = "gen_ai.conversation.id"
INPUT_TOKENS = "gen_ai.usage.input_tokens"
OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
CACHED_TOKENS = "gen_ai.usage.cache_read.input_tokens"
"""Input tokens whose KV state the planner already held: not prefilled again."""
FINISH_REASONS = "gen_ai.response.finish_reasons"
TOOL_NAME = "gen_ai.tool.name"
TOOL_CALL_ID = "gen_ai.tool.call.id"
TOOL_TYPE = "gen_ai.tool.type"
TOOL_DESCRIPTION = "gen_ai.tool.description"
TOOL_ARGUMENTS = "gen_ai.tool.call.arguments"
TOOL_RESULT = "gen_ai.tool.call.result"
INPUT_MESSAGES = "gen_ai.input.messages"
"""The messages a planning step was given, from this turn's user message on (earlier turns are
in their own traces); content, so only with `capture_content`."""
ERROR_TYPE = "error.type"

# voicegraph's own: the voice figures and what the conventions have no name for.
TENANT = "voicegraph.tenant"
TURN = "voicegraph.turn"
MODALITY = "voicegraph.input.modality"
AUDIO_IN_S = "voicegraph.audio.input_seconds"
AUDIO_OUT_S = "voicegraph.audio.output_seconds"
FIRST_AUDIO_MS = "voicegraph.time_to_first_audio_ms"
TIMING_MS = "voicegraph.timings.{stage}_ms"
VOICE = "voicegraph.voice"
TRANSCRIPT = "voicegraph.transcript"
ANSWER = "voicegraph.answer"
ASR_MODEL = "voicegraph.asr.model"
ASR_HINT = "voicegraph.asr.hint"
"""What the recognizer was told to expect (the user's last words, names the tools know); content."""
ASR_HEARD_BY = "voicegraph.asr.heard_by"
"""The model whose transcript was kept (tiny.en+base: either)."""
ASR_RELISTENED = "voicegraph.asr.relistened"
"""Whether a second model heard the speech again because the first was unsure."""
ASR_LOGPROB = "voicegraph.asr.logprob"
"""The kept transcript's mean token log probability (0 is certain), where the recognizer gives one."""
PARALINGUISTICS = "voicegraph.paralinguistics.{name}"
"""How a spoken turn was said (model/paralinguistics.py): pitch_hz, rate_wps, loudness_dbfs, ..."""
CUE = "voicegraph.paralinguistics.cue"
"""The line the planner read about it after the user's words ("" when nothing stood out)."""
PLAN_ROUND = "voicegraph.plan.round"
PLAN_TOOL_CALLS = "voicegraph.plan.tool_calls"
PREFILLED_TOKENS = "voicegraph.plan.prefilled_tokens"
"""Input tokens the planner had to read this step (input minus cache_read)."""
QUEUE_MS = "voicegraph.plan.queue_ms"
"""How long the step waited for the model while other sessions' steps ran."""
TOOL_STATUS = "voicegraph.tool.status"
TOOL_ATTEMPTS = "voicegraph.tool.attempts"
TOOL_OWNER = "voicegraph.tool.owner"
""""service" (built in or configured) or "tenant" (registered by a tenant at run time)."""
TTS_MODEL = "voicegraph.tts.model"
TTS_TEXT = "voicegraph.tts.text"
SENTENCES = "voicegraph.tts.sentences"

TraceTree = dict[str, Any]
"""A turn's trace as JSON: trace_id, turn, status, error, started_at, duration_ms and `root`,
a span {name, span_id, start_ms, duration_ms, status, error, attributes, children}."""

AttributeValue = str | bool | int | float | Sequence[str] | Sequence[int] | Sequence[float] | Sequence[bool]


def planner_model(planner_name: str) -> tuple[str, str]:
    """(provider, model) from a planner's name such as `cascade:qwen2.5-...` or `openai:gpt-4o`."""
    provider, _, model = planner_name.partition(":")
    return provider, model or provider


def as_json(value: Any) -> str:
    """Tool arguments as the conventions want them: a JSON string."""
    return json.dumps(value, ensure_ascii=False, default=str)


def _clean(attributes: Mapping[str, Any] | None) -> dict[str, AttributeValue]:
    """Drop the None values (OpenTelemetry refuses them) and turn lists into tuples."""
    cleaned: dict[str, AttributeValue] = {}
    for key, value in (attributes or {}).items():
        if value is None:
            continue
        cleaned[key] = tuple(value) if isinstance(value, list) else value
    return cleaned


def mark_error(span: Span, error: BaseException | str, message: str = "") -> None:
    """error.type (an exception's class name, or a status such as "timeout") and an ERROR status."""
    kind = error if isinstance(error, str) else type(error).__qualname__
    span.set_attribute(ERROR_TYPE, kind)
    span.set_status(Status(StatusCode.ERROR, message or (str(error) if not isinstance(error, str) else kind)))


class _Collector(SpanProcessor):
    """Keeps the ended spans of the turns being traced, until each turn takes its own."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open: dict[int, list[ReadableSpan]] = {}

    def watch(self, trace_id: int) -> None:
        with self._lock:
            self._open[trace_id] = []

    def peek(self, trace_id: int) -> list[ReadableSpan]:
        with self._lock:
            return list(self._open.get(trace_id, []))

    def take(self, trace_id: int) -> list[ReadableSpan]:
        with self._lock:
            return self._open.pop(trace_id, [])

    def on_end(self, span: ReadableSpan) -> None:
        if span.context is None:
            return
        with self._lock:
            bucket = self._open.get(span.context.trace_id)
            if bucket is not None:
                bucket.append(span)


class Tracing:
    """The service's tracer: one per turn runner, shut down with it (which flushes the exporters)."""

    def __init__(
        self,
        *,
        max_attribute_chars: int = DEFAULT_MAX_ATTRIBUTE_CHARS,
        capture_content: bool = True,
        processors: Sequence[SpanProcessor] = (),
    ) -> None:
        self.capture_content = capture_content
        self._collector = _Collector()
        self.provider = TracerProvider(
            resource=Resource.create({"service.name": AGENT_NAME}),
            span_limits=SpanLimits(max_attribute_length=max_attribute_chars),
        )
        self.provider.add_span_processor(self._collector)
        for processor in processors:
            self.provider.add_span_processor(processor)
        self._tracer = self.provider.get_tracer("voicegraph.agent")

    def start_turn(
        self, *, tenant: str, session_id: str, turn: int, planner: str, modality: str, audio_seconds: float
    ) -> TurnTrace:
        provider, model = planner_model(planner)
        root = self._tracer.start_span(
            "turn",
            context=otel.set_span_in_context(otel.INVALID_SPAN),  # always a new trace
            attributes=_clean(
                {
                    OPERATION: "invoke_agent",
                    AGENT: AGENT_NAME,
                    CONVERSATION: session_id,
                    PROVIDER: provider,
                    REQUEST_MODEL: model,
                    TENANT: tenant,
                    TURN: turn,
                    MODALITY: modality,
                    AUDIO_IN_S: round(audio_seconds, 3) if modality == "audio" else None,
                }
            ),
        )
        self._collector.watch(root.get_span_context().trace_id)
        return TurnTrace(self._tracer, root, capture_content=self.capture_content, collector=self._collector)

    def shutdown(self) -> None:
        self.provider.shutdown()


class TurnTrace:
    """One turn's spans; nodes add theirs under `root` (or under a parent they name)."""

    def __init__(
        self,
        tracer: otel.Tracer,
        root: Span,
        *,
        capture_content: bool = True,
        collector: _Collector | None = None,
    ) -> None:
        self._tracer = tracer
        self.root = root
        self.capture_content = capture_content
        self._collector = collector

    @property
    def trace_id(self) -> str:
        return f"{self.root.get_span_context().trace_id:032x}"

    def content(self, value: Any) -> Any:
        """`value` when content is captured, else None (so the attribute is left out)."""
        return value if self.capture_content else None

    @contextmanager
    def span(
        self, name: str, attributes: Mapping[str, Any] | None = None, parent: Span | None = None
    ) -> Iterator[Span]:
        """A child span around a block; an exception marks it failed (error.type) and goes on."""
        span = self._tracer.start_span(
            name, context=otel.set_span_in_context(parent or self.root), attributes=_clean(attributes)
        )
        try:
            yield span
        except BaseException as error:
            mark_error(span, error)
            raise
        finally:
            span.end()

    def record(
        self,
        name: str,
        start_ns: int,
        end_ns: int,
        attributes: Mapping[str, Any] | None = None,
        *,
        parent: Span | None = None,
        error_type: str | None = None,
        error_message: str = "",
    ) -> Span:
        """A span for something already over (a tool call, a spoken sentence), with its own times."""
        span = self._tracer.start_span(
            name,
            context=otel.set_span_in_context(parent or self.root),
            attributes=_clean(attributes),
            start_time=start_ns,
        )
        if error_type:
            mark_error(span, error_type, error_message)
        span.end(end_time=max(end_ns, start_ns))
        return span

    def timings_ms(self) -> dict[str, float]:
        """Time spent per stage so far, from the spans that ended: `asr`, `plan`, `act` (tool
        calls) and `speak` (synthesis), each the length of the union of its spans, so calls
        that ran together and speech that overlapped planning count once."""
        spans = self._collector.peek(self.root.get_span_context().trace_id) if self._collector else []
        stages: dict[str, list[tuple[int, int]]] = defaultdict(list)
        for span in spans:
            stage = STAGE_OF_SPAN.get(span.name.split(" ")[0])
            if stage and span.start_time is not None and span.end_time is not None:
                stages[stage].append((span.start_time, span.end_time))
        return {stage: round(_covered_ns(intervals) / 1e6, 1) for stage, intervals in stages.items()}

    def token_usage(self) -> dict[str, int]:
        """The planner's tokens so far, over every planning step: input, output, and the input
        whose KV state was reused (`cached`)."""
        spans = self._collector.peek(self.root.get_span_context().trace_id) if self._collector else []
        usage = {"input": 0, "output": 0, "cached": 0}
        for span in spans:
            attributes = span.attributes or {}
            for kind, name in (("input", INPUT_TOKENS), ("output", OUTPUT_TOKENS), ("cached", CACHED_TOKENS)):
                value = attributes.get(name)
                usage[kind] += value if isinstance(value, int) else 0
        return usage

    def finish(self, attributes: Mapping[str, Any] | None = None, error: BaseException | None = None) -> TraceTree:
        """End the turn's span and return the turn's whole tree."""
        self.root.set_attributes(_clean(attributes))
        if error is not None:
            mark_error(self.root, error)
        self.root.end()
        spans = self._collector.take(self.root.get_span_context().trace_id) if self._collector else []
        return build_tree(spans)


STAGE_OF_SPAN = {"asr": "asr", "plan": "plan", "execute_tool": "act", "synthesize": "speak"}
"""Which stage of a turn's `timings_ms` a span's time counts under (by the first word of its name)."""


def _covered_ns(intervals: list[tuple[int, int]]) -> int:
    """How long the union of [start, end) intervals is."""
    total, reach = 0, None
    for start, end in sorted(intervals):
        if reach is None or start > reach:
            total, reach = total + end - start, end
        elif end > reach:
            total, reach = total + end - reach, end
    return total


def build_tree(spans: Sequence[ReadableSpan]) -> TraceTree:
    """The JSON tree of one trace's spans, children in the order they started."""
    children: dict[int | None, list[ReadableSpan]] = defaultdict(list)
    for span in spans:
        children[span.parent.span_id if span.parent else None].append(span)
    roots = children.get(None) or []
    if not roots:
        return {}
    root = roots[0]
    origin = root.start_time or 0

    def node(span: ReadableSpan) -> dict[str, Any]:
        start, end = span.start_time or origin, span.end_time or span.start_time or origin
        failed = span.status.status_code == StatusCode.ERROR
        assert span.context is not None
        kids = sorted(children.get(span.context.span_id, []), key=lambda s: s.start_time or 0)
        return {
            "name": span.name,
            "span_id": f"{span.context.span_id:016x}",
            "start_ms": round((start - origin) / 1e6, 1),
            "duration_ms": round((end - start) / 1e6, 1),
            "status": "error" if failed else "ok",
            "error": span.status.description if failed else None,
            "attributes": {k: list(v) if isinstance(v, tuple) else v for k, v in (span.attributes or {}).items()},
            "children": [node(kid) for kid in kids],
        }

    tree = node(root)
    assert root.context is not None
    return {
        "trace_id": f"{root.context.trace_id:032x}",
        "turn": tree["attributes"].get(TURN),
        "status": tree["status"],
        "error": tree["error"],
        "started_at": round(origin / 1e9, 3),
        "duration_ms": tree["duration_ms"],
        "root": tree,
    }


def iter_spans(span: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """A span of a TraceTree and all below it, depth first, in the order they started."""
    yield span
    for child in span["children"]:
        yield from iter_spans(child)


def untraced() -> TurnTrace:
    """A turn trace that records nothing (a TurnContext built without the runner's tracer)."""
    tracer = otel.NoOpTracer()
    return TurnTrace(tracer, tracer.start_span("turn"), capture_content=False)
