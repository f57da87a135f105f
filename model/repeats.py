"""An answer after a tool result that begins to say an earlier answer again.

A 1.5B model, given a clock result right after it had answered "Why is the sky blue?",
answered "What time is it in Chicago?" with "The sky is blue because of the scattering of
light by the atmosphere." again, word for word. Such a copy shows itself while it is being
written: its words so far are the beginning of an earlier answer, and among them are words
that neither this turn's question, nor its calls, nor their results say. The step then goes
back to the start of the answer and lets the model begin it with any word but the one the
copy began with: kept from "sky" after "The", the model wrote "The.sky is blue." and
"TheSky is blue."; kept from "The", it answers from the result.

An answer that merely begins as an earlier one did ("The time in Paris ..." after "The time
in Berlin ...") says this turn's words and goes on.

The tools' notes to the planner count as earlier answers: asked to speak in a high, fast voice,
the model answered the voice tool's result with the knowledge tool's note, "The user's own
documents (search them with knowledge_search) mention: Brannoch Orchard, ...", word for word.
A copy of a note may begin at any of its words: asked "Tell me something interesting.", the
model answered directly with the note's list of names, "Brannoch Orchard, Tobias Quell, ...".
Direct answers are watched for the notes alone: saying an earlier answer again is theirs to do
("Say that again.").
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from model.grounding import FUNCTION_WORDS, WORD, shares_word

__all__ = ["RepeatWatch", "first_word", "spellings"]

_WORD_START = re.compile(r"(?<!\w)")
UNSOURCED_WORDS = 2
"""How many words the turn did not say make a beginning a copy: one ("The current time ...")
is how answers of the same kind begin."""


def _turn_texts(turn: Sequence[Mapping[str, Any]]) -> Iterator[str]:
    """What this turn said: the question, the calls made (a tool's name says what was asked
    for: get_date_time, the time) and what they returned."""
    for message in turn:
        if message.get("role") in ("user", "tool") and isinstance(message.get("content"), str):
            yield message["content"]
        for call in message.get("tool_calls") or ():
            yield str(call.get("name", "")).replace("_", " ")
            yield json.dumps(call.get("arguments", {}), ensure_ascii=False)


class RepeatWatch:
    """Watches an answer as it is written against the conversation's earlier answers and the
    `unspoken` texts (the planner's notes, each line of them as an answer of its own)."""

    def __init__(self, messages: Sequence[Mapping[str, Any]], unspoken: str = "", *, answers: bool = True) -> None:
        """`answers`: watch for the conversation's earlier answers too, not only `unspoken`."""
        users = [at for at, message in enumerate(messages) if message.get("role") == "user"]
        last_user = users[-1] if users else 0
        earlier = (
            text
            for message in (messages[:last_user] if answers else ())
            if message.get("role") == "assistant"
            and not message.get("tool_calls")
            and isinstance(text := message.get("content"), str)
        )
        self.earlier = [" ".join(text.split()) for text in earlier if text.strip()]
        self.unspoken = [" ".join(line.split()) for line in unspoken.splitlines() if line.strip()]
        self._note_pieces = [line[at.start() :] for line in self.unspoken for at in _WORD_START.finditer(line)]
        """Each note from each place not inside a word on: where a copy of it may begin."""
        self.source = {word.lower() for text in _turn_texts(messages[last_user:]) for word in WORD.findall(text)}

    def holds(self, text: str) -> bool:
        """Whether `text` (the answer so far) is the beginning of an earlier answer, or a piece
        of a note from one of its words on: it may be a copy, and is not said yet."""
        said = " ".join(text.split())
        return bool(said) and any(piece.startswith(said) for piece in (*self.earlier, *self._note_pieces))

    def copied(self, text: str) -> bool:
        """Whether `text` is the beginning of an earlier answer with UNSOURCED_WORDS words the
        turn did not say written out."""
        if not self.holds(text):
            return False
        unsourced = [
            match
            for match in WORD.finditer(text)
            if match.end() < len(text)  # written out: something follows it
            and match.group().lower() not in FUNCTION_WORDS
            and not shares_word(match.group().lower(), self.source)
        ]
        return len(unsourced) >= UNSOURCED_WORDS


def first_word(text: str) -> str:
    """The first word of `text` ("" when it has none)."""
    match = WORD.search(text)
    return match.group() if match else ""


def spellings(word: str) -> set[str]:
    """How a model may write `word`: after a space or not, in each case (none for no word)."""
    forms = {word, word.lower(), word.capitalize(), word.upper()} if word else set()
    return {space + form for space in ("", " ") for form in forms}
