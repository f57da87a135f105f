"""`voicegraph eval` end to end: the command, spoken turns heard by the real recognizer, a
planner served on loopback that answers from a script, BFCL's checker, the table and the JSON."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.openai_fake import Reply, serving

CASES = [
    {
        "id": "clock-follow-up",
        "turns": [
            {"say": "What time is it in Tokyo?", "tool": "get_date_time", "args": {"timezone": "tokyo"}},
            {"say": "And in Rome?", "tool": "get_date_time", "args": {"timezone": "rome"}},
        ],
    },
    {"id": "joke", "say": "Tell me a joke about computers."},
]


def _bfcl_replies() -> list[Reply]:
    from api.eval_bfcl import load_bfcl, tool_specs

    replies = []
    for case in load_bfcl(limit=1):  # the sample the command takes
        if not case.answer:
            replies.append(Reply(text="None of these functions can do that."))
            continue
        name, params = next(iter(case.answer[0].items()))
        args = {k: v[0] for k, v in params.items() if v and v[0] != ""}
        spec = next(s for s, f in zip(tool_specs(case), case.functions, strict=True) if f["name"] == name)
        replies.append(Reply(calls=[(spec["name"], args)]))
    return replies


def _eval(tmp_path: Path, url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "VOICEGRAPH_DATA_DIR": str(tmp_path / "data"),
        "VOICEGRAPH_VOICES": "false",
        "VOICEGRAPH_PLANNER": "openai",
        "VOICEGRAPH_PLANNER_URL": f"{url}/v1",
        "VOICEGRAPH_PLANNER_MODEL": "scripted",
    }
    command = [sys.executable, "-m", "api.cli", "eval", *args]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)


def test_the_command_runs_spoken_cases_and_bfcl_and_reports_them(tmp_path: Path) -> None:
    pytest.importorskip("bfcl_eval")
    cases = tmp_path / "cases.jsonl"
    cases.write_text("".join(json.dumps(c) + "\n" for c in CASES))
    with serving() as (fake, url):
        fake.replies += [
            Reply(calls=[("get_date_time", {"timezone": "Asia/Tokyo"})]),
            Reply(text="It is nine in the evening in Tokyo."),
            Reply(calls=[("get_date_time", {"timezone": "Europe/Rome"})]),
            Reply(text="It is two in the afternoon in Rome."),
            Reply(text="Why did the computer sneeze? It had a virus."),
            *_bfcl_replies(),
        ]
        done = _eval(tmp_path, url, "--cases", str(cases), "--limit", "1", "--json", str(tmp_path / "eval.json"))
        asked = [body["messages"][-1] for body in fake.requests]
    assert done.returncode == 0, done.stderr
    assert "get_date_time" in done.stdout and "BFCL" in done.stdout and "no-tool accuracy" in done.stdout
    assert "eval" in done.stderr  # the progress bar
    report: dict[str, Any] = json.loads((tmp_path / "eval.json").read_text())
    clock = report["tool_calls"]["tools"]["get_date_time"]
    assert clock["precision"]["value"] == clock["recall"]["value"] == clock["parameter_accuracy"]["value"] == 1.0
    assert report["tool_calls"]["no_tool_accuracy"]["value"] == 1.0
    assert report["tool_calls"]["wer"] < 0.2  # Piper's voices, heard by tiny.en
    assert {k: v["value"] for k, v in report["bfcl"]["accuracy"].items()} == {
        "simple": 1.0,
        "multiple": 1.0,
        "irrelevance": 1.0,
    }
    assert "rome" in json.dumps(asked[2]).lower()  # the follow-up, as heard
    assert not (tmp_path / "data" / "memory.sqlite").exists()  # sessions were kept in memory


def test_a_cases_file_that_is_wrong_exits_2_before_loading_anything(tmp_path: Path) -> None:
    cases = tmp_path / "cases.jsonl"
    cases.write_text('{"say": "hi", "tool": 3}\n')
    done = _eval(tmp_path, "http://127.0.0.1:9", "--cases", str(cases), "--no-bfcl")
    assert done.returncode == 2 and "line 1: tool" in done.stderr and "Traceback" not in done.stderr
