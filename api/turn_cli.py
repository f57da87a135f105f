"""The `ask` command's work: one turn through the same turn runner the HTTP face uses."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from agent.runner import TurnRequest, TurnRunner
from api.compose import open_services
from api.settings import Settings
from model.audio import decode_audio, encode_wav
from model.errors import InputError

__all__ = ["read_audio_file", "run_ask"]


def read_audio_file(path: Path, settings: Settings) -> Any:
    if not path.is_file():
        raise InputError(f"no such audio file: {path}")
    if path.stat().st_size > settings.max_upload_bytes:
        raise InputError(f"{path} is larger than {settings.max_upload_bytes} bytes")
    return decode_audio(path.read_bytes(), max_seconds=settings.max_audio_seconds)


async def run_ask(
    settings: Settings, *, text: str | None, audio: Path | None, session: str, out: Path | None
) -> dict[str, Any]:
    """Check the input before loading any model, run the turn, write the reply WAV."""
    if settings.kb_dir is not None and not settings.kb_dir.is_dir():
        raise InputError(f"--kb: no such folder: {settings.kb_dir}")
    samples = read_audio_file(audio, settings) if audio is not None else None
    request = TurnRequest(session_id=session, text=text, audio=samples, tenant=settings.tenant, speak=settings.speak)
    TurnRunner.validate(request)
    async with open_services(settings) as services:
        output = await services.runner.run_turn(request)
    result: dict[str, Any] = dict(output.result)
    result["audio_path"] = None
    if output.audio.size:
        path = out or settings.data_dir / "replies" / f"{session}-{output.result['turn']}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(encode_wav(output.audio, output.sample_rate))
        result["audio_path"] = str(path)
    return result
