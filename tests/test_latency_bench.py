"""Which question each round of `voicegraph bench latency` and `bench realtime` asks."""

from __future__ import annotations

import math
from typing import Any

from agent.tracing import FIRST_AUDIO_MS
from api.latency_bench import KINDS, WARM_UP, FirstAudioStages, first_audio_stages, question, spoken_set


def test_the_warm_up_question_is_never_timed_and_timed_ones_come_in_turn() -> None:
    for kind, asked in spoken_set().items():
        assert question(0, asked) == WARM_UP[kind]
        timed = [question(round_, asked) for round_ in range(1, 2 * len(KINDS[kind]) + 1)]
        assert WARM_UP[kind] not in timed
        assert timed == KINDS[kind] * 2  # each once before any again


Span = dict[str, Any]


def _span(name: str, start_ms: float, duration_ms: float, children: list[Span] | None = None, **marks: object) -> Span:
    return {
        "name": name,
        "start_ms": start_ms,
        "duration_ms": duration_ms,
        "attributes": marks,
        "children": children or [],
    }


def test_a_turn_s_first_audio_is_split_at_hearing_writing_and_voicing() -> None:
    said = [_span("synthesize", 451.0, 0.0), _span("synthesize", 1424.0, 118.0)]
    listen = _span("listen", 2.0, 122.0, [_span("asr", 15.0, 108.0)])
    children = [listen, _span("plan", 125.0, 631.0), _span("speak", 451.0, 1325.0, said)]
    root = _span("turn", 0.0, 1778.0, children, **{FIRST_AUDIO_MS: 450.0})
    assert first_audio_stages(root) == FirstAudioStages(heard_s=0.124, written_s=0.451, voiced_s=0.45)


def test_a_typed_turn_that_said_nothing_has_no_stages_to_show() -> None:
    stages = first_audio_stages(_span("turn", 0.0, 900.0, [_span("plan", 1.0, 800.0)]))
    assert all(math.isnan(value) for value in (stages.heard_s, stages.written_s, stages.voiced_s))
