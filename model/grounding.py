"""Whether a tool call's words come from the conversation.

A small planner that leans toward calling invents what a call needs when nothing asked for
it: "How many legs does an octopus have?" became `get_weather(location="London, UK")`, and
"What's a good name for a cat?" a call for the time in UTC. Calls the user asked for carry
their words: the place, the query, the voice described, the amounts. So a call with an
argument nobody said is one to think again about (model/cascade_steps.py).

Only required arguments are read, and not a choice from a list, a yes or no or a nested
object (those are the model's to make). Each free text (a string, or a list of strings) must
share a word with what was said: words match as equal, or by their first four letters when
both have at least four ("bike" and "bikes", "Scottish" and "Scotland"); a text of digits
alone (a date, a time) is the model's to work out. Each number must have been said, in digits
or words, or as the percentage it is ("2.5%" and 0.025). BFCL's irrelevance cases show why
each argument counts: "Find a Thai restaurant in Chicago with vegetarian options." became a
hotel's availability in Chicago at "The Golden Gate", and "How many heads can I get after
tossing 3 coins?" a probability of 3 outcomes in 8.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from model.wer import CARDINALS, ordinal

__all__ = ["FUNCTION_WORDS", "WORD", "Said", "grounded", "shares_word", "what_was_said"]

WORD = re.compile(r"[^\W_]+")
"""A word: letters and digits (an underscore splits words)."""
_STEM = 4
FUNCTION_WORDS = frozenset(
    """a an the and or but if of in on at to for from by with about into over under than then
    is are was were be been being am do does did done have has had can could will would shall
    should may might must it its this that these those there here what which who whom whose
    when where why how i me my we us our you your he him his she her they them their not no
    yes so as up out all any some please now today just also very
    new old good great big little best""".split()
)
"""Words that say nothing of what a call is about. The last line are adjectives that begin
place names but never make one alone (New York, Great Falls): "a name for my new puppy" had
become the time in "America/New_York", which shared only "new" with it."""


def _words(text: str) -> set[str]:
    return {word for word in WORD.findall(text.lower()) if word not in FUNCTION_WORDS}


_IN_DIGITS = r"\d+(?:,\d{3})*(?:\.\d+)?|\.\d+"
_DIGITS = re.compile(_IN_DIGITS)
_TOKEN = re.compile(rf"{_IN_DIGITS}|[a-z]+")
_NUMBER_WORDS = {
    **CARDINALS,
    **{ordinal(word): n for word, n in CARDINALS.items() if 0 < n <= 12},  # "first" to "twelfth"
    "dozen": 12,
    "half": 0.5,
    "quarter": 0.25,
}
_SCALES = {"hundred": 100.0, "thousand": 1e3, "k": 1e3, "million": 1e6, "m": 1e6, "billion": 1e9, "bn": 1e9}


def _number(token: str) -> float | None:
    if token in _NUMBER_WORDS:
        return float(_NUMBER_WORDS[token])
    return float(token.replace(",", "")) if _DIGITS.fullmatch(token) else None


def _numbers(text: str) -> set[float]:
    """The numbers in `text`: in digits ("1,500", "2.5"), in words ("three", "twenty five",
    "a dozen"), and either followed by a scale ("5 million", "two thousand", "$5k"); each
    word of a number is one too."""
    found: set[float] = set()
    total = current = 0.0
    counting = False
    for token in [*_TOKEN.findall(text.lower()), ""]:
        value = _number(token)
        if counting and ((value is None and token not in _SCALES) or _DIGITS.fullmatch(token)):
            found.add(total + current)  # the number so far ends here
            total = current = 0.0
            counting = False
        if value is not None:
            found.add(value)
            current, counting = current + value, True
        elif token in _SCALES and counting:
            if _SCALES[token] < 1e3:
                current = (current or 1.0) * _SCALES[token]
            else:
                total, current = total + (current or 1.0) * _SCALES[token], 0.0
    return found


@dataclass(frozen=True)
class Said:
    """What the user and the assistant said: its words (not the function words) and the
    numbers among them."""

    words: frozenset[str]
    numbers: frozenset[float]


def what_was_said(messages: Sequence[Mapping[str, Any]]) -> Said:
    """What the user and the assistant said (not the system block, not what a tool
    returned): what a call's arguments may take up."""
    texts: list[str] = []
    for message in messages:
        if message.get("role") not in ("user", "assistant"):
            continue
        content = message.get("content")
        if isinstance(content, str):
            texts.append(content)
        texts += [json.dumps(call.get("arguments", {}), ensure_ascii=False) for call in message.get("tool_calls") or ()]
    return Said(
        frozenset(word for text in texts for word in _words(text)),
        frozenset(number for text in texts for number in _numbers(text)),
    )


def shares_word(word: str, said: set[str] | frozenset[str]) -> bool:
    """Whether `word` (lower case) is in `said`, or begins as a word of it does (its stem)."""
    if word in said:
        return True
    return len(word) >= _STEM and any(len(other) >= _STEM and other[:_STEM] == word[:_STEM] for other in said)


def _number_said(value: float, said: frozenset[float]) -> bool:
    """Whether `value` was said: as it is, or as a percentage of it (2.5 % and 0.025)."""
    value = abs(value)
    return any(math.isclose(value, n) or math.isclose(value * 100, n) or math.isclose(value, n * 100) for n in said)


def _required(arguments: Mapping[str, Any], schema: Mapping[str, Any]) -> Iterable[tuple[str, Any]]:
    """(type, value) of each required argument written that is not a choice from a list."""
    properties = schema.get("properties") or {}
    for key in schema.get("required") or ():
        spec = properties.get(key)
        if isinstance(spec, Mapping) and "enum" not in spec and key in arguments:
            kind = spec.get("type")
            if kind == "array" and isinstance(spec.get("items"), Mapping) and "enum" not in spec["items"]:
                kind = f"array of {spec['items'].get('type')}"
            yield str(kind), arguments[key]


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _argument_said(kind: str, value: Any, said: Said) -> bool:
    """Whether one argument was said: a free text shares a word with what was said (a text
    of digits alone, such as a date, is the model's to work out), a number was said."""
    if kind in ("number", "integer", "array of number", "array of integer"):
        numbers = value if isinstance(value, list) else [value]
        return all(_number_said(n, said.numbers) for n in numbers if _is_number(n))
    if kind in ("string", "array of string"):
        texts = [t for t in (value if isinstance(value, list) else [value]) if isinstance(t, str)]
        words = {word for text in texts for word in _words(text) if not word.isdigit()}
        return not words or any(shares_word(word, said.words) for word in words)
    return True


def grounded(arguments: Mapping[str, Any], schema: Mapping[str, Any], said: Said) -> bool:
    """Whether every required argument a user would give was said (`what_was_said`): each
    free text shares a word with it, each number is one said. A choice from a list, an
    optional argument, a yes or no and a nested object are the model's to make."""
    return all(_argument_said(kind, value, said) for kind, value in _required(arguments, schema))
