"""Which question each round of `voicegraph bench latency` and `bench realtime` asks."""

from __future__ import annotations

from api.latency_bench import KINDS, WARM_UP, question, spoken_set


def test_the_warm_up_question_is_never_timed_and_timed_ones_come_in_turn() -> None:
    for kind, asked in spoken_set().items():
        assert question(0, asked) == WARM_UP[kind]
        timed = [question(round_, asked) for round_ in range(1, 2 * len(KINDS[kind]) + 1)]
        assert WARM_UP[kind] not in timed
        assert timed == KINDS[kind] * 2  # each once before any again
