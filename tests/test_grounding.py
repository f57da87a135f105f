"""Whether a call's words were said: what a planner's second thought about a call rests on."""

from __future__ import annotations

from model.grounding import conversation_words, grounded

WEATHER = {
    "type": "object",
    "properties": {"location": {"type": "string"}, "days": {"type": "integer"}},
    "required": ["location"],
}
SEARCH = {
    "type": "object",
    "properties": {"queries": {"type": "array", "items": {"type": "string"}}},
    "required": ["queries"],
}
UNITS = {
    "type": "object",
    "properties": {"unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}, "note": {"type": "string"}},
    "required": ["unit"],
}


def _said(*user: str, answer: str = "") -> set[str]:
    messages = [{"role": "system", "content": "You help with the weather in London."}]
    messages += [{"role": "user", "content": text} for text in user]
    if answer:
        messages.append({"role": "assistant", "content": answer})
    messages.append({"role": "tool", "content": "Rain in Madrid."})
    return conversation_words(messages)


def test_a_call_for_what_was_asked_is_grounded() -> None:
    assert grounded({"location": "Paris, France"}, WEATHER, _said("What's the weather like in Paris today?"))
    assert grounded({"location": "Asia/Tokyo"}, WEATHER, _said("What time is it in Tokyo?"))
    assert grounded({"queries": ["latest electric bike news"]}, SEARCH, _said("Any news about electric bikes?"))
    assert grounded({"location": "Scotland"}, WEATHER, _said("Is it cold in the Scottish highlands?"))


def test_an_invented_call_is_not() -> None:
    octopus = _said("How many legs does an octopus have?")
    assert not grounded(
        {"location": "London, UK", "days": 1}, WEATHER, octopus
    )  # the system block's London is no user's
    assert not grounded({"location": "Madrid"}, WEATHER, octopus)  # nor is a tool's Madrid
    assert not grounded({"queries": ["what is the time"]}, SEARCH, _said("What is a good name for a cat?"))
    puppy = _said("Can you suggest a name for my new puppy?")
    assert not grounded({"location": "America/New_York"}, WEATHER, puppy)  # "new" alone is no place
    assert grounded({"location": "America/New_York"}, WEATHER, _said("And in New York?"))


def test_earlier_turns_and_answers_ground_a_follow_up() -> None:
    assert grounded({"location": "Rome"}, WEATHER, _said("What time is it in Rome?", "And the weather there?"))
    assert grounded({"location": "Paris"}, WEATHER, _said("Where is the Eiffel Tower?", answer="It is in Paris."))
    said = conversation_words(
        [{"role": "assistant", "content": "", "tool_calls": [{"arguments": {"location": "Oslo"}}]}]
    )
    assert grounded({"location": "Oslo"}, WEATHER, said)


def test_choices_and_calls_without_free_text_are_the_models_to_make() -> None:
    assert grounded({"unit": "celsius", "note": "anything"}, UNITS, _said("Hello!"))  # an enum, and `note` is optional
    assert grounded({}, {"type": "object", "properties": {}}, _said("Hello!"))
    assert grounded({"location": ""}, WEATHER, _said("Hello!"))  # nothing written is nothing invented
