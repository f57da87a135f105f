"""The cascade on a stepping engine (llama.cpp's shape, scripted): each step is written in
constrained pieces, the JSON between them appended, and every step shows the same prompt."""

from __future__ import annotations

import asyncio
import math

from model.base import Message, PlanEvent, PlanRequest, TextDelta, ToolCallEvent, ToolChosen, ToolSpecDict, Usage
from model.cascade import FORCED_PREFIX, CascadePlanner
from model.cascade_steps import CLAIMED_BIAS, UNGROUNDED_REPLY_BIAS
from model.grammar import PLAIN_ANSWER, arguments_grammar, name_grammar
from model.repeats import spellings
from model.testing import ScriptedSteps, step_answer, step_call, step_reply
from tests.planner_tools import CLOCK, TOOLS

HELLO = [Message(role="user", content="Hello there!")]
TOKYO = [Message(role="user", content="What time is it in Tokyo?")]


def _plan(engine: ScriptedSteps, messages: list[Message], **options: object) -> list[PlanEvent]:
    planner = CascadePlanner(engine)

    async def collect() -> list[PlanEvent]:
        request = PlanRequest(messages=messages, tools=TOOLS, **options)  # type: ignore[arg-type]
        return [event async for event in planner.plan(request)]

    events = asyncio.run(collect())
    assert isinstance(events[-1], Usage)
    return events


def _said(events: list[PlanEvent]) -> str:
    return "".join(e.text for e in events if isinstance(e, TextDelta))


def test_a_reply_is_streamed_from_its_constrained_text() -> None:
    engine = ScriptedSteps(step_reply('Hello! I\'m "Vox".\nHow can I help?'))
    events = _plan(engine, HELLO)
    assert _said(events) == 'Hello! I\'m "Vox".\nHow can I help?'
    assert len([e for e in events if isinstance(e, TextDelta)]) > 3  # as it is written, not at the end
    assert not [e for e in events if isinstance(e, ToolChosen)]  # `reply` is no tool
    [step] = engine.steps
    # "rep" (the fake writes three characters at a time) could only become "reply": the rest is
    # appended, then the step goes back to before the call and answers in plain text there
    assert step["appended"] == [FORCED_PREFIX, 'ly",'] and step["rewound"] == [0]
    assert step["grammars"] == [name_grammar(["get_date_time", "knowledge_search", "reply"]), PLAIN_ANSWER]


def test_a_call_is_read_under_its_schema_grammar() -> None:
    engine = ScriptedSteps(step_call("get_date_time", {"timezone": "Asia/Tokyo"}))
    events = _plan(engine, TOKYO)
    [call] = [e.call for e in events if isinstance(e, ToolCallEvent)]
    assert (call["name"], call["arguments"]) == ("get_date_time", {"timezone": "Asia/Tokyo"}) and call["id"]
    # the choice is told as soon as it is made, before the arguments are written
    assert [type(e) for e in events[:2]] == [ToolChosen, ToolCallEvent] and events[0] == ToolChosen("get_date_time")
    [step] = engine.steps
    assert step["appended"] == [FORCED_PREFIX, '_date_time",', ' "arguments":']
    assert step["grammars"][1] == arguments_grammar(CLOCK["parameters"])
    assert step["forced"][1] == ' {"timezone": "'  # what the schema leaves no choice in: prefilled


def test_reading_stops_at_the_end_of_what_is_needed() -> None:
    engine = ScriptedSteps(["replyz", "Hi.", "get", '{"timezone": "Asia/Tokyo"} junk'])
    assert _said(_plan(engine, HELLO)) == "Hi."
    calls = [e for e in _plan(engine, TOKYO) if isinstance(e, ToolCallEvent)]
    assert [(c.call["name"], c.call["arguments"]) for c in calls] == [("get_date_time", {"timezone": "Asia/Tokyo"})]
    hello, tokyo = engine.steps
    assert hello["appended"][:2] == [FORCED_PREFIX, 'ly",']  # "rep" could only become "reply"
    assert tokyo["appended"][:2] == [FORCED_PREFIX, '_date_time",']
    name, arguments = hello["sampled"][0], tokyo["sampled"][1]
    assert name == "rep"  # not on to "replyz"
    assert arguments.rstrip().endswith("}") and "junk" not in arguments


