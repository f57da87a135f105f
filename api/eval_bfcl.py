"""BFCL non-live simple, multiple and irrelevance, run through the planner's tool-choice step.

The Berkeley Function Calling Leaderboard's data and its AST checker come from the
`bfcl-eval` package. Each case's function docs become tool specs (BFCL's own type names
mapped to JSON Schema by its own table, dots in names made underscores as BFCL does for
OpenAI's API, and mapped back before checking), its question the conversation, and one
planning step is taken: the calls it makes are checked by BFCL's `ast_checker`; an
irrelevance case is right when no function is called.

Only the package's data and checker are used, so it is installed without its dependencies
(`pip install --no-deps bfcl-eval`: they pin numpy 1.26 and bring every vendor's SDK).
The checker's module imports BFCL's table of model handlers, which needs those SDKs, only
to ask whether a model's names had their dots replaced; a stand-in for that one table
answers no, since the names are mapped back here.
"""

from __future__ import annotations

import json
import random
import re
import sys
import types
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

from model.base import Futile, Message, Planner, PlanRequest, ToolCallEvent, ToolSpecDict, message_text
from model.errors import InputError
from retrieval.relevance import ToolRelevance

__all__ = ["CATEGORIES", "BfclCase", "BfclResult", "check", "load_bfcl", "run_bfcl", "tool_specs"]

CATEGORIES = {"simple": "simple_python", "multiple": "multiple", "irrelevance": "irrelevance"}
"""Our name -> BFCL v4's category (its file `BFCL_v4_<category>.json`)."""
_MISSING = "BFCL needs the bfcl-eval package: pip install --no-deps 'bfcl-eval==2026.3.23' (or run with --no-bfcl)"
_MODEL_NAME = "voicegraph"
_MAX_NEW_TOKENS = 192


@dataclass(frozen=True)
class BfclCase:
    id: str
    category: str
    """Our name: simple, multiple or irrelevance."""
    messages: tuple[Message, ...]
    functions: tuple[dict[str, Any], ...]
    """BFCL's function docs, as the checker wants them."""
    answer: tuple[dict[str, Any], ...]
    """BFCL's possible answers; empty for irrelevance."""


@dataclass(frozen=True)
class BfclResult:
    case: BfclCase
    calls: tuple[tuple[str, dict[str, Any]], ...]
    """What the planner called, under BFCL's names."""
    valid: bool
    error: str = ""


class _NoRenaming(dict[str, Any]):
    def __missing__(self, key: str) -> Any:
        return types.SimpleNamespace(underscore_to_dot=False)


def _checker() -> Callable[..., dict[str, Any]]:
    try:
        import bfcl_eval  # noqa: F401
    except ImportError as error:
        raise InputError(_MISSING) from error
    name = "bfcl_eval.constants.model_config"
    if name not in sys.modules:
        stand_in = types.ModuleType(name)
        stand_in.MODEL_CONFIG_MAPPING = _NoRenaming()  # type: ignore[attr-defined]
        sys.modules[name] = stand_in
    from bfcl_eval.eval_checker.ast_eval.ast_checker import ast_checker

    checker: Callable[..., dict[str, Any]] = ast_checker
    return checker


def _rows(path: str) -> list[dict[str, Any]]:
    text = (resources.files("bfcl_eval") / "data" / path).read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def load_bfcl(
    categories: Sequence[str] = tuple(CATEGORIES), *, limit: int | None = None, seed: int = 0
) -> list[BfclCase]:
    """The cases of each category; `limit` samples that many of each (the same ones for a seed)."""
    _checker()
    cases: list[BfclCase] = []
    for ours in categories:
        category = CATEGORIES[ours]
        rows = _rows(f"BFCL_v4_{category}.json")
        answers = (
            {}
            if ours == "irrelevance"
            else {r["id"]: r["ground_truth"] for r in _rows(f"possible_answer/BFCL_v4_{category}.json")}
        )
        if limit is not None and limit < len(rows):
            picked = sorted(random.Random(f"{seed}:{ours}").sample(range(len(rows)), limit))
            rows = [rows[i] for i in picked]
        for row in rows:
            messages = tuple(Message(role=m["role"], content=m["content"]) for m in row["question"][0])
            cases.append(BfclCase(row["id"], ours, messages, tuple(row["function"]), tuple(answers.get(row["id"], ()))))
    return cases


def _tool_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "_", name)[:64]


def _schema(node: Any) -> Any:
    """BFCL's parameter doc as JSON Schema: its type names ("dict", "float", "tuple", "any") mapped."""
    from bfcl_eval.constants.type_mappings import GORILLA_TO_OPENAPI

    if not isinstance(node, dict):
        return node
    out = {key: value for key, value in node.items() if key not in ("optional",)}
    if isinstance(node.get("type"), str):
        out["type"] = GORILLA_TO_OPENAPI.get(node["type"], "string")
    if isinstance(node.get("properties"), dict):
        out["properties"] = {key: _schema(value) for key, value in node["properties"].items()}
    if "items" in node:
        out["items"] = _schema(node["items"])
    return out


def tool_specs(case: BfclCase) -> list[ToolSpecDict]:
    return [
        ToolSpecDict(
            name=_tool_name(f["name"]), description=f.get("description", ""), parameters=_schema(f["parameters"])
        )
        for f in case.functions
    ]


def check(case: BfclCase, calls: Sequence[tuple[str, dict[str, Any]]]) -> tuple[bool, str]:
    """BFCL's verdict on the calls (under BFCL's names), and its error when it is wrong."""
    if case.category == "irrelevance":
        return (not calls, "" if not calls else "a function was called")
    if not calls:
        return False, "no function was called"
    verdict = _checker()(
        list(case.functions),
        [{name: args} for name, args in calls],
        list(case.answer),
        _language(),
        CATEGORIES[case.category],
        _MODEL_NAME,
    )
    return bool(verdict["valid"]), "; ".join(str(e) for e in verdict.get("error", []))[:300]


def _language() -> Any:
    from bfcl_eval.constants.enums import Language

    return Language.PYTHON


async def run_bfcl(
    planner: Planner,
    cases: Sequence[BfclCase],
    progress: Callable[[str], None],
    *,
    relevance: ToolRelevance | None = None,
) -> list[BfclResult]:
    """One tool-choice step of `planner` per case, checked. With `relevance`, a call the
    question does not ask for is thought over again, as the agent has it thought over in
    service (`TurnContext.futile`)."""
    results = []
    for case in cases:
        specs = tool_specs(case)
        names = {spec["name"]: f["name"] for spec, f in zip(specs, case.functions, strict=True)}
        request = PlanRequest(
            messages=case.messages,
            tools=specs,
            max_new_tokens=_MAX_NEW_TOKENS,
            futile=_unasked(relevance, case, specs) if relevance is not None else None,
        )
        calls = [
            (names.get(event.call["name"], event.call["name"]), dict(event.call["arguments"]))
            async for event in planner.plan(request)
            if isinstance(event, ToolCallEvent)
        ]
        valid, error = check(case, calls)
        results.append(BfclResult(case, tuple(calls), valid, error))
        progress(case.id)
    return results


def _unasked(relevance: ToolRelevance, case: BfclCase, specs: Sequence[ToolSpecDict]) -> Futile:
    """Whether a call is unrelated to the case's last question."""
    said = [message_text(m) for m in case.messages if m["role"] == "user"][-1:]
    by_name = {spec["name"]: spec for spec in specs}

    def futile(name: str, arguments: Mapping[str, Any]) -> bool:
        spec = by_name.get(name)
        return spec is not None and relevance.unrelated(said, spec)

    return futile
