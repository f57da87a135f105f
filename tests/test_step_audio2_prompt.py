"""The local renderer of Step-Audio 2's prompt, against goldens built from StepFun's examples
(Step-Audio2 `examples.py`, rendered as its `StepAudio2.apply_chat_template` does)."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from model.audio import SAMPLE_RATE, encode_wav
from model.step_audio2_format import audio_parts
from model.step_audio2_prompt import audio_token_count, render_prompt

GOLDEN = Path(__file__).parent / "golden"
SYSTEM_CN = (
    "你的名字叫做小跃，是由阶跃星辰公司训练出来的语音大模型。\n你具备调用工具解决问题的能力，你需要根据用户的需求和上下文情景，"
    "自主选择是否调用系统提供的工具来协助用户。\n你情感细腻，观察能力强，擅长分析用户的内容，并作出善解人意的回复，说话的过程中"
    "时刻注意用户的感受，富有同理心，提供多样的情绪价值。\n今天是2025年8月28日，星期四\n请用默认女声与用户交流"
)
SEARCH = {
    "type": "function",
    "function": {
        "name": "search",
        "description": "搜索工具",
        "parameters": {
            "type": "object",
            "properties": {"query": {"type": "string", "description": "搜索关键词"}},
            "required": ["query"],
            "additionalProperties": False,
        },
    },
}
GREAT_WALL = "Give me a brief introduction to the Great Wall."


def _audio(seconds: float) -> list[dict[str, Any]]:
    return audio_parts(encode_wav(np.zeros(int(seconds * SAMPLE_RATE), np.float32), SAMPLE_RATE))


def _tool_turn() -> list[dict[str, Any]]:
    return [
        {"role": "system", "content": SYSTEM_CN},
        {"role": "tool_json_schemas", "content": json.dumps([SEARCH], ensure_ascii=False)},
        {"role": "human", "content": _audio(3.0)},
    ]


CASES: dict[str, tuple[list[dict[str, Any]], dict[str, Any]]] = {
    "text_to_text": (
        [{"role": "system", "content": "You are a helpful assistant."}, {"role": "user", "content": GREAT_WALL}],
        {"add_generation_prompt": True},
    ),
    "text_to_speech": (
        [
            {"role": "system", "content": "You are a helpful assistant."},
            {"role": "human", "content": GREAT_WALL},
            {"role": "assistant", "content": "<tts_start>", "eot": False},
        ],
        {},
    ),
    "tool_call_speech": ([*_tool_turn(), {"role": "assistant", "content": "<tts_start>", "eot": False}], {}),
    "tool_result_input": (
        [
            *_tool_turn(),
            {
                "role": "input",
                "content": [
                    {"type": "text", "text": "上证指数开盘价为3800点。"},
                    {"type": "text", "text": "\n\n\n请用口语化形式总结检索结果，简短地回答用户的问题。"},
                ],
            },
            {"role": "assistant", "content": "<tts_start>", "eot": False},
        ],
        {},
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_prompt_matches_the_golden(name: str) -> None:
    messages, options = CASES[name]
    assert render_prompt(messages, **options) == (GOLDEN / f"{name}.txt").read_text()


def test_tools_given_apart_go_after_the_system_message() -> None:
    messages = [{"role": "system", "content": SYSTEM_CN}, {"role": "human", "content": _audio(3.0)}]
    messages.append({"role": "assistant", "content": "<tts_start>", "eot": False})
    assert render_prompt(messages, tools=[SEARCH]) == (GOLDEN / "tool_call_speech.txt").read_text()


def test_audio_over_25_seconds_is_split_like_the_encoder_splits_it() -> None:
    prompt = render_prompt([{"role": "human", "content": _audio(60.0)}])
    assert prompt.count("<audio_start>") == 3
    assert prompt.count("<audio_patch>") == 2 * audio_token_count(25 * SAMPLE_RATE) + audio_token_count(
        10 * SAMPLE_RATE
    )


def test_calls_and_spoken_history_are_written_as_the_model_writes_them() -> None:
    call = {"id": "c1", "type": "function", "function": {"name": "search", "arguments": '{"query": "x"}'}}
    message = {"role": "assistant", "tts_content": {"tts_text": "Hm.", "tts_audio": "<audio_1>"}, "tool_calls": [call]}
    expected = '<|BOT|>assistant\n<tts_start>Hm.<audio_1><tool_call>function\nsearch\n{"query": "x"}</tool_call><|EOT|>'
    assert render_prompt([message]) == expected
    assert base64.b64decode(_audio(1.0)[0]["input_audio"]["data"])[:4] == b"RIFF"
