"""The packaged planner served over the OpenAI-compatible API (`voicegraph planner serve`), and
voicegraph using it with VOICEGRAPH_PLANNER=openai: how prompts are rendered, then the real
server on loopback answering a tool turn and a no-tool turn."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agent.runner import TurnRequest
from api.compose import open_services
from api.processes import ServerProcess, free_port
from api.settings import Settings
from model.assets import PLANNER_GGUF_NAME
from model.chat_template import ChatTemplate
from model.planner_server import continuing_prompt
from model.testing import TextOnlyASR

TEMPLATE = ChatTemplate(
    "{% for m in messages %}<{{ m.role }}>{{ m.content or '' }}"
    "{% for c in m.tool_calls or [] %}{{ c.function.arguments | tojson }}{% endfor %}</{{ m.role }}>{% endfor %}"
    "{% if add_generation_prompt %}<assistant>{% endif %}"
)
MODEL = Path(PLANNER_GGUF_NAME).stem


def test_a_final_assistant_text_is_continued_not_answered_anew() -> None:
    messages = [{"role": "user", "content": "time?"}, {"role": "assistant", "content": '<tool_call>{"name": "'}]
    assert continuing_prompt(TEMPLATE, messages, None) == '<user>time?</user><assistant><tool_call>{"name": "'
    assert continuing_prompt(TEMPLATE, messages[:1], None) == "<user>time?</user><assistant>"


def test_call_arguments_reach_the_template_as_objects() -> None:
    call = {"id": "c1", "type": "function", "function": {"name": "t", "arguments": '{"city": "Oslo"}'}}
    messages = [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "content": "ok", "tool_call_id": "c1"},
    ]
    prompt = continuing_prompt(TEMPLATE, messages, None)
    assert '<assistant>{"city": "Oslo"}</assistant><tool>ok</tool><assistant>' in prompt


@pytest.fixture(scope="module")
def planner_url(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Iterator[str]:
    port = free_port()
    env = {**os.environ, "VOICEGRAPH_DATA_DIR": str(data_dir)}
    command = [sys.executable, "-m", "api.cli", "planner", "serve", "--port", str(port)]
    log = tmp_path_factory.mktemp("planner") / "planner.log"
    server = ServerProcess(command, env, log, port=port, ready_path="/v1/models")
    try:
        yield f"{server.url}/v1"
    finally:
        server.stop()


def _turns(settings: Settings, questions: list[str]) -> list[dict[str, Any]]:
    async def run() -> list[dict[str, Any]]:
        async with open_services(settings, asr=TextOnlyASR()) as services:
            return [
                (await services.runner.run_turn(TurnRequest(f"s{n}", text=q, speak=False))).result
                for n, q in enumerate(questions)
            ]

    return asyncio.run(run())


@pytest.mark.real
def test_voicegraph_plans_on_the_served_model(planner_url: str, tmp_path: Path) -> None:
    """With the forced tool choice, as a model this small needs: on its own it writes calls in
    a ```json fence, which a native tool-calling planner would speak."""
    settings = Settings(
        data_dir=tmp_path,
        planner="openai",
        planner_url=planner_url,  # type: ignore[arg-type]  # pydantic parses the URL
        planner_model=MODEL,
        planner_tool_choice="forced",
        speak=False,
        voices=False,
        web_search="off",
        weather=False,
    )
    clock, hello = _turns(settings, ["What time is it in Tokyo right now?", "Hello! How are you today?"])
    assert [call["name"] for call in clock["tool_calls"]] == ["get_date_time"], clock
    assert "tokyo" in str(clock["tool_calls"][0]["arguments"]).lower() and clock["answer"].strip()
    assert hello["tool_calls"] == [] and hello["answer"].strip(), hello
