"""`voicegraph eval`: the scoring, the shipped set, cases files, BFCL's checker, and the runs
with a scripted planner (and once on the real path)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from agent.context import AgentDeps
from agent.memory import InMemoryBackend
from agent.runner import TurnRunner
from api.eval_cases import KB_DIR, parse_cases, shipped_dialogues
from api.eval_fakes import fake_web_and_weather
from api.eval_report import render_json, render_table
from api.eval_run import EvalRun, run_dialogues, run_eval
from api.eval_score import Dialogue, Expected, TurnOutcome, argument_matches, score_turns
from api.settings import Settings
from model.base import PlanRequest
from model.errors import InputError
from model.testing import ScriptedPlanner, Step, call, reply
from tools.builtin.date_time import date_time_tool
from tools.builtin.weather import OpenMeteo, weather_tool
from tools.builtin.web_search import SearxngBackend, web_search_tool
from tools.registry import ToolRegistry

BUILTIN = {"get_date_time", "get_weather", "web_search", "audio_search", "knowledge_search"}


@pytest.mark.parametrize(
    ("expected", "actual", "matches"),
    [
        ("tokyo", "Asia/Tokyo", True),
        ("paris", "Paris, France", True),
        ("new york", "America/New_York", True),
        ("whisper", "a soft whispering voice", True),
        ("rome", "Jerome", False),
        ("fairphone|fair phone", "Fair Phone 5 reviews", True),
        (["electric", "bike"], "latest electric bicycle news", False),
        (["electric", "bike"], "news about electric bikes", True),
        ("five|5", "The warranty lasts 5 years.", True),
        ("1911", "It was completed in 1911.", True),
        (3, 3, True),
        (3, 3.5, False),
        (True, 1, False),
        ("berlin", None, False),
    ],
)
def test_arguments_match_on_words(expected: Any, actual: Any, matches: bool) -> None:
    assert argument_matches(expected, actual) is matches


def _turn(tool: str | None, calls: tuple[tuple[str, dict[str, Any]], ...] = (), **kw: Any) -> TurnOutcome:
    args = kw.pop("args", {})
    answer = kw.pop("answer", ())
    return TurnOutcome("d", Expected("say it", tool, args, answer), calls=calls, **kw)


def test_per_tool_precision_recall_type_and_parameters() -> None:
    outcomes = [
        _turn("get_weather", (("get_weather", {"location": "Paris"}),), args={"location": "paris"}),
        _turn("get_weather", (("get_weather", {"location": "Lyon"}),), args={"location": "paris"}),
        _turn("get_weather", (("web_search", {"query": "weather"}),), args={"location": "rome"}),
        _turn("get_weather", (), args={"location": "oslo"}),
        _turn(None, (("get_weather", {"location": "x"}),)),
        _turn(None, ()),
        _turn("knowledge_search", (("knowledge_search", {"query": "q"}),), answer=("varnhagen",)),
    ]
    scores = score_turns(outcomes)
    weather = next(t for t in scores.tools if t.tool == "get_weather")
    assert (weather.precision.right, weather.precision.of) == (2, 3)
    assert (weather.recall.right, weather.recall.of) == (2, 4)
    assert (weather.type_accuracy.right, weather.type_accuracy.of) == (2, 3)
    assert (weather.parameters.right, weather.parameters.of) == (1, 2)
    web = next(t for t in scores.tools if t.tool == "web_search")
    assert web.turns == 0 and web.precision.value == 0.0 and web.recall.value is None
    assert (scores.no_tool.right, scores.no_tool.of) == (1, 2)
    assert (scores.knowledge_answers.right, scores.knowledge_answers.of) == (0, 1)
    assert scores.wer is None and scores.all_right.right == 2  # Paris, and the turn with no tool


def test_knowledge_answers_word_error_rate_and_failed_turns() -> None:
    right = _turn("knowledge_search", (("knowledge_search", {"query": "reactor"}),), answer=("varnhagen",))
    right = TurnOutcome(right.dialogue, right.expected, right.calls, "Ilse Varnhagen invented it [1].", "say it")
    failed = TurnOutcome("d", Expected("say it", None), heard="say hit", error="PlannerError: down")
    scores = score_turns([right, failed])
    assert scores.knowledge_answers.value == 1.0
    assert scores.no_tool.value == 0.0  # a failed turn is wrong everywhere
    assert scores.wer == pytest.approx(1 / 4)


# --- the cases ------------------------------------------------------------------------------


def test_the_shipped_set_covers_every_builtin_tool_follow_ups_and_no_tool() -> None:
    dialogues = shipped_dialogues()
    turns = [t for d in dialogues for t in d.turns]
    assert {t.tool for t in turns if t.tool} == BUILTIN
    assert sum(t.tool is None for t in turns) >= 10
    assert any(t.say.startswith("And in Rome") for t in turns)
    assert len({d.id for d in dialogues}) == len(dialogues)
    kb = " ".join(p.read_text().lower() for p in KB_DIR.iterdir())
    for turn in turns:
        for word in turn.answer:
            assert any(alt in kb for alt in word.split("|")), word


def test_cases_files_in_jsonl_and_yaml_with_errors_that_say_where() -> None:
    text = (
        '{"say": "Time in Tokyo?", "tool": "get_date_time", "args": {"timezone": "tokyo"}}\n'
        "# a comment\n"
        '{"id": "two", "turns": [{"say": "Hi"}, {"say": "And in Rome?", "tool": "lookup_order"}]}\n'
    )
    one, two = parse_cases(text)
    assert one.id == "case-1" and one.turns[0].args == {"timezone": "tokyo"}
    assert two.id == "two" and two.turns[0].tool is None and two.turns[1].tool == "lookup_order"
    [yaml] = parse_cases("- say: Where is my order 42?\n  tool: lookup_order\n  args: {order: 42}\n", yaml=True)
    assert yaml.turns[0].args == {"order": 42}
    with pytest.raises(InputError, match="line 2: turns"):
        parse_cases('{"say": "ok"}\n{"turns": []}\n')
    with pytest.raises(InputError, match="line 1: not JSON"):
        parse_cases("{nope")
    with pytest.raises(InputError, match="no cases"):
        parse_cases("\n")


# --- the loopback web and weather -----------------------------------------------------------


def test_the_real_web_and_weather_tools_answer_from_the_loopback_fakes() -> None:
    async def ask() -> tuple[str, str]:
        with fake_web_and_weather() as url:
            async with httpx.AsyncClient() as client:
                web = web_search_tool(SearxngBackend(url, client))
                weather = weather_tool(OpenMeteo(client, geocoding_url=url, forecast_url=url))
                found = await web.handler({"query": "electric bikes"}, _context())
                forecast = await weather.handler({"location": "Rome"}, _context())
                return found.content, forecast.content

    found, forecast = asyncio.run(ask())
    assert "electric bikes" in found and "[1]" in found
    assert forecast.startswith("Weather in Rome") and "Today:" in forecast


def _context() -> Any:
    from tools.base import ToolContext

    return ToolContext(tenant="local", session_id="s")


# --- the runs, with a scripted planner -------------------------------------------------------


def _oracle(dialogues: list[Dialogue]) -> ScriptedPlanner:
    """Calls what each turn expects, with its arguments, then answers with the expected fact."""
    turns = iter([t for d in dialogues for t in d.turns])
    current: list[Expected] = []

    def step(request: PlanRequest) -> Step:
        if request.messages[-1]["role"] == "user":
            current[:] = [next(turns)]
            expected = current[0]
            if expected.tool:
                args = {k: v if isinstance(v, str) else " ".join(v) for k, v in expected.args.items()}
                return call(expected.tool, **args)
        return reply(" ".join(w.split("|")[0] for w in current[0].answer) or "Sure.")

    return ScriptedPlanner([step] * 100)


def test_dialogues_run_in_sessions_and_score_right_with_a_planner_that_knows() -> None:
    dialogues = parse_cases(
        '{"id": "t", "turns": [{"say": "Time in Tokyo?", "tool": "get_date_time", "args": {"timezone": "Tokyo"}},'
        ' {"say": "And in Rome?", "tool": "get_date_time", "args": {"timezone": "Rome"}}]}\n'
        '{"say": "Tell me a joke."}\n'
    )
    planner = _oracle(dialogues)
    runner = TurnRunner(AgentDeps(planner=planner, registry=ToolRegistry([date_time_tool()])), InMemoryBackend())
    seen: list[str] = []
    outcomes = asyncio.run(run_dialogues(runner, dialogues, seen.append, typed=True))
    assert [o.chosen for o in outcomes] == ["get_date_time", "get_date_time", None]
    assert all(o.right and o.heard is None for o in outcomes) and len(seen) == 3
    follow_up = [r for r in planner.requests if r.messages[-1]["role"] == "user"][1]
    assert "Tokyo" in json.dumps(follow_up.messages)  # the follow-up sees the first turn
    run = EvalRun(planner="scripted", asr="none", spoken=outcomes, spoken_source="test")
    table = render_table(run)
    assert "get_date_time" in table and "1.00" in table and "no-tool accuracy" in table
    assert render_json(run)["tool_calls"]["tools"]["get_date_time"]["recall"]["value"] == 1.0


def test_a_missed_goal_says_by_how_much() -> None:
    outcomes = [_turn(None, ()), _turn(None, (("web_search", {"query": "x"}),))]
    table = render_table(EvalRun(planner="p", asr="a", spoken=outcomes, spoken_source="test"))
    assert "0.50 (short 0.45)" in table and "turns not right (1)" in table


def test_the_shipped_set_runs_offline_with_its_knowledge_base(tmp_path: Path) -> None:
    only = ["weather-paris", "kb-zorblat", "chat-joke"]
    dialogues = [d for d in shipped_dialogues() if d.id in only]
    settings = Settings(data_dir=tmp_path, voices=False, web_search="ddgs")
    run = asyncio.run(
        run_eval(settings, only=only, bfcl=False, typed=True, planner=_knowing_planner(dialogues), asr=_NoAsr())
    )
    scores = score_turns(run.spoken)
    assert scores.all_right.value == 1.0, render_table(run)
    [kb] = [o for o in run.spoken if o.dialogue == "kb-zorblat"]
    assert "Varnhagen" in kb.answer
    assert not (tmp_path / "chroma").exists()  # a scratch data dir, not the user's


def _knowing_planner(dialogues: list[Dialogue]) -> ScriptedPlanner:
    """Like the oracle, but the answer after a tool result repeats the result's first passage."""
    oracle = _oracle(dialogues)
    ask = oracle.steps[0]
    assert callable(ask)

    def step(request: PlanRequest) -> Step:
        last = request.messages[-1]
        if last["role"] == "tool":
            return reply(str(last["content"])[:400])
        return ask(request)

    return ScriptedPlanner([step] * 100)