def test_a_call_of_words_never_said_is_thought_again_about() -> None:
    """ "How many legs does an octopus have?" called the weather for London: a call whose words
    the user did not say is chosen again, `reply` leaning, and a reply is written instead."""
    octopus = [Message(role="user", content="How many legs does an octopus have?")]
    engine = ScriptedSteps(["get", '{"timezone": "UTC"}', "rep", "Eight."])
    events = _plan(engine, octopus)
    assert _said(events) == "Eight." and not [e for e in events if isinstance(e, ToolCallEvent)]
    [step] = engine.steps
    assert step["rewound"] == [1, 0]  # to just after `<tool_call>\n{"name": "`, then to before the call
    assert step["biases"][0] == {"reply": 0.0} and step["biases"][2] == {"reply": UNGROUNDED_REPLY_BIAS}


def test_a_call_a_second_thought_could_undo_is_told_once_it_stands() -> None:
    """ "What is a good name for a grey cat?" began a call of the weather: the line said while a
    tool runs ("Let me check the weather.") waits for the call to stand when the name led
    `reply` by less than a second thought leans (one that led by more is told at once: the
    scripted engine's lead is infinite unless told otherwise, as in the tests above)."""
    cat = [Message(role="user", content="What is a good name for a grey cat?")]
    engine = ScriptedSteps(["get", '{"timezone": "UTC"}', "rep", "Misty."], leads=[UNGROUNDED_REPLY_BIAS - 1])
    events = _plan(engine, cat)
    assert _said(events) == "Misty." and not [e for e in events if isinstance(e, ToolChosen | ToolCallEvent)]

    engine = ScriptedSteps(step_call("get_date_time", {"timezone": "Asia/Tokyo"}), leads=[UNGROUNDED_REPLY_BIAS - 1])
    events = _plan(engine, TOKYO)
    assert [type(e) for e in events[:2]] == [ToolChosen, ToolCallEvent]  # said once the call stands
    engine = ScriptedSteps(["get", '{"timezone": "UTC"}', "get"], leads=[UNGROUNDED_REPLY_BIAS - 1])
    events = _plan(engine, [Message(role="user", content="What time is it?")])
    assert [type(e) for e in events[:2]] == [ToolChosen, ToolCallEvent]  # chosen again: it stands


def test_a_question_a_tool_claims_is_chosen_again_leaning_toward_it() -> None:
    """ "When was the Veldt bridge completed?" began a call of the clock (the weather, in service)
    though only the user's documents know the Veldt bridge: the name is chosen again with the
    claiming tool leaning, before any argument is written; an answer without a tool as well."""
    veldt = [Message(role="user", content="When was the Veldt bridge completed?")]
    search = '{"query": "Veldt bridge completed"}'
    engine = ScriptedSteps(["get", "kno", search])
    [call] = [e.call for e in _plan(engine, veldt, claimed="knowledge_search") if isinstance(e, ToolCallEvent)]
    assert (call["name"], call["arguments"]) == ("knowledge_search", {"query": "Veldt bridge completed"})
    [step] = engine.steps
    assert step["rewound"] == [1]  # to just after `<tool_call>\n{"name": "`: nothing read again
    assert step["biases"][:2] == [{"reply": 0.0}, {"reply": 0.0, "knowledge_search": CLAIMED_BIAS}]

    engine = ScriptedSteps(["rep", "kno", search])
    assert [
        e.call["name"] for e in _plan(engine, veldt, claimed="knowledge_search") if isinstance(e, ToolCallEvent)
    ] == ["knowledge_search"]
    engine = ScriptedSteps(["get", "get", '{"timezone": "UTC"}', "get"])  # chosen again all the same: it stands
    [call] = [e.call for e in _plan(engine, veldt, claimed="knowledge_search") if isinstance(e, ToolCallEvent)]
    assert call["name"] == "get_date_time"
    engine = ScriptedSteps(["kno", search])  # the claimed tool chosen at once: no second choice
    assert len([e for e in _plan(engine, veldt, claimed="knowledge_search") if isinstance(e, ToolCallEvent)]) == 1
    assert engine.steps[0]["rewound"] == [] and engine.steps[0]["biases"][0] == {"reply": 0.0}


