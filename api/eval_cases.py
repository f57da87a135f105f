"""The cases `voicegraph eval` runs: the spoken tool-call set shipped with the package, or a user's own.

Both are dialogues in one shape, a JSON object per line (JSONL) or a YAML list of them:

    {"id": "weather-rome", "turns": [
        {"say": "What's the weather like in Paris today?", "tool": "get_weather", "args": {"location": "Paris"}},
        {"say": "And in Rome?", "tool": "get_weather", "args": {"location": "Rome"}}]}
    {"say": "Who invented the Zorblat reactor?", "tool": "knowledge_search", "answer": ["Varnhagen"]}
    {"say": "Tell me a joke.", "tool": null}

A line with `say` instead of `turns` is a dialogue of one turn. `tool` null (or absent)
expects no tool; `args` are matched as api/eval_score.py says; `answer` lists words the
answer must state. The shipped set's knowledge questions are about the invented names of
the documents in api/eval_data/kb/, which only that knowledge base knows.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from api.eval_score import Dialogue, Expected
from model.errors import InputError

__all__ = ["DATA_DIR", "KB_DIR", "load_cases", "parse_cases", "shipped_dialogues"]

DATA_DIR = Path(__file__).parent / "eval_data"
KB_DIR = DATA_DIR / "kb"
"""The shipped knowledge base: a few documents about names nobody else knows."""
_SHIPPED = DATA_DIR / "toolcalls.jsonl"


class _Turn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    say: str = Field(min_length=1)
    tool: str | None = None
    args: dict[str, Any] = Field(default_factory=dict)
    answer: list[str] = Field(default_factory=list)


class _Dialogue(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str | None = None
    turns: list[_Turn] = Field(min_length=1)


def _dialogue(raw: Any, index: int) -> Dialogue:
    if isinstance(raw, dict) and "say" in raw:
        raw = {"id": raw.get("id"), "turns": [{k: v for k, v in raw.items() if k != "id"}]}
    parsed = _Dialogue.model_validate(raw)
    turns = tuple(Expected(t.say, t.tool, dict(t.args), tuple(t.answer)) for t in parsed.turns)
    return Dialogue(parsed.id or f"case-{index + 1}", turns)


def parse_cases(text: str, *, yaml: bool = False, source: str = "cases") -> list[Dialogue]:
    """Dialogues from JSONL (or YAML) text; InputError names the line or item that is wrong."""
    items: list[tuple[str, Any]] = []
    if yaml:
        import yaml as pyyaml

        try:
            loaded = pyyaml.safe_load(text)
        except pyyaml.YAMLError as error:
            raise InputError(f"{source}: not valid YAML: {error}") from error
        if not isinstance(loaded, list):
            raise InputError(f"{source}: expected a YAML list of cases")
        items = [(f"item {i + 1}", item) for i, item in enumerate(loaded)]
    else:
        for number, line in enumerate(text.splitlines(), 1):
            if line.strip() and not line.lstrip().startswith("#"):
                try:
                    items.append((f"line {number}", json.loads(line)))
                except json.JSONDecodeError as error:
                    raise InputError(f"{source}, line {number}: not JSON: {error.msg}") from error
    dialogues = []
    for index, (where, raw) in enumerate(items):
        try:
            dialogues.append(_dialogue(raw, index))
        except ValidationError as error:
            first = error.errors()[0]
            place = ".".join(str(part) for part in first["loc"])
            if isinstance(raw, dict) and "say" in raw:  # a one-turn case: name its field alone
                place = place.removeprefix("turns.0.")
            raise InputError(f"{source}, {where}: {place}: {first['msg']}") from error
    if not dialogues:
        raise InputError(f"{source}: no cases")
    return dialogues


def load_cases(path: Path) -> list[Dialogue]:
    """A user's cases file: `.yaml`/`.yml` is YAML, anything else JSONL."""
    if not path.is_file():
        raise InputError(f"no such cases file: {path}")
    return parse_cases(
        path.read_text(encoding="utf-8"), yaml=path.suffix.lower() in (".yaml", ".yml"), source=str(path)
    )


def shipped_dialogues() -> list[Dialogue]:
    return parse_cases(_SHIPPED.read_text(encoding="utf-8"), source=_SHIPPED.name)
