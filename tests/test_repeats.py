"""Telling an answer that begins to copy an earlier one from one that begins the same way."""

from __future__ import annotations

from model.base import Message
from model.repeats import RepeatWatch, first_word, spellings

SKY = "The sky is blue because of the scattering of light by the atmosphere."


def _after_the_clock(earlier: str, question: str, result: str) -> list[Message]:
    return [
        Message(role="user", content="Why is the sky blue?"),
        Message(role="assistant", content=earlier),
        Message(role="user", content=question),
        Message(role="assistant", content="", tool_calls=[{"id": "c1", "name": "get_date_time", "arguments": {}}]),
        Message(role="tool", tool_call_id="c1", name="get_date_time", content=result),
    ]


def test_a_copy_is_found_at_its_first_word_the_turn_never_said() -> None:
    watch = RepeatWatch(_after_the_clock(SKY, "What time is it in Chicago?", "It is 4:20 AM in Chicago."))
    assert watch.holds("The") and watch.holds("The sky is")
    assert not watch.copied("The sky is")  # one word the turn never said: not yet a copy
    assert not watch.copied("The sky is blue")  # "blue" is not written out yet
    assert watch.copied("The sky is blue because")


def test_an_answer_that_only_begins_the_same_way_goes_on() -> None:
    earlier = "The current time in Paris is 11:20 AM."
    watch = RepeatWatch(_after_the_clock(earlier, "And in Berlin?", "It is 11:20 AM on Sunday in Berlin."))
    assert watch.holds("The current time in")
    assert not watch.copied("The current time in")  # "current" alone: how such answers begin
    assert not watch.holds("The current time in Berlin")
    assert not watch.copied("The current time in Berlin is")


def test_the_same_answer_to_the_same_question_is_no_copy() -> None:
    earlier = "The head chef at the Copper Kettle is Marta Lindqvist."
    watch = RepeatWatch(
        _after_the_clock(earlier, "Who is the head chef at the Copper Kettle?", "[1] Marta Lindqvist is head chef.")
    )
    assert not watch.copied(earlier + " She")


def test_only_answers_before_this_turn_s_question_count() -> None:
    messages = _after_the_clock(SKY, "What time is it in Chicago?", "It is 4:20 AM in Chicago.")
    assert RepeatWatch(messages).earlier == [SKY]
    assert RepeatWatch(messages[2:]).earlier == []


def test_each_line_of_the_planner_s_notes_counts_as_an_earlier_answer() -> None:
    note = "The user's own documents (search them with knowledge_search) mention: Brannoch Orchard, Veldt."
    messages = _after_the_clock("", "Please speak in a high voice.", "Voice set to 'High'.")
    watch = RepeatWatch(messages, unspoken=f"Be brief.\n{note}")
    assert watch.unspoken == ["Be brief.", note]
    assert watch.holds("The user") and not watch.copied("The user")
    assert watch.copied("The user's own documents")
    assert not RepeatWatch(messages).holds("The user")


def test_a_note_is_copied_from_any_of_its_words_on() -> None:
    """Asked "Tell me something interesting.", the model answered with the note's list of names."""
    note = "The user's own documents (search them with knowledge_search) mention: Brannoch Orchard, Tobias Quell."
    watch = RepeatWatch([Message(role="user", content="Tell me something interesting.")], note, answers=False)
    assert watch.holds("Brannoch Orchard,") and watch.holds("Tobias")
    assert not watch.copied("Brannoch Orchard")  # "Orchard" is not written out yet
    assert watch.copied("Brannoch Orchard, Tobias") and watch.copied("Tobias Quell.")
    assert not watch.holds("rannoch")  # from a word's start only
    assert not watch.holds("Brannoch Orchard is")


def test_a_direct_answer_is_watched_for_the_notes_alone() -> None:
    messages = _after_the_clock(SKY, "Why is the sky blue?", "")[:3]
    assert RepeatWatch(messages, answers=False).earlier == []
    assert not RepeatWatch(messages, answers=False).holds("The sky is blue because")
    assert RepeatWatch(messages).holds("The sky is blue because")


def test_a_word_is_kept_from_in_every_way_it_may_be_written() -> None:
    assert {" The", "The", " the", "THE"} <= spellings("The") and spellings("") == set()
    assert first_word(" The sky") == "The" and first_word("...") == ""
