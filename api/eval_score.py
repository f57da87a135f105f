"""Scoring of `voicegraph eval`'s spoken tool calls, as Step-Audio 2 reports its toolset.

A turn expects one tool (or none) and some of its arguments; what the planner did is its
first tool call in the turn (or none). Per tool T:

- precision: of the turns where T was called, the share that expected T;
- recall: of the turns that expected T, the share where T was called;
- type accuracy: of the turns that expected T and called some tool, the share that called T
  (a wrong tool, as opposed to no tool at all);
- parameter accuracy: of the turns that expected T and called T, the share whose arguments
  match.

Beside them: no-tool accuracy (turns expecting no tool that called none), knowledge-answer
accuracy (the answer states the fact the knowledge base holds) and the recognizer's word
error rate on what was said.

Matching is on words as model/wer.py compares them (case, punctuation and digits against
spelled numbers do not count). An expected string matches when its words appear in the
value, each starting a word there ("whisper" is found in "a whispering voice", "tokyo" in
"Asia/Tokyo", "paris" in "Paris, France"); `a|b` accepts either; a list needs every item.
Numbers and booleans must be equal. Arguments the case does not name are not checked.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from model.wer import normalize_words, wer

__all__ = [
    "GOALS",
    "Dialogue",
    "Expected",
    "Figure",
    "SpokenScores",
    "ToolScores",
    "TurnOutcome",
    "answer_states",
    "argument_matches",
    "arguments_match",
    "score_turns",
]

GOALS: dict[str, float] = {
    "precision": 0.95,
    "recall": 0.95,
    "parameters": 0.95,
    "no_tool": 0.95,
    "knowledge_answers": 0.9,
    "wer": 0.10,
    "bfcl_simple": 0.85,
    "bfcl_irrelevance": 0.85,
}
"""The goals of the issue that asked for the eval; WER is a ceiling, the others floors."""


@dataclass(frozen=True)
class Expected:
    """One turn of a dialogue: what is said, and what the planner should do with it."""

    say: str
    tool: str | None = None
    """The tool to call; None: answer without one."""
    args: Mapping[str, Any] = field(default_factory=dict)
    """The arguments to check (see the module docstring for how they match)."""
    answer: tuple[str, ...] = ()
    """Words the answer must state (knowledge questions); empty: the answer is not checked."""


@dataclass(frozen=True)
class Dialogue:
    """Turns said one after another in one session, so that "And in Rome?" has its context."""

    id: str
    turns: tuple[Expected, ...]


@dataclass(frozen=True)
class TurnOutcome:
    dialogue: str
    expected: Expected
    calls: tuple[tuple[str, dict[str, Any]], ...] = ()
    """(name, arguments) of every tool call of the turn, in order."""
    answer: str = ""
    heard: str | None = None
    """The transcript; None when the turn was typed."""
    voice: str = ""
    error: str | None = None
    """The turn failed (a planner error, say): it counts as wrong everywhere."""

    @property
    def chosen(self) -> str | None:
        return self.calls[0][0] if self.calls else None

    def arguments_of(self, tool: str) -> dict[str, Any] | None:
        return next((args for name, args in self.calls if name == tool), None)

    @property
    def right(self) -> bool:
        """Right tool (or none) with right arguments, and the answer states the fact."""
        exp = self.expected
        if self.error or self.chosen != exp.tool:
            return False
        args = self.arguments_of(exp.tool) if exp.tool else {}
        return arguments_match(exp.args, args or {}) and (not exp.answer or answer_states(exp.answer, self.answer))


def _phrase(text: str) -> str:
    return " ".join(normalize_words(text))


def _contains(value: str, expected: str) -> bool:
    """Whether one of the `|` alternatives of `expected` appears in `value`, starting a word."""
    said = _phrase(value)
    for alternative in expected.split("|"):
        words = _phrase(alternative)
        if words and re.search(r"(?<!\w)" + re.escape(words), said):
            return True
    return False


def argument_matches(expected: Any, actual: Any) -> bool:
    if isinstance(expected, list):
        return all(argument_matches(item, actual) for item in expected)
    if isinstance(expected, str):
        return actual is not None and _contains(actual if isinstance(actual, str) else str(actual), expected)
    if isinstance(expected, bool) or expected is None:
        return bool(actual is expected)
    if isinstance(expected, int | float):
        return isinstance(actual, int | float) and not isinstance(actual, bool) and abs(actual - expected) < 1e-9
    return bool(expected == actual)


def arguments_match(expected: Mapping[str, Any], actual: Mapping[str, Any]) -> bool:
    return all(argument_matches(value, actual.get(name)) for name, value in expected.items())


def answer_states(words: Sequence[str], answer: str) -> bool:
    return all(_contains(answer, item) for item in words)


@dataclass(frozen=True)
class Figure:
    """A share: `right` of `of`; None when nothing was counted."""

    right: int
    of: int

    @property
    def value(self) -> float | None:
        return self.right / self.of if self.of else None


@dataclass(frozen=True)
class ToolScores:
    tool: str
    turns: int
    """Turns that expected this tool."""
    precision: Figure
    recall: Figure
    type_accuracy: Figure
    parameters: Figure


@dataclass(frozen=True)
class SpokenScores:
    tools: tuple[ToolScores, ...]
    no_tool: Figure
    knowledge_answers: Figure
    wer: float | None
    """Over the spoken turns; None when every turn was typed."""
    heard_turns: int
    all_right: Figure
    """Turns right in every respect (tool, arguments, answer)."""


def _tool_scores(tool: str, outcomes: Sequence[TurnOutcome]) -> ToolScores:
    wanted = [o for o in outcomes if o.expected.tool == tool]
    called = [o for o in outcomes if o.chosen == tool]
    hits = [o for o in wanted if o.chosen == tool]
    triggered = [o for o in wanted if o.chosen is not None]
    params = sum(arguments_match(o.expected.args, o.arguments_of(tool) or {}) for o in hits)
    return ToolScores(
        tool=tool,
        turns=len(wanted),
        precision=Figure(sum(o.expected.tool == tool for o in called), len(called)),
        recall=Figure(len(hits), len(wanted)),
        type_accuracy=Figure(len(hits), len(triggered)),
        parameters=Figure(params, len(hits)),
    )


def score_turns(outcomes: Sequence[TurnOutcome]) -> SpokenScores:
    names = sorted({o.expected.tool for o in outcomes if o.expected.tool} | {o.chosen for o in outcomes if o.chosen})
    plain = [o for o in outcomes if o.expected.tool is None]
    facts = [o for o in outcomes if o.expected.answer]
    heard = [o for o in outcomes if o.heard is not None]
    return SpokenScores(
        tools=tuple(_tool_scores(name, outcomes) for name in names),
        no_tool=Figure(sum(o.chosen is None and not o.error for o in plain), len(plain)),
        knowledge_answers=Figure(
            sum(not o.error and answer_states(o.expected.answer, o.answer) for o in facts), len(facts)
        ),
        wer=wer((o.expected.say, o.heard or "") for o in heard) if heard else None,
        heard_turns=len(heard),
        all_right=Figure(sum(o.right for o in outcomes), len(outcomes)),
    )
