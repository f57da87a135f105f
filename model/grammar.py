"""Grammars (GBNF, llama.cpp's format) that leave a small model no way to write a bad call.

The cascade writes a tool call in three constrained pieces: the tool's name (one of the
names on offer, `reply` included), then either the reply's text (a JSON string body) or
the arguments (JSON that fits the tool's schema). Between the pieces the planner appends
the fixed JSON around them itself, so that text is prefilled rather than decoded.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Iterable, Mapping
from typing import Any

from model.llama_lib import load_llama

__all__ = ["PLAIN_ANSWER", "arguments_grammar", "name_grammar"]

log = logging.getLogger(__name__)

PLAIN_ANSWER = r"""root ::= [^<{\[\x00-\x20] [^<]*
"""
"""A spoken answer in plain text: it does not start blank, opens no tag (no other call) and
does not begin as JSON (a call written out as text, for a tool declared but not on offer); it
ends where the model ends its turn."""

_ANY_OBJECT: dict[str, Any] = {"type": "object"}


def _literal(text: str) -> str:
    return json.dumps(text)  # a JSON string literal is a GBNF literal (names hold no control characters)


def name_grammar(names: Iterable[str]) -> str:
    """One of `names`, then the closing quote of the `"name"` value (and the comma after it,
    when the model writes them as one token)."""
    choices = " | ".join(_literal(name) for name in sorted(set(names)))
    return f'root ::= ({choices}) "\\"" ","?\n'


def arguments_grammar(schema: Mapping[str, Any]) -> str:
    """A JSON object that fits the tool's parameter schema, and the brace that closes the call.

    Without that brace, the token the model likes best at the end (`"}}`) would be refused,
    and the second best is a comma: the model would go on to fill optional arguments it had
    no use for.

    A schema the converter cannot express (rare keywords) falls back to any JSON object:
    the tool runtime still validates the arguments before the tool runs.
    """
    return _arguments_grammar(json.dumps(schema, sort_keys=True))


@functools.lru_cache(maxsize=256)
def _arguments_grammar(schema: str) -> str:
    load_llama()
    from llama_cpp.llama_grammar import json_schema_to_gbnf

    try:
        grammar = json_schema_to_gbnf(schema)
    except Exception as error:  # the converter raises bare Exceptions and asserts on what it cannot express
        log.warning("tool schema cannot be turned into a grammar (%s); any JSON object is allowed", error)
        grammar = json_schema_to_gbnf(json.dumps(_ANY_OBJECT))
    root = "root ::= "
    rules = [f"arguments ::= {line[len(root) :]}" if line.startswith(root) else line for line in grammar.splitlines()]
    return "\n".join([f'{root}" "? arguments "}}"?', *rules]) + "\n"
