"""A user's own tools on the real planner: a call with an argument nobody said is thought
over (model/grounding.py), and so is one the question does not ask for (retrieval/relevance.py);
a call whose every argument was said, of a tool the question asks for, is made.

With only the tool on offer, the 1.5B model fills it in whatever is asked, taking what words
it can from the question and making up the rest (BFCL's irrelevance cases).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from model.base import Futile, Message, PlanRequest, TextDelta, ToolCallEvent, ToolSpecDict, Usage
from model.cascade import CascadePlanner
from retrieval.embedder import MiniLMEmbedder
from retrieval.relevance import ToolRelevance

pytestmark = pytest.mark.real

BMI = ToolSpecDict(
    name="calculate_bmi",
    description="Calculates the Body Mass Index given a person's weight and height.",
    parameters={
        "type": "object",
        "properties": {
            "weight": {"type": "number", "description": "Weight of the person in kilograms."},
            "height": {"type": "number", "description": "Height of the person in metres."},
        },
        "required": ["weight", "height"],
    },
)
GROCERY = ToolSpecDict(
    name="grocery_item_details",
    description="Retrieve detailed information about a specific grocery item.",
    parameters={
        "type": "object",
        "properties": {
            "item_name": {"type": "string", "description": "The name of the grocery item."},
            "store_location": {"type": "string", "description": "The city or area where the grocery store is located."},
            "details_level": {"type": "string", "enum": ["simple", "detailed"], "default": "simple"},
        },
        "required": ["item_name", "store_location"],
    },
)
AGE = ToolSpecDict(  # BFCL's irrelevance_138, its descriptions shortened
    name="calculate_age",
    description="Calculate the age of a person based on their birthdate.",
    parameters={
        "type": "object",
        "properties": {
            "birthdate": {"type": "string", "description": "The person's date of birth, as YYYY-MM-DD."},
            "current_date": {"type": "string", "description": "The current date, as YYYY-MM-DD."},
        },
        "required": ["birthdate", "current_date"],
    },
)


@pytest.fixture(scope="module")
def planner(data_dir: Path) -> CascadePlanner:
    from api.compose import build_engine
    from api.settings import Settings

    return CascadePlanner(build_engine(Settings(data_dir=data_dir, engine="llama")))


def _plan(
    planner: CascadePlanner, question: str, tool: ToolSpecDict, futile: Futile | None = None
) -> tuple[list[ToolCallEvent], str]:
    async def collect() -> list:
        request = PlanRequest(messages=[Message(role="user", content=question)], tools=[tool], futile=futile)
        return [event async for event in planner.plan(request)]

    events = asyncio.run(collect())
    assert isinstance(events[-1], Usage)
    calls = [e for e in events if isinstance(e, ToolCallEvent)]
    return calls, "".join(e.text for e in events if isinstance(e, TextDelta))


@pytest.mark.parametrize(
    ("question", "tool"),
    [
        ("What's the average temperature for Los Angeles in December?", BMI),  # had been 70 kg at 1.75 m
        ("How many calories are in a tomato?", GROCERY),  # had been a tomato at a store "anywhere"
    ],
    ids=["numbers", "a-name"],
)
def test_a_call_with_made_up_arguments_is_answered_instead(
    planner: CascadePlanner, question: str, tool: ToolSpecDict
) -> None:
    calls, text = _plan(planner, question, tool)
    assert not calls, [c.call for c in calls]
    assert text.strip()


def test_a_call_whose_every_argument_was_said_is_made(planner: CascadePlanner) -> None:
    [bmi], _ = _plan(planner, "I weigh seventy two kilos and I am 1.8 metres tall. What is my BMI?", BMI)
    assert bmi.call["name"] == "calculate_bmi"
    assert bmi.call["arguments"] == {"weight": 72, "height": 1.8}
    [item], _ = _plan(planner, "Tell me about the tomatoes at the grocery store in Boston.", GROCERY)
    assert item.call["name"] == "grocery_item_details"
    assert "tomato" in item.call["arguments"]["item_name"].lower()
    assert "boston" in item.call["arguments"]["store_location"].lower()


def test_a_call_the_question_does_not_ask_for_is_answered_instead(planner: CascadePlanner) -> None:
    """Every argument said (the date the question means), but a question the tool does not
    answer: without the relevance the model computed the age of one born on 1776-07-04."""
    relevance = ToolRelevance(MiniLMEmbedder())

    def unasked(question: str) -> Futile:
        return lambda name, arguments: relevance.unrelated([question], AGE)

    question = "When was the Declaration of Independence signed?"
    [alone], _ = _plan(planner, question, AGE)  # the model alone, every argument grounded
    assert alone.call["arguments"]["birthdate"] == "1776-07-04"
    calls, text = _plan(planner, question, AGE, unasked(question))
    assert not calls, [c.call for c in calls]
    assert "1776" in text
    question = "How old is someone born on 3 May 1990?"
    [age], _ = _plan(planner, question, AGE, unasked(question))
    assert age.call["name"] == "calculate_age"
    assert "1990" in age.call["arguments"]["birthdate"]