class _NoAsr:
    name = "none"

    def transcribe(self, audio: Any) -> str:
        raise AssertionError("typed turns are not heard")


def test_user_cases_name_tools_that_are_on_offer(tmp_path: Path) -> None:
    cases = parse_cases('{"say": "Where is order 42?", "tool": "lookup_order"}\n')
    settings = Settings(data_dir=tmp_path, voices=False, memory="memory")
    with pytest.raises(InputError, match=r"no tool 'lookup_order'.*get_date_time"):
        asyncio.run(run_eval(settings, cases=cases, bfcl=False, typed=True, planner=ScriptedPlanner(), asr=_NoAsr()))


# --- BFCL --------------------------------------------------------------------------------------


def _bfcl_oracle(case: Any) -> Step:
    from api.eval_bfcl import tool_specs

    if not case.answer:
        return reply("I cannot help with that using these functions.")
    name, params = next(iter(case.answer[0].items()))
    args = {k: v[0] for k, v in params.items() if v and v[0] != ""}
    spec = next(s for s, f in zip(tool_specs(case), case.functions, strict=True) if f["name"] == name)
    return call(spec["name"], **args)


def test_bfcl_cases_are_checked_by_its_ast_checker() -> None:
    pytest.importorskip("bfcl_eval")
    from api.eval_bfcl import load_bfcl, run_bfcl

    cases = load_bfcl(limit=2)
    assert [c.category for c in cases] == ["simple"] * 2 + ["multiple"] * 2 + ["irrelevance"] * 2
    assert load_bfcl(limit=2) == cases  # the same sample each run
    assert all(s["parameters"]["type"] == "object" for c in cases for s in _specs(c))
    right = asyncio.run(run_bfcl(ScriptedPlanner([_bfcl_oracle(c) for c in cases]), cases, lambda _: None))
    assert all(r.valid for r in right), [(r.case.id, r.error) for r in right]
    wrong = [call("nothing_here") if c.answer else _bfcl_oracle(cases[0]) for c in cases]
    checked = asyncio.run(run_bfcl(ScriptedPlanner(wrong), cases, lambda _: None))
    assert not any(r.valid for r in checked)