def test_a_call_chosen_again_is_kept_as_written() -> None:
    unsaid = [Message(role="user", content="What time is it?")]
    engine = ScriptedSteps(["get", '{"timezone": "UTC"}', "get"])
    [call] = [e.call for e in _plan(engine, unsaid) if isinstance(e, ToolCallEvent)]
    assert (call["name"], call["arguments"]) == ("get_date_time", {"timezone": "UTC"})
    [step] = engine.steps
    assert step["appended"][-1] == ' "arguments": {"timezone": "UTC"}'  # read again, not written again
    assert len(step["sampled"]) == 3


def test_after_a_tool_result_it_answers_in_plain_text_and_the_prompt_only_grows() -> None:
    clock = step_call("get_date_time", {"timezone": "Asia/Tokyo"})
    engine = ScriptedSteps([*clock, *step_answer("It is noon in Tokyo.")])
    [call] = [e.call for e in _plan(engine, TOKYO) if isinstance(e, ToolCallEvent)]
    after = [
        *TOKYO,
        Message(role="assistant", content="", tool_calls=[call]),
        Message(role="tool", tool_call_id=call["id"], name=call["name"], content="It is 12:00 in Tokyo."),
    ]
    assert _said(_plan(engine, after)) == "It is noon in Tokyo."
    first, second = engine.steps
    assert second["appended"] == [] and second["grammars"] == [PLAIN_ANSWER]
    assert second["tools"] == first["tools"] and second["messages"][: len(first["messages"])] == first["messages"]


def test_an_answer_that_copies_an_earlier_one_begins_again_with_another_word() -> None:
    """After "Why is the sky blue?" the clock's answer for Chicago began the sky's answer again:
    the copy is held back, not said, and the answer begins again with any word but "The"."""
    sky = "The sky is blue because of the scattering of light."
    asked = [Message(role="user", content="Why is the sky blue?"), Message(role="assistant", content=sky)]
    chicago = [*asked, Message(role="user", content="What time is it in Chicago?")]
    clock = step_call("get_date_time", {"timezone": "America/Chicago"})
    engine = ScriptedSteps([*clock, sky, "It is 4:20 AM in Chicago."])
    [call] = [e.call for e in _plan(engine, chicago) if isinstance(e, ToolCallEvent)]
    result = Message(role="tool", tool_call_id=call["id"], name=call["name"], content="It is 4:20 AM in Chicago.")
    events = _plan(engine, [*chicago, Message(role="assistant", content="", tool_calls=[call]), result])
    assert _said(events) == "It is 4:20 AM in Chicago."
    answer = engine.steps[-1]
    assert answer["biases"] == [{}, dict.fromkeys(spellings("The"), -math.inf)]
    assert answer["sampled"][0] == "The sky is blue be"  # read until the second unsaid word is written out
    assert answer["rewound"] == [0]  # to where the answer began


def test_an_answer_that_reads_out_the_planner_s_notes_begins_again() -> None:
    """Asked for another voice, the model answered the voice tool's result with the knowledge
    tool's note to it, word for word: the notes are the planner's to read, never to say."""
    note = "The user's own documents (search them with knowledge_search) mention: Brannoch Orchard, Veldt."
    ask = [Message(role="user", content="Please speak in a high, fast voice.")]
    call = {"id": "c1", "name": "get_date_time", "arguments": {}}
    result = Message(role="tool", tool_call_id="c1", name="get_date_time", content="Voice set to 'High, fast'.")
    engine = ScriptedSteps([note, "I'm ready to speak in a high, fast voice."])
    after = [*ask, Message(role="assistant", content="", tool_calls=[call]), result]
    assert _said(_plan(engine, after, notes=note)) == "I'm ready to speak in a high, fast voice."
    [answer] = engine.steps
    assert note in answer["messages"][1]["content"]  # read all the same
    assert answer["biases"] == [{}, dict.fromkeys(spellings("The"), -math.inf)] and answer["rewound"] == [0]


def test_a_direct_answer_that_reads_out_the_planner_s_notes_begins_again() -> None:
    """Asked "Tell me something interesting.", the model answered with the knowledge tool's note
    to it, from its list of names on."""
    note = "The user's own documents (search them with knowledge_search) mention: Brannoch Orchard, Veldt."
    engine = ScriptedSteps([*step_reply("Brannoch Orchard, Veldt."), "Octopuses have three hearts."])
    asked = [Message(role="user", content="Tell me something interesting.")]
    assert _said(_plan(engine, asked, notes=note)) == "Octopuses have three hearts."
    [step] = engine.steps
    assert step["biases"][-2:] == [{}, dict.fromkeys(spellings("Brannoch"), -math.inf)]


