"""A model's own chat template, rendered the way transformers renders it.

A GGUF carries its chat template (Jinja) in its metadata. We render it ourselves rather
than through llama-cpp-python's formatters because the prompt must be byte-for-byte what
transformers' `apply_chat_template` makes of the same conversation: the same model on
either engine sees the same prompt, and a conversation rendered again next turn must
begin with exactly the text whose KV state is kept (model/kv_state.py). Jinja's own
`tojson` would sort keys and escape `<`, `>` and `&`, so `tojson` is transformers' plain
`json.dumps` here too.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from jinja2.exceptions import TemplateError
from jinja2.ext import loopcontrols
from jinja2.sandbox import ImmutableSandboxedEnvironment

from model.errors import PlannerError

__all__ = ["ChatTemplate"]


def _tojson(
    value: Any, ensure_ascii: bool = False, indent: int | None = None, separators: Any = None, sort_keys: bool = False
) -> str:
    return json.dumps(value, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


def _raise_exception(message: str) -> None:
    raise TemplateError(message)


def _strftime_now(fmt: str) -> str:
    return datetime.now().strftime(fmt)


class ChatTemplate:
    """Renders messages (and tool declarations) into the prompt text the model was trained on."""

    def __init__(self, source: str, *, bos_token: str = "", eos_token: str = "") -> None:
        env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols])
        env.filters["tojson"] = _tojson
        env.globals["raise_exception"] = _raise_exception
        env.globals["strftime_now"] = _strftime_now
        self._template = env.from_string(source)
        self._tokens = {"bos_token": bos_token, "eos_token": eos_token}

    def render(
        self,
        messages: Sequence[Mapping[str, Any]],
        *,
        tools: Sequence[Mapping[str, Any]] | None = None,
        add_generation_prompt: bool = True,
    ) -> str:
        try:
            return self._template.render(
                messages=list(messages),
                tools=list(tools) if tools else None,
                add_generation_prompt=add_generation_prompt,
                **self._tokens,
            )
        except TemplateError as error:
            raise PlannerError(f"the model's chat template refused the conversation: {error}") from error
