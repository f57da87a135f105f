"""A question that says a word only the tenant's documents know goes to them, on the real
planner and a real knowledge store: among the evaluation's tools and documents, "When was the
Veldt bridge completed?" was a call of the weather for "The Veldt bridge" (the model's own
choice, the documents' names in its note); the word "Veldt" claims the question for the
knowledge search, and the planner chooses again leaning toward it. A word the documents share
with everyone ("Berlin" in a travel policy) claims nothing: the time in Berlin is still the
clock's.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from agent.context import AgentDeps
from agent.memory import InMemoryBackend
from agent.runner import TurnRequest, TurnRunner
from api.eval_report import render_table
from api.eval_run import run_eval
from api.settings import Settings
from model.cascade import CascadePlanner
from retrieval.embedder import MiniLMEmbedder
from retrieval.knowledge import KnowledgeStore
from tools.builtin.date_time import date_time_tool
from tools.builtin.knowledge import knowledge_search_tool
from tools.builtin.weather import OpenMeteo, weather_tool
from tools.registry import ToolRegistry

pytestmark = [pytest.mark.real, pytest.mark.anyio]

TRAVEL = (
    "# Travel\n\nTrain is preferred over flying for trips under 600 km. Book hotels through the portal; the nightly "
    "limit in Berlin is 140 euros."
)


@pytest.fixture(scope="module")
def planner(data_dir: Path) -> CascadePlanner:
    from api.compose import build_engine

    return CascadePlanner(build_engine(Settings(data_dir=data_dir, engine="llama")))


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> ToolRegistry:
    store = KnowledgeStore.from_path(tmp_path_factory.mktemp("chroma"), MiniLMEmbedder())
    store.create_base("local", "notes")
    store.ingest_text("local", "notes", TRAVEL, title="Travel")
    # the weather is offered, never reached: a call of it would fail offline, the choice is what counts
    weather = weather_tool(OpenMeteo(httpx.AsyncClient(), geocoding_url="http://127.0.0.1:9/g", forecast_url="x"))
    return ToolRegistry([date_time_tool(), weather, knowledge_search_tool(store)])


async def test_a_word_only_the_documents_know_sends_the_question_to_them(data_dir: Path) -> None:
    run = await run_eval(Settings(data_dir=data_dir), only=["kb-veldt-bridge"], bfcl=False, typed=True)
    [veldt] = run.spoken
    assert veldt.chosen == "knowledge_search" and "1911" in veldt.answer, render_table(run)


async def test_a_word_everyone_knows_claims_nothing(planner: CascadePlanner, registry: ToolRegistry) -> None:
    runner = TurnRunner(AgentDeps(planner=planner, registry=registry), InMemoryBackend())
    output = await runner.run_turn(TurnRequest(session_id="berlin", text="What time is it in Berlin?"))
    assert [call["name"] for call in output.result["tool_calls"]][:1] == ["get_date_time"], output.result
