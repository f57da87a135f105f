"""The CLI's answer to bad input: exit code 2, one clear line, no stack trace, nothing stored."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


def _ask(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "VOICEGRAPH_DATA_DIR": str(tmp_path / "data")}
    return subprocess.run(
        [sys.executable, "-m", "api.cli", "ask", *args], capture_output=True, text=True, env=env, timeout=120
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "exactly one of --text or --audio"),
        (("--text", "hi", "--audio", "x.wav"), "exactly one of --text or --audio"),
        (("--text", "   "), "text is empty"),
        (("--text", "hi", "--session", "bad id!"), "session id"),
        (("--audio", "missing.wav"), "no such audio file"),
        (("--audio", "{corrupt}"), "audio"),
        (("--audio", "{empty}"), "empty"),
        (("--text", "hi", "--kb", "no/such/folder"), "no such folder"),
    ],
)
def test_bad_input_exits_2_with_a_message(tmp_path: Path, args: tuple[str, ...], message: str) -> None:
    corrupt = tmp_path / "corrupt.wav"
    corrupt.write_bytes(b"RIFF\x00\x00\x00\x00WAVEfmt garbage" * 20)
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    args = tuple(a.format(corrupt=corrupt, empty=empty) for a in args)
    done = _ask(tmp_path, *args)
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert message in done.stderr.lower() or message in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "data" / "memory.sqlite").exists()