def _specs(case: Any) -> list[Any]:
    from api.eval_bfcl import tool_specs

    return tool_specs(case)


# --- the real path ----------------------------------------------------------------------------


@pytest.mark.real
def test_the_real_planner_on_a_spoken_follow_up_a_knowledge_name_and_chit_chat(data_dir: Path) -> None:
    only = ["follow-weather-rome", "kb-zorblat", "chat-thanks"]
    run = asyncio.run(run_eval(Settings(data_dir=data_dir), only=only, bfcl=False))
    table = render_table(run)
    assert len(run.spoken) == 4 and not any(o.error for o in run.spoken), table
    by_dialogue = {d: [o for o in run.spoken if o.dialogue == d] for d in only}
    paris, rome = by_dialogue["follow-weather-rome"]  # the weather, served on loopback
    assert paris.chosen == rome.chosen == "get_weather", table
    assert "rome" in str(rome.arguments_of("get_weather")).lower(), table  # "And in Rome?" has its context
    [zorblat] = by_dialogue["kb-zorblat"]
    assert zorblat.chosen == "knowledge_search" and "varnhagen" in zorblat.answer.lower(), table
    assert [o.chosen for o in by_dialogue["chat-thanks"]] == [None], table
    assert score_turns(run.spoken).wer is not None


