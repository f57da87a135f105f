"""Step-Audio 2's dialect of the chat format, as StepFun's vLLM fork and SGLang take it.

Facts from StepFun's public client code (Step-Audio2 `stepaudio2vllm.py`, `examples-vllm.py`):
- a system message always comes first; it carries the date and the voice instruction;
- the user's role is `human`; audio goes in as `input_audio` parts (base64 16 kHz mono
  16-bit WAV, at most 25 s each), before any text of the same message;
- a spoken answer is asked for with a final assistant message `<tts_start>` that the server
  continues (`continue_final_message`), or with `tts_output: true` on SGLang;
- tool results go back in role `input`; an earlier spoken answer goes back as
  `tts_content` ({tts_text, tts_audio}), so the model sees its own speech;
- tools go in the request's `tools` (the server's template renders them as the
  `tool_json_schemas` message after the system message, and its `step_audio_2` parser
  then returns calls as `tool_calls`); for servers without that template they can be sent
  as that message instead (`tools_as_message`).
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import numpy as np

from model.audio import SAMPLE_RATE, encode_wav, resample
from model.base import Message, ToolSpecDict, message_text, prompt_text, untrusted_text
from model.openai_wire import declarations, tool_call_wire
from model.vocoder import read_wav

__all__ = [
    "AUDIO_PADDING",
    "AUDIO_TOKEN",
    "MAX_CHUNK_S",
    "TOOL_RESULT_ROLE",
    "TOOL_SCHEMAS_ROLE",
    "TTS_START",
    "USER_ROLE",
    "VOICE_CLIP_NOTE",
    "audio_parts",
    "audio_token_text",
    "build_messages",
    "system_prompt",
]

AUDIO_PADDING = 6561
"""Speech token ids from here up are padding, not sound: the vocoder must not see them."""
AUDIO_TOKEN = re.compile(r"<audio_(\d+)>")
MAX_CHUNK_S = 25
TTS_START = "<tts_start>"
USER_ROLE = "human"
TOOL_RESULT_ROLE = "input"
TOOL_SCHEMAS_ROLE = "tool_json_schemas"
DEFAULT_VOICE = "the default female voice"

_SYSTEM = (
    "You are a voice assistant. You can call tools to help the user: decide from the user's request and the "
    'conversation whether a tool is needed, and before calling one, say a short line such as "Let me check." '
    "Answer in one to three short spoken sentences, grounded in the tool results; when the results number their "
    "passages, say which one you used, like [1].\nToday is {today}.\nSpeak with the user in {voice}."
)
VOICE_CLIP_NOTE = "(The last audio clip above is not the user speaking: it is a sample of the voice you answer in.)"


def system_prompt(today: datetime, voice: str | None) -> str:
    """StepFun's system prompts end with the date and the voice to speak in; so does ours."""
    return _SYSTEM.format(today=today.strftime("%A %d %B %Y"), voice=voice or DEFAULT_VOICE)


def _pcm16k(wav: bytes) -> np.ndarray:
    samples, rate = read_wav(wav)
    return resample(samples, rate, SAMPLE_RATE)


def audio_parts(wav: bytes) -> list[dict[str, Any]]:
    """WAV audio as `input_audio` parts of at most 25 s each, 16 kHz mono 16-bit, as the
    audio encoder takes them (longer clips would be cut by the server, not split)."""
    samples = _pcm16k(wav)
    step = MAX_CHUNK_S * SAMPLE_RATE
    parts = []
    for start in range(0, len(samples), step):
        data = base64.b64encode(encode_wav(samples[start : start + step], SAMPLE_RATE)).decode("ascii")
        parts.append({"type": "input_audio", "input_audio": {"data": data, "format": "wav"}})
    return parts


def audio_token_text(tokens: Sequence[int]) -> str:
    return "".join(f"<audio_{t}>" for t in tokens)


def _user(message: Message, clip: bytes | None, user_role: str) -> dict[str, Any]:
    content = message["content"]
    if isinstance(content, str) and clip is None:
        return {"role": user_role, "content": untrusted_text(content)}
    parts: list[dict[str, Any]] = []
    texts: list[str] = [content] if isinstance(content, str) else []
    for part in content if isinstance(content, list) else []:
        if part["type"] == "input_audio":
            parts.extend(audio_parts(base64.b64decode(part["data"])))
        else:
            texts.append(part["text"])
    texts = [untrusted_text(text) for text in texts]
    if clip is not None:
        parts.extend(audio_parts(clip))
        texts.append(VOICE_CLIP_NOTE)
    parts.extend({"type": "text", "text": text} for text in texts if text)
    return {"role": user_role, "content": parts}


def _assistant(message: Message) -> dict[str, Any]:
    text = message_text(message)
    wire: dict[str, Any] = {"role": "assistant"}
    if message.get("speech_tokens"):
        wire["tts_content"] = {"tts_text": text, "tts_audio": audio_token_text(message["speech_tokens"])}
    else:
        wire["content"] = text
    if message.get("tool_calls"):
        wire["tool_calls"] = [tool_call_wire(c["id"], c["name"], c["arguments"]) for c in message["tool_calls"]]
    return wire


def build_messages(
    messages: Sequence[Message],
    *,
    system: str,
    tools: Sequence[ToolSpecDict] = (),
    speak: bool = False,
    voice_clip: bytes | None = None,
    tools_as_message: bool = False,
    user_role: str = USER_ROLE,
) -> list[dict[str, Any]]:
    """The request's messages. The voice clip goes into the latest user message, after its
    audio, so the model hears the voice it will answer in; `speak` adds the `<tts_start>`
    message to continue."""
    out: list[dict[str, Any]] = [{"role": "system", "content": system}]
    if tools and tools_as_message:
        out.append({"role": TOOL_SCHEMAS_ROLE, "content": json.dumps(declarations(tools), ensure_ascii=False)})
    last_user = max((i for i, m in enumerate(messages) if m["role"] == "user"), default=-1)
    for index, message in enumerate(messages):
        role = message["role"]
        if role == "user":
            out.append(_user(message, voice_clip if index == last_user else None, user_role))
        elif role == "assistant":
            out.append(_assistant(message))
        elif role == "tool":
            result = {"type": "text", "text": prompt_text(message)}
            out.append({"role": TOOL_RESULT_ROLE, "tool_call_id": message.get("tool_call_id", ""), "content": [result]})
        else:
            out.append({"role": role, "content": prompt_text(message)})
    if speak:
        out.append({"role": "assistant", "content": TTS_START, "eot": False})
    return out
