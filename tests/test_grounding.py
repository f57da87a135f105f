"""Whether a call's words were said: what a planner's second thought about a call rests on."""

from __future__ import annotations

from model.grounding import Said, grounded, what_was_said

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


def _said(*user: str, answer: str = "") -> Said:
    messages = [{"role": "system", "content": "You help with the weather in London."}]
    messages += [{"role": "user", "content": text} for text in user]
    if answer:
        messages.append({"role": "assistant", "content": answer})
    messages.append({"role": "tool", "content": "Rain in Madrid."})
    return what_was_said(messages)


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
    said = what_was_said([{"role": "assistant", "content": "", "tool_calls": [{"arguments": {"location": "Oslo"}}]}])
    assert grounded({"location": "Oslo"}, WEATHER, said)


def test_choices_and_calls_without_free_text_are_the_models_to_make() -> None:
    assert grounded({"unit": "celsius", "note": "anything"}, UNITS, _said("Hello!"))  # an enum, and `note` is optional
    assert grounded({}, {"type": "object", "properties": {}}, _said("Hello!"))
    assert grounded({"location": ""}, WEATHER, _said("Hello!"))  # nothing written is nothing invented


TAX = {
    "type": "object",
    "properties": {"income": {"type": "number"}, "rate": {"type": "number"}, "region": {"type": "string"}},
    "required": ["income", "rate"],
}
HOTEL = {
    "type": "object",
    "properties": {
        "location": {"type": "string"},
        "hotel_name": {"type": "string"},
        "check_in": {"type": "string"},
        "nights": {"type": "integer"},
        "pets": {"type": "boolean"},
    },
    "required": ["location", "hotel_name", "check_in", "pets"],
}


def test_numbers_are_read_as_said_in_digits_words_scales_and_percentages() -> None:
    assert grounded({"income": 52_000, "rate": 0.2}, TAX, _said("My income is $52,000, taxed at 20%."))
    assert grounded({"income": 1_500_000, "rate": 3}, TAX, _said("One and a half? No: 1.5 million at three percent"))
    assert grounded({"income": 325, "rate": 12}, TAX, _said("three hundred twenty five at a dozen"))
    assert grounded({"income": 5000, "rate": 0.025}, TAX, _said("$5k at 2.5 %"))
    assert grounded({"income": -40, "rate": 0}, TAX, _said("It was minus 40 degrees, zero wind."))
    assert grounded({"income": 40, "rate": 7}, TAX, _said("What is 40 times 7?", answer="Something else"))


def test_a_number_nobody_said_is_invented() -> None:
    integral = _said("Find the definite integral of f(x)=x^2 from x=1 to x=3.")
    assert not grounded({"income": 50_000, "rate": 0.2}, TAX, integral)
    assert not grounded({"income": 3, "rate": 0.2}, TAX, integral)  # one said, one not
    assert grounded({"income": 3, "rate": 1, "region": "Mars"}, TAX, integral)  # `region` is optional


def test_every_free_text_a_user_would_give_must_have_been_said() -> None:
    thai = _said("Find a Thai restaurant in Chicago with vegetarian options.")
    call = {"location": "Chicago", "hotel_name": "The Golden Gate", "check_in": "2026-12-07", "pets": True}
    assert not grounded(call, HOTEL, thai)  # Chicago was said, the hotel's name was not
    stay = _said("Book the Golden Gate hotel in Chicago from tomorrow, with my dog.")
    assert grounded(call, HOTEL, stay)  # the date in digits and the yes or no are the model's to work out