@pytest.mark.real
def test_the_real_planner_answers_a_change_of_voice_without_reading_out_its_notes(data_dir: Path) -> None:
    """Beside the evaluation's documents, "Please speak in a high, fast voice." was answered
    with the knowledge tool's note to the planner, names and all: the answer says the voice."""
    run = asyncio.run(run_eval(Settings(data_dir=data_dir), only=["voice-high-fast"], bfcl=False, typed=True))
    [turn] = run.spoken
    assert turn.chosen == "audio_search", render_table(run)
    said = turn.answer.lower()
    assert "voice" in said and not {"documents", "knowledge_search", "kestrel", "hexlow"} & set(said.split()), said


_VOICE_ASKS = [
    {"say": "I want a cheerful voice.", "tool": "audio_search", "args": {"description": ["cheerful"]}},
    {"say": "Switch to a man's voice.", "tool": "audio_search", "args": {"description": ["male|man"]}},
    {"say": "What voice are you using right now?", "tool": None},
]


@pytest.mark.real
def test_the_real_planner_asks_for_a_voice_in_the_users_words(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Beside the evaluation's documents, with an example in the tool's description ('deep
    slow Scottish accent'), the model searched for the tool's own description ("I want a
    cheerful voice."), answered "I'm now speaking in a man's voice." without a call, and took a
    question about its voice for a request."""
    cases = parse_cases("\n".join(json.dumps({"turns": [turn]}) for turn in _VOICE_ASKS))
    monkeypatch.setattr("api.eval_run.shipped_dialogues", lambda: cases)
    run = asyncio.run(run_eval(Settings(data_dir=data_dir), bfcl=False, typed=True))
    assert [o.right for o in run.spoken] == [True, True, True], render_table(run)
