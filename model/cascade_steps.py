"""One cascade step on an engine that constrains its output (llama.cpp): a call written in
pieces, each under a grammar, with the text no choice is left in appended rather than decoded.

A step is one of three kinds:

- choose: `<tool_call>\\n{"name": "` is appended and the name sampled from those on offer.
  As soon as what was sampled can only be one name, the rest of it is appended. A tool's
  arguments start with what its schema leaves no choice in (the first required key, and
  the quote of a string value), fed to the grammar and prefilled, then the rest is sampled
  under the schema's grammar. When the name is `reply`, the step goes back to before the
  call's opening and answers in plain text there: the call's framing around the text
  (`reply", "arguments": {"text": "`, nine tokens read in a batch, and `"}}\\n</tool_call>`
  after it) cost a direct answer ~0.2 s before its first word on two cores, and going back
  costs the one token read again.
- reply (the step must answer, straight after the user) and answer (after a tool result):
  plain text, the way the model answers; the grammar only keeps it from opening a call.

Every call parses, names a tool on offer and fits its schema.
"""

from __future__ import annotations

import asyncio
import json
import math
import threading
from collections.abc import AsyncIterator, Callable, Generator, Mapping, Sequence
from contextlib import closing
from typing import Any, Literal

from model.base import Futile, PlanEvent, TextDelta, ToolCall, ToolCallEvent, ToolChosen
from model.errors import PlannerError
from model.grammar import PLAIN_ANSWER, arguments_grammar, name_grammar
from model.grounding import Said, grounded, what_was_said
from model.llm import Completion, Step, SteppingEngine
from model.repeats import RepeatWatch, first_word, spellings
from model.toolcalls import loads_lenient, new_call_id

__all__ = ["FORCED_PREFIX", "REPLY_TOOL", "StepKind", "run_step", "strip_markup"]

REPLY_TOOL = "reply"
FORCED_PREFIX = '<tool_call>\n{"name": "'
_AFTER_NAME = ' "arguments":'
"""What follows the name and its comma; the space before the arguments' `{` is left to the
model (` {"` is one token, and a lone space would be an odd one)."""
_DECODER = json.JSONDecoder()
_RETRIES = 3
"""How often an answer that copies an earlier one is taken back before it is let be."""
UNGROUNDED_REPLY_BIAS = 5.0
"""How far `reply` leans when a call's words were not said: past the margins by which the
model preferred a call on BFCL's irrelevance cases (median 1.9), short of those on cases
that needed one (5.9 and more). At 4, "What is the capital of France?" stayed a call of the
weather for Paris (a lead of 4.19); calls asked for in other words lead by far more ("the
Big Apple", America/New_York: 9.2)."""

CLAIMED_BIAS = 5.0
"""How far the tool the user's words point to (`PlanRequest.claimed`) leans when the model chose
otherwise: as far as `reply` leans for a call in doubt."""
StepKind = Literal["choose", "reply", "answer"]
Emit = Callable[[PlanEvent], None]


def strip_markup(text: str) -> str:
    """Strip markdown and stray tool-call tags from the answer text (the TTS cleans its own input)."""
    return text.replace("**", "").replace("`", "").replace("<tool_call>", "").replace("</tool_call>", "")


def run_step(
    engine: SteppingEngine,
    messages: Sequence[Mapping[str, Any]],
    tools: Sequence[Mapping[str, Any]],
    *,
    kind: StepKind,
    schemas: Mapping[str, Mapping[str, Any]],
    max_new_tokens: int,
    completions: list[Completion],
    pace: Callable[[], None] | None = None,
    reply_bias: float = 0.0,
    futile: Futile | None = None,
    claimed: str | None = None,
    unspoken: str = "",
) -> AsyncIterator[PlanEvent]:
    """The step's events as the worker thread that writes them emits them.

    `schemas`: the callable tools' parameter schemas (what `choose` offers, `reply` aside).
    `pace`: called before each token is read or written (see `PlanRequest.pace`).
    `reply_bias`: added to the logit of `reply` when `choose` picks a name (see `_choose`).
    `futile`: whether a call would surely be of no use (`PlanRequest.futile`).
    `claimed`: the tool the user's words point to (`PlanRequest.claimed`).
    `unspoken`: text no answer may read out, direct or after tool results (`PlanRequest.notes`).
    """

    def produce(emit: Emit, cancel: threading.Event) -> None:
        with engine.step(messages, tools=tools) as step:
            paced = _Paced(step, pace)
            answer = kind != "choose"
            if not answer:
                before_call = step.mark()
                step.append(FORCED_PREFIX)
                doubt = _Doubt(what_was_said(messages), futile, claimed if claimed in schemas else None)
                if _call(paced, schemas, max_new_tokens, emit, cancel, reply_bias, doubt) == REPLY_TOOL:
                    step.rewind(before_call)
                    answer = True
            if answer:
                watch = RepeatWatch(messages, unspoken, answers=kind == "answer")
                _stream(paced, PLAIN_ANSWER, max_new_tokens, emit, cancel, watch)
        if step.completion is not None:
            completions.append(step.completion)

    return _from_thread(produce)


