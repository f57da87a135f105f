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
COMPOSER = ToolSpecDict(  # BFCL's irrelevance_176
    name="find_composer",
    description="Find the composer of a piece of music based on the name of the piece.",
    parameters={
        "type": "object",
        "properties": {
            "piece_name": {"type": "string", "description": "The name of the music piece."},
            "year_composed": {"type": "integer", "description": "The year the music piece was composed."},
        },
        "required": ["piece_name"],
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
    """Its argument said, but a question the tool does not answer (relevance 0.11): the model
    alone looks up the composer of "Blues Scale in Key of A", leading `reply` by 1-1.5 logits,
    less than the second thought's lean."""
    relevance = ToolRelevance(MiniLMEmbedder())

    def unasked(question: str) -> Futile:
        return lambda name, arguments: relevance.unrelated([question], COMPOSER)

    question = "What is the pattern of the blues scale in the key of A?"
    [alone], _ = _plan(planner, question, COMPOSER)
    assert "blues" in alone.call["arguments"]["piece_name"].lower()
    calls, text = _plan(planner, question, COMPOSER, unasked(question))
    assert not calls, [c.call for c in calls]
    assert "A" in text and "blues" in text.lower()
    question = "Who composed the Moonlight Sonata?"  # relevance 0.40
    [composer], _ = _plan(planner, question, COMPOSER, unasked(question))
    assert composer.call["arguments"]["piece_name"] == "Moonlight Sonata"