def test_a_direct_answer_is_not_watched_for_copies() -> None:
    joke = "Why did the penguin cross the road? To get to the other side!"
    asked = [Message(role="user", content="Tell me a joke."), Message(role="assistant", content=joke)]
    engine = ScriptedSteps(step_reply(joke))
    assert _said(_plan(engine, [*asked, Message(role="user", content="Another one?")])) == joke


def test_with_tool_choice_none_it_replies_with_the_tools_still_declared() -> None:
    engine = ScriptedSteps(step_reply("I can't look that up now.", chosen=False))
    assert _said(_plan(engine, TOKYO, tool_choice="none")) == "I can't look that up now."
    [step] = engine.steps
    assert [t["function"]["name"] for t in step["tools"]] == ["get_date_time", "knowledge_search", "reply"]
    assert step["appended"] == [] and step["grammars"] == [PLAIN_ANSWER]  # no call opened


def test_usage_says_what_kind_of_step_it_was_and_what_was_written() -> None:
    engine = ScriptedSteps(step_reply("Hi."))
    usage = _plan(engine, HELLO)[-1]
    assert isinstance(usage, Usage) and usage.extra["mode"] == "choose" and usage.extra["generations"] == 1
    assert usage.extra["raw"] == ["rep" + "Hi."]


def test_warm_up_reads_the_system_block_of_every_step() -> None:
    engine = ScriptedSteps(step_reply("Hi."))
    planner = CascadePlanner(engine)
    asyncio.run(planner.warm_up(TOOLS))
    _plan(engine, HELLO)
    warm, first = engine.steps
    assert warm["prefilled"] == "kept on disk" and warm["grammars"] == [] and warm["tools"] == first["tools"]
    assert warm["messages"] == first["messages"][:1]  # the system block, and nothing of any user


def test_the_lean_toward_replying_is_given_to_the_name_choice_alone() -> None:
    engine = ScriptedSteps(step_call("get_date_time", {"timezone": "Asia/Tokyo"}))
    asyncio.run(_collect(CascadePlanner(engine, reply_bias=3.0), TOKYO, TOOLS))
    [step] = engine.steps
    assert step["biases"] == [{"reply": 3.0}, {}]  # the name, then the arguments unbiased


def test_no_lean_when_another_tool_begins_like_reply() -> None:
    reply_all = ToolSpecDict(name="reply_all", description="Answer every email", parameters={"type": "object"})
    engine = ScriptedSteps(step_reply("Hi."))
    asyncio.run(_collect(CascadePlanner(engine, reply_bias=3.0), HELLO, [*TOOLS, reply_all]))
    assert engine.steps[0]["biases"][0] == {}


async def _collect(
    planner: CascadePlanner, messages: list[Message], tools: list[ToolSpecDict], instructions: str = ""
) -> list[PlanEvent]:
    request = PlanRequest(messages=messages, tools=tools, instructions=instructions)
    return [event async for event in planner.plan(request)]


def test_after_an_answer_the_next_turn_s_opening_is_read_ahead_and_after_a_call_not() -> None:
    engine = ScriptedSteps([*step_reply("Hi there."), *step_call("get_date_time", {"timezone": "Asia/Tokyo"})])
    _plan(engine, HELLO)
    _plan(engine, TOKYO)
    [conversation] = engine.read_aheads  # the reply's; the call's turn goes on after its result
    assert conversation[:-1] == engine.steps[0]["messages"]
    assert conversation[-1] == {"role": "assistant", "content": "Hi there."}  # as it was written


def test_a_conversation_is_read_ahead_while_its_next_words_are_heard() -> None:
    """`prepare` reads what the next step begins with, the system prompt, the note and the
    conversation so far, for the engine to take up the session while the recognizer works."""
    engine = ScriptedSteps(step_reply("Hi there."))
    planner = CascadePlanner(engine)

    async def heard_then_planned() -> None:
        planner.prepare(PlanRequest(messages=[], tools=TOOLS, instructions="Note."))
        await planner.read_ahead_done()
        await _collect(planner, HELLO, TOOLS, instructions="Note.")

    asyncio.run(heard_then_planned())
    [prepared, _] = engine.read_aheads  # then the reply's, for the turn after
    assert prepared == engine.steps[0]["messages"][: len(prepared)] and len(prepared) == 2  # system prompt, note