class _Paced:
    """A step whose sampling waits on `pace` before each token."""

    def __init__(self, step: Step, pace: Callable[[], None] | None) -> None:
        self._step = step
        self._pace = pace

    def append(self, text: str) -> None:
        self._step.append(text)

    def mark(self) -> Any:
        return self._step.mark()

    def rewind(self, mark: Any) -> None:
        self._step.rewind(mark)

    def lead(self, text: str) -> float:
        return self._step.lead(text)

    def sample(
        self,
        *,
        grammar: str | None = None,
        max_tokens: int = 256,
        forced: str = "",
        bias: Mapping[str, float] | None = None,
    ) -> Generator[str, None, None]:
        pieces = self._step.sample(grammar=grammar, max_tokens=max_tokens, forced=forced, bias=bias)
        try:
            while True:
                if self._pace is not None:
                    self._pace()
                try:
                    yield next(pieces)
                except StopIteration:
                    return
        finally:
            pieces.close()


def _call(
    step: _Paced,
    schemas: Mapping[str, Mapping[str, Any]],
    max_new_tokens: int,
    emit: Emit,
    cancel: threading.Event,
    reply_bias: float,
    doubt: _Doubt,
) -> str | None:
    """The call the step writes after its opening; REPLY_TOOL when the model answers instead
    (the caller writes the answer), None when a call was written or the step was cancelled.
    A tool's call in doubt (its words were not said, or it would be of no use: `_Doubt`) is
    thought again about: the name is chosen anew with `reply` leaning by UNGROUNDED_REPLY_BIAS,
    and a call chosen again is kept as written.

    The choice is told (`ToolChosen`: the line said while the tool runs) as soon as the name
    is written when no second thought could undo it, the name having led `reply` by more than
    the lean; else once the call stands. "What is a good name for a grey cat?" began a call
    of the weather, and "Let me check the weather." was said before the answer."""
    names = [*schemas, REPLY_TOOL]
    before = step.mark()
    name = _choose(step, names, cancel, {REPLY_TOOL: reply_bias})
    claimed = doubt.claimed
    if claimed is not None and name and name != claimed and _can_lean(names, claimed):
        step.rewind(before)
        name = _choose(step, names, cancel, {REPLY_TOOL: reply_bias, claimed: CLAIMED_BIAS})
    if cancel.is_set() or name == REPLY_TOOL:
        return name or None
    certain = not _can_lean(names) or step.lead(REPLY_TOOL) > max(reply_bias, UNGROUNDED_REPLY_BIAS)
    if certain:
        emit(ToolChosen(name))
    written = _write_arguments(step, schemas[name], max_new_tokens, cancel)
    if cancel.is_set():
        return None
    if doubt.doubted(name, _arguments(written), schemas[name]):
        step.rewind(before)
        again = _choose(step, names, cancel, {REPLY_TOOL: max(reply_bias, UNGROUNDED_REPLY_BIAS)})
        if cancel.is_set() or again == REPLY_TOOL:
            return again or None
        if again == name:
            step.append(_AFTER_NAME + written)
        else:
            certain = False
            name, written = again, _write_arguments(step, schemas[again], max_new_tokens, cancel)
            if cancel.is_set():
                return None
    if not certain:
        emit(ToolChosen(name))
    emit(ToolCallEvent(ToolCall(id=new_call_id(), name=name, arguments=_arguments(written))))
    return None


class _Doubt:
    """Whether a written call is thought again about: its words were not said in the
    conversation (model/grounding.py), or `futile` says it would be of no use."""

    def __init__(self, said: Said, futile: Futile | None, claimed: str | None = None) -> None:
        self._said = said
        self._futile = futile
        self.claimed = claimed
        """The tool the user's words point to: another choice is made again leaning toward it."""

    def doubted(self, name: str, arguments: dict[str, Any], schema: Mapping[str, Any]) -> bool:
        if not grounded(arguments, schema, self._said):
            return True
        return self._futile is not None and self._futile(name, arguments)


def _write_arguments(step: _Paced, schema: Mapping[str, Any], max_new_tokens: int, cancel: threading.Event) -> str:
    """A call's arguments, after its name and comma: the JSON object as written."""
    step.append(_AFTER_NAME)
    return _read(step, arguments_grammar(schema), _is_object, max_new_tokens, cancel, _opening(schema))


