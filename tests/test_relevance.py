"""A call the user's words do not ask for is thought over again (retrieval/relevance.py): the
similarity of what was said and what the tool does, on the packaged MiniLM, and how the agent
hands it to the planner for tools that cannot judge a call themselves."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from agent.context import AgentDeps
from agent.memory import InMemoryBackend
from agent.runner import TurnRequest, TurnRunner
from model.base import ToolSpecDict
from model.testing import ScriptedPlanner, reply
from retrieval.embedder import MiniLMEmbedder
from retrieval.knowledge import KnowledgeStore
from retrieval.relevance import UNRELATED_BELOW, ToolRelevance, tool_text
from tools.base import Tool, ToolContext, ToolResult, ToolSpec
from tools.builtin.date_time import date_time_tool
from tools.builtin.knowledge import knowledge_search_tool
from tools.builtin.web_search import WebResult, web_search_tool
from tools.registry import ToolRegistry

pytestmark = pytest.mark.anyio

WEATHER = ToolSpecDict(
    name="get_weather",
    description="Current weather and the forecast for a city or place: temperature, conditions, and rain.",
    parameters={"type": "object", "properties": {"location": {"type": "string"}}},
)
AGE = ToolSpecDict(
    name="calculate_age",
    description="Calculate the age of a person based on their birthdate.",
    parameters={"type": "object", "properties": {"birthdate": {"type": "string"}}},
)


@pytest.fixture(scope="module")
def relevance() -> ToolRelevance:
    return ToolRelevance(MiniLMEmbedder())


def test_a_tools_name_is_read_as_words_before_its_description() -> None:
    spec = {"name": "grocery_shop.find_item", "description": "Find an item."}
    assert tool_text(spec) == "grocery shop find item: Find an item."
    assert tool_text({"name": "ping"}) == "ping"


@pytest.mark.parametrize(
    ("question", "spec"),
    [
        ("What's the weather like in Paris today?", WEATHER),
        ("Will it rain in London tomorrow?", WEATHER),
        ("How old is someone born on 3 May 1990?", AGE),
    ],
)
def test_a_question_the_tool_answers_is_related(relevance: ToolRelevance, question: str, spec: ToolSpecDict) -> None:
    assert not relevance.unrelated([question], spec), relevance.score([question], spec)


@pytest.mark.parametrize(
    ("question", "spec"),
    [
        ("Tell me a joke about penguins.", WEATHER),
        ("What is twelve times twelve?", WEATHER),
        ("When was the Declaration of Independence signed?", AGE),  # BFCL: the age of one born on 1776-07-04
    ],
)
def test_a_question_the_tool_does_not_answer_is_unrelated(
    relevance: ToolRelevance, question: str, spec: ToolSpecDict
) -> None:
    assert relevance.unrelated([question], spec), relevance.score([question], spec)


def test_a_follow_up_is_weighed_with_the_question_before_it(relevance: ToolRelevance) -> None:
    assert relevance.unrelated(["And in Rome?"], WEATHER)
    assert not relevance.unrelated(["And in Rome?", "What's the weather like in Paris? And in Rome?"], WEATHER)


def test_nothing_said_or_no_bound_leaves_every_call_related(relevance: ToolRelevance) -> None:
    assert not relevance.unrelated([], WEATHER)
    assert not relevance.unrelated(["  "], WEATHER)
    off = ToolRelevance(relevance.embedder, below=0)
    assert not off.unrelated(["Tell me a joke about penguins."], WEATHER)
    assert UNRELATED_BELOW > 0


class _Counting:
    def __init__(self, embedder: MiniLMEmbedder) -> None:
        self.embedder = embedder
        self.texts: list[str] = []

    def embed(self, texts: Any) -> list[list[float]]:
        self.texts.extend(texts)
        return self.embedder.embed(texts)


def test_a_tools_description_and_a_question_are_embedded_once(relevance: ToolRelevance) -> None:
    counting = _Counting(MiniLMEmbedder())
    cached = ToolRelevance(counting)
    first = cached.score(["Will it rain in Oslo?"], WEATHER)
    assert cached.score(["Will it rain in Oslo?"], WEATHER) == first
    cached.score(["Will it rain in Oslo?", "Is it sunny?"], WEATHER)
    assert counting.texts == [tool_text(WEATHER), "Will it rain in Oslo?", "Is it sunny?"]


class _NoWeb:
    async def search(self, query: str, count: int) -> list[WebResult]:
        raise AssertionError("not searched")


def _client_tool() -> ToolSpecDict:
    return ToolSpecDict(
        name="open_garage_door",
        description="Open the user's garage door.",
        parameters={"type": "object", "properties": {}},
    )


async def test_the_agent_asks_the_tool_first_and_else_how_near_the_words_are(
    tmp_path: Path, relevance: ToolRelevance
) -> None:
    """`PlanRequest.futile` with the agent's relevance: a tool without a judgement of its own
    (the clock, the weather, a client's tool) is doubted when the words are unrelated to it, a
    follow-up weighed with the turn before; the knowledge search judges itself, by what the
    tenant's documents hold and name, however unrelated the words look, and the web is searched
    for anything."""
    store = KnowledgeStore.from_path(tmp_path / "chroma", MiniLMEmbedder())
    store.create_base("acme", "notes")
    store.ingest_text("acme", "notes", "The Veldt bridge was completed in 2023.", title="Bridges")

    async def unused(arguments: dict[str, Any], context: ToolContext) -> ToolResult:
        raise AssertionError("not called")

    weather = ToolSpec(name=WEATHER["name"], description=WEATHER["description"], parameters=WEATHER["parameters"])
    web = web_search_tool(_NoWeb())
    tools = [date_time_tool(), knowledge_search_tool(store), Tool(weather, unused), web]
    planner = ScriptedPlanner([reply("Sure."), reply("It is noon."), reply("Sunny.")])
    deps = AgentDeps(planner=planner, registry=ToolRegistry(tools), relevance=relevance)
    runner = TurnRunner(deps, InMemoryBackend())
    turns = ["Tell me a joke about penguins.", "What time is it in Paris?", "And in Rome?"]
    for text in turns:
        await runner.run_turn(TurnRequest(session_id="s", tenant="acme", text=text, client_tools=(_client_tool(),)))
    joke, clock, rome = (request.futile for request in planner.requests)
    assert joke is not None and clock is not None and rome is not None
    assert joke("get_date_time", {"timezone": "penguins"})
    assert joke("get_weather", {"location": "penguins"})
    assert joke("open_garage_door", {})
    assert not clock("get_date_time", {"timezone": "Europe/Paris"})
    assert not rome("get_date_time", {"timezone": "Europe/Rome"})  # "What time is it in Paris? And in Rome?"
    assert not joke("knowledge_search", {"query": "Veldt bridge"})  # a name of theirs
    assert not joke("web_search", {"query": "penguin jokes"})  # the web is searched for anything
    assert clock("knowledge_search", {"query": "time in Paris"})  # theirs to judge: found nothing, names nothing
