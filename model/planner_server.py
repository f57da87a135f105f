"""The packaged GGUF behind an OpenAI-compatible API (llama-cpp-python's server), so that many
voicegraph replicas share one planner with `VOICEGRAPH_PLANNER=openai`.

The server renders prompts with the model's own chat template (model/chat_template.py, as
the local engine does), tools included, with one addition llama-cpp-python's own
formatters lack: a conversation that ends in an assistant message is continued, not closed
and answered anew. That is what the cascade's forced tool choice sends
(`VOICEGRAPH_PLANNER_TOOL_CHOICE=forced`, model/openai_engine.py), which is how a model this
small picks a tool reliably. Calls the model writes come back as `<tool_call>` text, which
both served planners read.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from model.chat_template import ChatTemplate
from model.errors import ModelAssetError
from model.llama_lib import load_llama
from model.llm import default_threads

__all__ = ["CHAT_FORMAT", "build_planner_server", "continuing_prompt"]

CHAT_FORMAT = "voicegraph"
"""The name the chat handler is registered under in llama-cpp-python."""
_MISSING = "the planner server needs llama-cpp-python's server extras: pip install 'llama-cpp-python[server]'"


def _calls_as_objects(message: Mapping[str, Any]) -> dict[str, Any]:
    """An assistant message's calls with their arguments as objects, as the template expects
    (the OpenAI wire has them as JSON strings)."""
    calls = []
    for call in message.get("tool_calls") or []:
        function = dict(call.get("function") or {})
        if isinstance(function.get("arguments"), str):
            with contextlib.suppress(json.JSONDecodeError):
                function["arguments"] = json.loads(function["arguments"])
        calls.append({**call, "function": function})
    return {**message, "tool_calls": calls} if calls else dict(message)


def continuing_prompt(
    template: ChatTemplate, messages: Sequence[Mapping[str, Any]], tools: Sequence[Mapping[str, Any]] | None
) -> str:
    """The prompt for `messages`: answered anew, or continued when the last is the start of an
    assistant answer (text, no calls)."""
    wire = [_calls_as_objects(m) if m.get("role") == "assistant" else dict(m) for m in messages]
    last = wire[-1] if wire else {}
    if last.get("role") == "assistant" and last.get("content") and not last.get("tool_calls"):
        return template.render(wire[:-1], tools=tools) + str(last["content"])
    return template.render(wire, tools=tools)


def _chat_handler(llama_cpp: Any) -> Any:
    """A llama-cpp-python chat handler that renders with the model's own template."""
    chat_format = llama_cpp.llama_chat_format
    templates: dict[int, tuple[ChatTemplate, str]] = {}

    def handler(*, llama: Any, messages: list[dict[str, Any]], tools: Any = None, **kwargs: Any) -> Any:
        if id(llama) not in templates:
            eos = llama.detokenize([llama.token_eos()], special=True).decode()
            source = llama.metadata["tokenizer.chat_template"]
            templates[id(llama)] = (ChatTemplate(source, eos_token=eos), eos)
        template, eos = templates[id(llama)]

        def formatter(*, messages: list[dict[str, Any]], tools: Any = None, **_: Any) -> Any:
            prompt = continuing_prompt(template, messages, tools)
            return chat_format.ChatFormatterResponse(prompt=prompt, stop=[eos], added_special=True)

        completion = chat_format.chat_formatter_to_chat_completion_handler(formatter)
        return completion(llama=llama, messages=messages, tools=tools, **kwargs)

    return handler


def build_planner_server(
    gguf: Path, *, model_name: str, context_tokens: int, threads: int | None = None, api_key: str | None = None
) -> Any:
    """The server's ASGI app on `gguf`, answering to `model_name` (and any other name)."""
    llama_cpp = load_llama()
    try:
        from llama_cpp.server.app import create_app
        from llama_cpp.server.settings import ModelSettings, ServerSettings
    except ImportError as error:
        raise ModelAssetError(_MISSING) from error
    registry = llama_cpp.llama_chat_format.LlamaChatCompletionHandlerRegistry()
    registry.register_chat_completion_handler(CHAT_FORMAT, _chat_handler(llama_cpp), overwrite=True)
    model = ModelSettings(
        model=str(gguf),
        model_alias=model_name,
        chat_format=CHAT_FORMAT,
        n_ctx=context_tokens,
        n_threads=threads or default_threads(),
        n_threads_batch=threads or default_threads(),
        verbose=False,
    )
    # Requests wait their turn: by default a new request would cut off the one being answered,
    # and with many replicas sharing the server that is another user's answer.
    server = ServerSettings(api_key=api_key, interrupt_requests=False)
    return create_app(server_settings=server, model_settings=[model])