def _choose(step: _Paced, names: list[str], cancel: threading.Event, leans: Mapping[str, float]) -> str:
    """The tool's name, sampled until it can only be one; the rest of it, its closing quote and
    the comma after it are appended (the model may have written the last two as one token).

    `leans` are added to the logits of these names' first tokens. `reply` leans: a call opened
    for the model leans it toward calling: on BFCL's irrelevance cases (a question no function
    offered does) it called one 85 % of the time, while the logit of `reply` there trailed the
    best tool's by less than it did on cases that needed a call. A name leans only when no
    other begins like it (the lean would go to both)."""
    bias = {name: lean for name, lean in leans.items() if _can_lean(names, name)} or None

    def done(text: str) -> bool:
        return _named(text, names) is not None

    written = _read(step, name_grammar(names), done, 32, cancel, bias=bias)
    name = _named(written, names)
    if name is None:
        if cancel.is_set():
            return ""
        raise PlannerError(f"the model wrote no tool name it was offered: {written[:64]!r}")
    step.append(f'{name}",'[len(written) :])
    return name


def _can_lean(names: list[str], toward: str = REPLY_TOOL) -> bool:
    """Whether a name can be leant toward: no other name begins like it."""
    return not any(name.startswith(toward) or toward.startswith(name) for name in names if name != toward)


def _named(text: str, names: list[str]) -> str | None:
    """The one name `text` can still become (its closing quote included), else None."""
    text = text.rstrip(",")
    if text.endswith('"') and text[:-1] in names:
        return text[:-1]
    candidates = [name for name in names if f'{name}"'.startswith(text)]
    return candidates[0] if len(candidates) == 1 else None


def _opening(schema: Mapping[str, Any]) -> str:
    """How the arguments must begin, whatever the model chooses: the first required key (in
    the order the schema lists its properties, as the grammar does), and the opening quote
    of its value when that is a string; just ` {` when nothing is required."""
    properties = schema.get("properties") or {}
    required = set(schema.get("required") or ())
    first = next((key for key in properties if key in required), None)
    if first is None:
        return " {"
    value = properties[first] if isinstance(properties[first], Mapping) else {}
    quote = ' "' if value.get("type") == "string" else " "
    return f" {{{json.dumps(first)}:{quote}"


def _read(
    step: _Paced,
    grammar: str,
    done: Callable[[str], bool],
    max_tokens: int,
    cancel: threading.Event,
    forced: str = "",
    *,
    bias: Mapping[str, float] | None = None,
) -> str:
    """Sample under `grammar` (after `forced`) until `done(text so far)`; the text, `forced` included."""
    text = ""
    with closing(step.sample(grammar=grammar, max_tokens=max_tokens, forced=forced, bias=bias)) as pieces:
        for piece in pieces:
            text += piece
            if done(text) or cancel.is_set():
                break
    return text


def _stream(
    step: _Paced, grammar: str, max_tokens: int, emit: Emit, cancel: threading.Event, watch: RepeatWatch | None = None
) -> None:
    """The answer's text as it is written. With `watch`, text that begins as an earlier answer
    did is held until it goes its own way, and a copy is taken back: the answer begins again,
    with any word but the one the copy began with (model/repeats.py)."""
    start = step.mark()
    bias: dict[str, float] | None = None
    for attempt in range(1 + _RETRIES):
        watching = watch if attempt < _RETRIES else None
        text, held = "", ""
        with closing(step.sample(grammar=grammar, max_tokens=max_tokens, bias=bias)) as pieces:
            for piece in pieces:
                text, held = text + piece, held + piece
                if watching is not None and watching.copied(text):
                    break
                if watching is None or not watching.holds(text):
                    if said := strip_markup(held):
                        emit(TextDelta(said))
                    held = ""
                if cancel.is_set():
                    return
            else:
                break
        step.rewind(start)
        bias = dict.fromkeys(spellings(first_word(text)), -math.inf)
    if said := strip_markup(held):
        emit(TextDelta(said))


def _is_object(text: str) -> bool:
    """Whether `text` begins with a whole JSON object already (the arguments end there)."""
    if "}" not in text:
        return False
    try:
        _DECODER.raw_decode(text.lstrip())
    except ValueError:
        return False
    return True


def _arguments(raw: str) -> dict[str, Any]:
    try:
        value = loads_lenient(raw)
    except ValueError as error:
        raise PlannerError(f"the model's arguments could not be read: {raw[:80]!r}") from error
    return value if isinstance(value, dict) else {}


_DONE = object()


async def _from_thread(produce: Callable[[Emit, threading.Event], None]) -> AsyncIterator[PlanEvent]:
    """Run `produce(emit, cancel)` in a worker thread and yield what it emits, as it emits it.

    A consumer that stops early (a client left, a barge-in) sets `cancel`; the thread stops at
    its next token and lets the model go, without anyone waiting for it.
    """
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[Any] = asyncio.Queue()
    cancel = threading.Event()

    def put(item: Any) -> None:
        try:
            loop.call_soon_threadsafe(queue.put_nowait, item)
        except RuntimeError:  # the loop is gone: nobody is listening
            cancel.set()

    def work() -> None:
        try:
            produce(put, cancel)
            put(_DONE)
        except BaseException as error:  # handed to the consumer, raised there
            put(error)

    loop.run_in_executor(None, work)
    try:
        while (item := await queue.get()) is not _DONE:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        cancel.set()
