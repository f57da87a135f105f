"""Whether a tool call's words come from the conversation.

A small planner that leans toward calling invents what a call needs when nothing asked for
it: "How many legs does an octopus have?" became `get_weather(location="London, UK")`, and
"What's a good name for a cat?" a call for the time in UTC. Calls the user asked for carry
their words: the place, the query, the voice described. So a call whose free-text arguments
share no word with what was said is one to think again about (model/cascade_steps.py).

Only required string arguments without an enum are read (a choice from a list, or a number,
is the model's to make); a call with none of them is grounded. One shared word is enough,
and words match as equal, or by their first four letters when both have at least four
("bike" and "bikes", "Scottish" and "Scotland").
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

__all__ = ["FUNCTION_WORDS", "WORD", "conversation_words", "grounded", "shares_word"]

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


def conversation_words(messages: Sequence[Mapping[str, Any]]) -> set[str]:
    """The words of what the user and the assistant said (not the system block, not what a
    tool returned): what a call's arguments may take up."""
    words: set[str] = set()
    for message in messages:
        if message.get("role") not in ("user", "assistant"):
            continue
        content = message.get("content")
        if isinstance(content, str):
            words |= _words(content)
        for call in message.get("tool_calls") or ():
            words |= _words(json.dumps(call.get("arguments", {}), ensure_ascii=False))
    return words


def _free_text(arguments: Mapping[str, Any], schema: Mapping[str, Any]) -> Iterable[str]:
    properties = schema.get("properties") or {}
    for key in schema.get("required") or ():
        spec = properties.get(key)
        if not isinstance(spec, Mapping) or "enum" in spec:
            continue
        value = arguments.get(key)
        if spec.get("type") == "string" and isinstance(value, str):
            yield value
        elif spec.get("type") == "array" and isinstance(value, list):
            yield from (item for item in value if isinstance(item, str))


def shares_word(word: str, said: set[str]) -> bool:
    """Whether `word` (lower case) is in `said`, or begins as a word of it does (its stem)."""
    if word in said:
        return True
    return len(word) >= _STEM and any(len(other) >= _STEM and other[:_STEM] == word[:_STEM] for other in said)


def grounded(arguments: Mapping[str, Any], schema: Mapping[str, Any], said: set[str]) -> bool:
    """Whether the call's free-text arguments share a word with `said` (conversation_words),
    or it has none to check."""
    texts = [text for text in _free_text(arguments, schema) if _words(text)]
    if not texts:
        return True
    return any(shares_word(word, said) for text in texts for word in _words(text))
