"""Step-Audio 2's prompt text, for running the open weights locally with transformers.

The same messages that model/step_audio2_format.py sends to a server render here to the
text StepFun's own `StepAudio2.apply_chat_template` builds (Step-Audio2 `stepaudio2.py`):
each message is `<|BOT|>{role}\\n{content}<|EOT|>`, the role `user` is written `human`,
a message marked `"eot": False` (the `<tts_start>` one) is left open for the model to
continue, and `content: None` opens a turn. Each audio chunk (at most 25 s) becomes
`<audio_start>`, one `<audio_patch>` per encoder frame, `<audio_end>`; the local model
fills the patches from the log-mel features of the same chunk.

Two shapes StepFun's local examples do not show are rendered as the model writes them:
an earlier spoken answer (`tts_content`) as `<tts_start>` + its text + its `<audio_N>`
tokens, and a call as `<tool_call>function\\n{name}\\n{json}</tool_call>` after the text.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence
from typing import Any

from model.audio import SAMPLE_RATE
from model.step_audio2_format import MAX_CHUNK_S, TOOL_SCHEMAS_ROLE, TTS_START, USER_ROLE
from model.vocoder import read_wav

__all__ = ["BOT", "EOT", "audio_placeholder", "audio_token_count", "render_prompt"]

BOT = "<|BOT|>"
EOT = "<|EOT|>"
_MEL_HOP = 160
_MEL_PADDING = 479


def audio_token_count(samples: int) -> int:
    """`<audio_patch>` tokens for a chunk of `samples` at 16 kHz, as StepFun's
    `compute_token_num(log_mel_spectrogram(chunk, padding=479).shape[1])` counts them:
    stride-2 conv, stride-2 pooling, then the adaptor's stride-2 conv."""
    frames = (samples + _MEL_PADDING) // _MEL_HOP
    encoded = (frames - 2 + 1) // 2 // 2
    return (encoded + 2 * 1 - 3) // 2 + 1


def audio_placeholder(samples: int) -> str:
    """The placeholder text of one chunk of audio, split at 25 s as the encoder takes it."""
    step = MAX_CHUNK_S * SAMPLE_RATE
    chunks = [min(step, samples - start) for start in range(0, samples, step)]
    return "".join(f"<audio_start>{'<audio_patch>' * audio_token_count(n)}<audio_end>" for n in chunks)


def _audio_samples(part: Mapping[str, Any]) -> int:
    data = part["input_audio"]["data"] if "input_audio" in part else part["data"]
    samples, rate = read_wav(base64.b64decode(data))
    return round(len(samples) * SAMPLE_RATE / rate)


def _content(content: Any) -> str:
    if isinstance(content, str):
        return content
    out: list[str] = []
    for part in content:
        if part["type"] == "text":
            out.append(part["text"])
        elif part["type"] == "input_audio":
            out.append(audio_placeholder(_audio_samples(part)))
        elif part["type"] == "token":  # StepFun's raw-token parts: already text here
            out.append(str(part["token"]))
    return "".join(out)


def _calls(calls: Sequence[Mapping[str, Any]]) -> str:
    rendered = []
    for call in calls:
        function = call.get("function", call)
        arguments = function.get("arguments", {})
        arguments = arguments if isinstance(arguments, str) else json.dumps(arguments, ensure_ascii=False)
        rendered.append(f"<tool_call>function\n{function['name']}\n{arguments}</tool_call>")
    return "".join(rendered)


def render_prompt(
    messages: Sequence[Mapping[str, Any]],
    *,
    tools: Sequence[Mapping[str, Any]] | None = None,
    add_generation_prompt: bool = False,
) -> str:
    """The prompt text. `tools` (OpenAI declarations) go in a `tool_json_schemas` message
    after the system message, unless the messages have one already."""
    messages = list(messages)
    if tools and not any(m["role"] == TOOL_SCHEMAS_ROLE for m in messages):
        at = 1 if messages and messages[0]["role"] == "system" else 0
        schemas = {"role": TOOL_SCHEMAS_ROLE, "content": json.dumps(list(tools), ensure_ascii=False)}
        messages.insert(at, schemas)
    out: list[str] = []
    for message in messages:
        role = USER_ROLE if message["role"] == "user" else message["role"]
        content = message.get("content")
        if content is None and "tts_content" not in message and not message.get("tool_calls"):
            out.append(f"{BOT}{role}\n")
            continue
        body = _content(content) if content is not None else ""
        if tts := message.get("tts_content"):
            body = f"{TTS_START}{tts.get('tts_text', '')}{tts.get('tts_audio', '')}" + body
        body += _calls(message.get("tool_calls") or [])
        out.append(f"{BOT}{role}\n{body}" + (EOT if message.get("eot", True) else ""))
    if add_generation_prompt and (not messages or messages[-1].get("eot", True)):
        out.append(f"{BOT}assistant\n")
    return "".join(out)
