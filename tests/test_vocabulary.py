"""The names a tenant's documents use, through a turn: picked out when a document is written,
told to the recognizer (with the user's last words) and to the planner; a tool whose store
fails costs the hint, never the turn. A realtime session's recognizer gets the same hint
between turns (`TurnRunner.hint_for`), read from a real knowledge store."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from agent.context import AgentDeps
from agent.cues import without_cue
from agent.memory import InMemoryBackend
from agent.memory.in_memory import InMemoryRegistrations
from agent.runner import TurnRequest, TurnRunner
from agent.session_service import SessionService
from agent.tracing import ASR_HINT, Tracing, iter_spans
from agent.vocabulary import VocabularyCache, hearing_hint
from model.base import SpeechRecognizer
from model.testing import ScriptedPlanner, call, reply
from retrieval.embedder import MiniLMEmbedder
from retrieval.knowledge import KnowledgeStore
from retrieval.vocabulary import join_terms, salient_terms, split_terms, uncommon_words
from tools.base import Tool, ToolContext, ToolResult, ToolSpec, Vocabulary
from tools.builtin.knowledge import knowledge_search_tool
from tools.registry import ToolRegistry

pytestmark = pytest.mark.anyio


class Recording(SpeechRecognizer):
    """Says what it was told to say, and keeps the hints it was given."""

    name = "recording"

    def __init__(self, heard: list[str]) -> None:
        self.heard = heard
        self.hints: list[str] = []

    def transcribe(self, audio: np.ndarray, hint: str = "") -> str:
        self.hints.append(hint)
        return self.heard[len(self.hints) - 1]


def _tool(name: str, vocabulary: Any) -> Tool:
    async def handler(arguments: dict[str, Any], context: ToolContext) -> ToolResult:
        return ToolResult(content="")

    spec = ToolSpec(name=name, description="d", parameters={"type": "object", "properties": {}})
    return Tool(spec=spec, handler=handler, vocabulary=vocabulary)


def test_names_and_codes_are_picked_out_of_a_document() -> None:
    text = (
        "# Reactor notes\n\nThe Zorblat reactor was designed by Mira Quell. When it runs, valve ZX-4471 opens.\n"
        "Submit faults to the Kestrel lab. The Quintrex 9 blender is unrelated. Zorblat units ship in May."
    )
    terms = salient_terms(text)
    assert terms[0] == "Zorblat"  # the most used first
    assert {"Mira Quell", "ZX-4471", "Kestrel", "Quintrex 9"} <= set(terms)
    assert not {"When", "Submit", "The", "May", "Reactor"} & set(terms)  # sentence openers, common words
    assert split_terms(join_terms(terms)) == terms
    assert salient_terms("nothing capitalised here at all.") == []


def test_the_hint_is_the_last_words_then_the_names() -> None:
    vocabulary = Vocabulary(note="n", words=("Zorblat", "Kestrel lab"))
    assert hearing_hint(vocabulary, "What time is it in Paris?") == (
        "What time is it in Paris? Names: Zorblat, Kestrel lab."
    )
    assert hearing_hint(Vocabulary(), None) == ""
    assert without_cue("Tell me a joke.\n[spoken faster than before]") == "Tell me a joke."
    assert without_cue("A list:\n[1] first") == "A list:\n[1] first"


async def test_the_recognizer_and_the_planner_are_told_what_the_tools_know() -> None:
    def failing(context: ToolContext) -> Vocabulary:
        raise RuntimeError("the store is down")

    def knows(context: ToolContext) -> Vocabulary:
        assert context.tenant == "acme"
        return Vocabulary(note="The user's documents mention: Zorblat.", words=("Zorblat",))

    asr = Recording(["Who invented the Zorblat reactor?", "And who built it?"])
    planner = ScriptedPlanner([reply("Mira Quell."), reply("The Kestrel lab.")])
    registry = ToolRegistry([_tool("broken", failing), _tool("docs", knows)])
    runner = TurnRunner(AgentDeps(planner=planner, registry=registry, asr=asr), InMemoryBackend(), tracing=Tracing())
    audio = np.zeros(16000, dtype=np.float32)
    for _ in range(2):
        output = await runner.run_turn(TurnRequest(session_id="s", tenant="acme", audio=audio))
        assert output.result["answer"]

    assert asr.hints == ["Names: Zorblat.", "Who invented the Zorblat reactor? Names: Zorblat."]
    assert [r.notes for r in planner.requests] == ["The user's documents mention: Zorblat."] * 2
    traces = await SessionService(runner.memory).traces("acme", "s")
    assert traces is not None
    asr_span = next(s for s in iter_spans(traces[-1]["root"]) if s["name"] == "asr")
    assert asr_span["attributes"][ASR_HINT] == asr.hints[-1]


async def test_a_typed_turn_gets_the_note_alongside_the_clients_instructions() -> None:
    planner = ScriptedPlanner([reply("Hi.")])
    registry = ToolRegistry([_tool("docs", lambda context: Vocabulary(note="Note.", words=("X",)))])
    runner = TurnRunner(AgentDeps(planner=planner, registry=registry), InMemoryBackend())
    await runner.run_turn(TurnRequest(session_id="s", text="hello", instructions="Be brief."))
    [request] = planner.requests
    assert (request.instructions, request.notes, request.preamble) == ("Be brief.", "Note.", "Be brief.\n\nNote.")


async def test_a_tool_with_nothing_for_this_tenant_is_declared_but_not_offered(tmp_path: Path) -> None:
    """Without a document the knowledge search could only say it found nothing ("I couldn't find
    a fun fact about octopuses in your documents."); its declaration stays in the prompt."""
    store = KnowledgeStore.from_path(tmp_path / "chroma", MiniLMEmbedder())
    store.create_base("acme", "empty")
    store.create_base("globex", "notes")
    store.ingest_text("globex", "notes", "The Zorblat reactor was invented by Mira Quell.", title="Zorblat notes")
    planner = ScriptedPlanner([reply("Octopuses have three hearts."), reply("Mira Quell.")])
    registry = ToolRegistry([knowledge_search_tool(store), _tool("clock", None)])
    runner = TurnRunner(AgentDeps(planner=planner, registry=registry), InMemoryBackend())
    for tenant in ("acme", "globex"):
        await runner.run_turn(TurnRequest(session_id="s", tenant=tenant, text="Tell me something."))
    offered = [[tool["name"] for tool in request.callable_tools] for request in planner.requests]
    declared = [[tool["name"] for tool in request.tools] for request in planner.requests]
    assert offered == [["clock"], ["clock", "knowledge_search"]]
    assert declared == [["clock", "knowledge_search"]] * 2


async def test_the_planner_can_ask_the_turns_tools_whether_a_call_would_be_of_use(tmp_path: Path) -> None:
    """`PlanRequest.futile` asks the tool, with this turn's tenant: the knowledge search for a
    general question is of no use, one for what this tenant's documents hold is; a tool without
    the hook, an unknown name or a hook that fails leaves the call be."""
    store = KnowledgeStore.from_path(tmp_path / "chroma", MiniLMEmbedder())
    store.create_base("globex", "notes")
    store.ingest_text("globex", "notes", "The Zorblat reactor was invented by Mira Quell.", title="Zorblat notes")

    def broken(arguments: dict[str, Any], context: ToolContext) -> bool:
        raise RuntimeError("the store is down")

    failing = _tool("failing", None)
    planner = ScriptedPlanner([reply("Shakespeare.")])
    tools = [knowledge_search_tool(store), _tool("clock", None), Tool(failing.spec, failing.handler, futile=broken)]
    runner = TurnRunner(AgentDeps(planner=planner, registry=ToolRegistry(tools)), InMemoryBackend())
    await runner.run_turn(TurnRequest(session_id="s", tenant="globex", text="Who wrote Romeo and Juliet?"))
    futile = planner.requests[0].futile
    assert futile is not None
    assert futile("knowledge_search", {"query": "Who wrote Romeo and Juliet?"})
    assert not futile("knowledge_search", {"query": "Who invented the Zorblat reactor?"})
    assert not futile("knowledge_search", {"query": "Where does Mira Quell live?"})  # a name of theirs
    assert not futile("clock", {}) and not futile("nothing", {}) and not futile("failing", {})


async def test_a_realtime_session_is_told_the_hint_its_next_uploaded_turn_would_get(tmp_path: Path) -> None:
    store = KnowledgeStore.from_path(tmp_path / "chroma", MiniLMEmbedder())
    store.create_base("acme", "reactor")
    text = "The Zorblat reactor was invented by Mira Quell. Every Zorblat reactor ships with the ZX-4471 valve."
    store.ingest_text("acme", "reactor", text, title="Zorblat notes")
    asr = Recording(["Who invented the Zorblat reactor?", "When was that?"])
    planner = ScriptedPlanner([reply("Mira Quell."), reply("In 2031.")])
    registry = ToolRegistry([knowledge_search_tool(store)])
    runner = TurnRunner(AgentDeps(planner=planner, registry=registry, asr=asr), InMemoryBackend())
    audio = np.zeros(16000, dtype=np.float32)

    first = await runner.hint_for("acme", "s")
    assert first.startswith("Names: Zorblat") and "Mira Quell" in first  # no earlier turn: the names alone
    await runner.run_turn(TurnRequest(session_id="s", tenant="acme", audio=audio))
    hint = await runner.hint_for("acme", "s")
    assert hint.startswith("Who invented the Zorblat reactor? Names: Zorblat") and "Mira Quell" in hint
    await runner.run_turn(TurnRequest(session_id="s", tenant="acme", audio=audio))
    assert asr.hints == [first, hint]  # what an uploaded turn was told, word for word
    assert await runner.hint_for("globex", "s") == ""  # another tenant: neither the words nor the names


def test_words_no_one_else_knows_are_told_apart_from_common_ones() -> None:
    names = ["The Veldt bridge", "Zorblat", "ZX-4471", "Berlin", "UTC", "Project Heron", "Marta Lindqvist", "B3"]
    assert uncommon_words(names) == ("veldt", "zorblat", "zx-4471", "lindqvist")


async def test_a_question_that_says_a_word_only_the_documents_know_is_claimed_for_them(tmp_path: Path) -> None:
    """`PlanRequest.claimed` names the knowledge search when the user says a word of its
    documents' names no one else knows: in the turn's first round only (not once a tool has
    answered), never for a word everyone knows (a travel policy's "Berlin"), never for a tenant
    without documents."""
    store = KnowledgeStore.from_path(tmp_path / "chroma", MiniLMEmbedder())
    store.create_base("globex", "notes")
    store.create_base("acme", "empty")
    store.ingest_text("globex", "notes", "The Zorblat reactor was invented by Mira Quell.", title="Zorblat notes")
    store.ingest_text("globex", "notes", "The nightly hotel limit in Berlin is 140 euros.", title="Travel")
    planner = ScriptedPlanner(
        [call("knowledge_search", query="Zorblat"), reply("Mira Quell."), reply("Noon."), reply("Hm.")]
    )
    registry = ToolRegistry([knowledge_search_tool(store), _tool("clock", None)])
    runner = TurnRunner(AgentDeps(planner=planner, registry=registry), InMemoryBackend())
    for tenant, text in [
        ("globex", "Who invented the zorblat reactor's core?"),
        ("globex", "What time is it in Berlin?"),
        ("acme", "Who invented the Zorblat reactor?"),
    ]:
        await runner.run_turn(TurnRequest(session_id="s", tenant=tenant, text=text))
    assert [r.claimed for r in planner.requests] == ["knowledge_search", None, None, None]


async def test_the_planner_reads_the_conversation_while_the_recognizer_hears_the_words() -> None:
    """`Planner.prepare` gets the conversation the turn's first step will show, less the words
    being heard, with the same tools and note, as the recognizer starts; a typed turn has no
    such wait."""
    asr = Recording(["Who invented the Zorblat reactor?", "And who built it?"])
    planner = ScriptedPlanner([reply("Mira Quell."), reply("The Kestrel lab."), reply("Hi.")])
    registry = ToolRegistry([_tool("docs", lambda context: Vocabulary(note="Note.", words=("Zorblat",)))])
    runner = TurnRunner(AgentDeps(planner=planner, registry=registry, asr=asr), InMemoryBackend())
    for _ in range(2):
        await runner.run_turn(TurnRequest(session_id="s", audio=np.zeros(16000, dtype=np.float32)))
    await runner.run_turn(TurnRequest(session_id="s", text="Thanks."))
    assert len(planner.prepared) == 2 and len(planner.requests) == 3
    for prepared, planned in zip(planner.prepared, planner.requests, strict=False):
        assert list(prepared.messages) == list(planned.messages)[:-1]
        assert prepared.tools == planned.tools and prepared.preamble == planned.preamble == "Note."
    assert [m["role"] for m in planner.prepared[1].messages] == ["user", "assistant"]


class Counting:
    """A tool's vocabulary hook that counts its reads (and fails while told to)."""

    def __init__(self) -> None:
        self.reads = 0
        self.failing = False

    def __call__(self, context: ToolContext) -> Vocabulary:
        self.reads += 1
        if self.failing:
            raise RuntimeError("the store is down")
        return Vocabulary(words=(f"{context.tenant}-{self.reads}",))


async def test_a_tenants_vocabulary_is_kept_until_its_generation_moves() -> None:
    registrations = InMemoryRegistrations()
    hook = Counting()
    tools = [_tool("docs", hook), _tool("clock", None)]
    kept = VocabularyCache(registrations.generation)
    acme = ToolContext(tenant="acme", session_id="s1")
    assert (await kept.get(tools, acme)).words == ("acme-1",)
    assert (await kept.get(tools, ToolContext(tenant="acme", session_id="s2"))).words == ("acme-1",)
    # Turns that find none kept wait for the one read under way.
    many = await asyncio.gather(*(kept.get(tools, ToolContext(tenant="globex", session_id=f"s{i}")) for i in range(20)))
    assert {v.words for v in many} == {("globex-2",)} and hook.reads == 2
    # The bases a turn may search are part of what is kept.
    assert (await kept.get(tools, ToolContext("acme", "s1", knowledge_bases=("notes",)))).words == ("acme-3",)
    await registrations.put("acme", "voice", "v1", b"{}")  # a registration of acme's changed
    assert (await kept.get(tools, acme)).words == ("acme-4",)
    await registrations.touch("acme")  # acme's knowledge changed
    assert (await kept.get(tools, acme)).words == ("acme-5",)
    assert (await kept.get(tools, ToolContext(tenant="globex", session_id="s"))).words == ("globex-2",)
    assert hook.reads == 5


async def test_a_kept_vocabulary_is_read_again_once_it_is_old_or_was_not_whole() -> None:
    registrations = InMemoryRegistrations()
    hook = Counting()
    clock = [100.0]
    kept = VocabularyCache(registrations.generation, max_age_s=30, clock=lambda: clock[0])
    tools, acme = [_tool("docs", hook)], ToolContext(tenant="acme", session_id="s")
    assert (await kept.get(tools, acme)).words == ("acme-1",)
    clock[0] += 29
    assert (await kept.get(tools, acme)).words == ("acme-1",)
    clock[0] += 2  # older than max_age_s: what the hook reads elsewhere is read again
    assert (await kept.get(tools, acme)).words == ("acme-2",)
    hook.failing = True
    assert (await kept.get(tools, ToolContext(tenant="globex", session_id="s"))).words == ()
    hook.failing = False  # the store is back: what it could not say is not kept
    assert (await kept.get(tools, ToolContext(tenant="globex", session_id="s"))).words == ("globex-4",)
    assert await kept.get([_tool("clock", None)], acme) == Vocabulary() and hook.reads == 4


async def test_a_vocabulary_is_read_afresh_when_the_generation_cannot_be() -> None:
    async def down(tenant: str) -> int:
        raise ConnectionError("the memory is down")

    hook = Counting()
    kept = VocabularyCache(down)
    tools, acme = [_tool("docs", hook)], ToolContext(tenant="acme", session_id="s")
    assert [(await kept.get(tools, acme)).words for _ in range(2)] == [("acme-1",), ("acme-2",)]
