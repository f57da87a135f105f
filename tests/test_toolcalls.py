"""parse_tool_calls against the shapes small models really write, good and broken."""

from __future__ import annotations

import re

from model.toolcalls import parse_tool_calls

VALID = ("get_date_time", "knowledge_search", "reply")


def test_tagged_call() -> None:
    parsed = parse_tool_calls(
        '<tool_call>\n{"name": "get_date_time", "arguments": {"timezone": "Asia/Tokyo"}}\n</tool_call>', VALID
    )
    assert [(c["name"], c["arguments"]) for c in parsed.calls] == [("get_date_time", {"timezone": "Asia/Tokyo"})]
    assert parsed.text == ""
    assert parsed.errors == []


def test_call_ids_are_unique_and_prefixed() -> None:
    text = '<tool_call>{"name": "reply", "arguments": {"text": "a"}}</tool_call>' * 2
    ids = [c["id"] for c in parse_tool_calls(text, VALID).calls]
    assert len(ids) == 2 and ids[0] != ids[1]
    assert all(re.fullmatch(r"call_[0-9a-f]+", i) for i in ids)


def test_unclosed_tag_at_end() -> None:
    parsed = parse_tool_calls('<tool_call>\n{"name": "knowledge_search", "arguments": {"query": "parking"}}', VALID)
    assert parsed.calls[0]["arguments"] == {"query": "parking"}


def test_truncated_json_is_closed() -> None:
    parsed = parse_tool_calls('<tool_call>\n{"name": "reply", "arguments": {"text": "Hello, how can I', VALID)
    assert parsed.calls[0]["arguments"] == {"text": "Hello, how can I"}


def test_truncated_after_escape() -> None:
    parsed = parse_tool_calls('<tool_call>{"name": "reply", "arguments": {"text": "say \\', VALID)
    assert parsed.calls[0]["name"] == "reply"


def test_trailing_junk_after_object() -> None:
    parsed = parse_tool_calls('<tool_call>{"name": "reply", "arguments": {"text": "hi"}}}}\n</tool_call>', VALID)
    assert parsed.calls[0]["arguments"] == {"text": "hi"}


def test_json_fence() -> None:
    text = 'Sure!\n```json\n{"name": "get_date_time", "arguments": {"timezone": "London"}}\n```\nDone.'
    parsed = parse_tool_calls(text, VALID)
    assert parsed.calls[0]["arguments"] == {"timezone": "London"}
    assert parsed.text == "Sure!\n\nDone."


def test_plain_fence_without_language() -> None:
    parsed = parse_tool_calls('```\n{"name": "knowledge_search", "parameters": {"query": "wifi"}}\n```', VALID)
    assert parsed.calls[0]["arguments"] == {"query": "wifi"}


def test_fence_with_other_code_is_kept_as_text() -> None:
    text = "```python\nprint({'a': 1})\n```"
    parsed = parse_tool_calls(text, VALID)
    assert parsed.calls == [] and parsed.errors == []
    assert "print" in parsed.text


def test_bare_json_in_prose() -> None:
    text = 'I will look that up. {"name": "knowledge_search", "arguments": {"query": "parking policy"}} One moment.'
    parsed = parse_tool_calls(text, VALID)
    assert parsed.calls[0]["arguments"] == {"query": "parking policy"}
    assert parsed.text.startswith("I will look that up.")
    assert parsed.text.endswith("One moment.")


def test_bare_json_that_is_not_a_call_stays() -> None:
    text = 'The config is {"name": "x"} and {"a": 1}.'
    parsed = parse_tool_calls(text, VALID)
    assert parsed.calls == [] and parsed.errors == []
    assert parsed.text == text


def test_list_of_calls() -> None:
    text = (
        '[{"name": "get_date_time", "arguments": {"timezone": "Tokyo"}},'
        ' {"name": "get_date_time", "arguments": {"timezone": "Paris"}}]'
    )
    parsed = parse_tool_calls(text, VALID)
    assert [c["arguments"]["timezone"] for c in parsed.calls] == ["Tokyo", "Paris"]


def test_list_inside_tag() -> None:
    text = '<tool_call>[{"name": "reply", "arguments": {"text": "a"}}, {"name": "reply"}]</tool_call>'
    parsed = parse_tool_calls(text, VALID)
    assert [c["arguments"] for c in parsed.calls] == [{"text": "a"}, {}]


def test_arguments_as_json_string() -> None:
    text = '<tool_call>{"name": "get_date_time", "arguments": "{\\"timezone\\": \\"UTC\\"}"}</tool_call>'
    parsed = parse_tool_calls(text, VALID)
    assert parsed.calls[0]["arguments"] == {"timezone": "UTC"}


def test_parameters_synonym() -> None:
    parsed = parse_tool_calls('<tool_call>{"name": "knowledge_search", "parameters": {"query": "q"}}', VALID)
    assert parsed.calls[0]["arguments"] == {"query": "q"}


def test_openai_function_shape() -> None:
    text = '{"type": "function", "function": {"name": "reply", "arguments": "{\\"text\\": \\"ok\\"}"}}'
    parsed = parse_tool_calls(text, VALID)
    assert parsed.calls[0]["arguments"] == {"text": "ok"}


def test_missing_arguments_in_tag_means_empty() -> None:
    parsed = parse_tool_calls('<tool_call>{"name": "get_date_time"}</tool_call>', VALID)
    assert parsed.calls[0]["arguments"] == {}


def test_unknown_tool_is_an_error_listing_valid_tools() -> None:
    parsed = parse_tool_calls('<tool_call>{"name": "get_weather", "arguments": {"city": "Paris"}}</tool_call>', VALID)
    assert parsed.calls == []
    assert len(parsed.errors) == 1
    assert "get_weather" in parsed.errors[0]
    assert "get_date_time, knowledge_search, reply" in parsed.errors[0]


def test_name_whitespace_is_stripped() -> None:
    parsed = parse_tool_calls('<tool_call>{"name": " reply ", "arguments": {"text": "x"}}</tool_call>', VALID)
    assert parsed.calls[0]["name"] == "reply"


def test_malformed_json_in_tag_is_an_error() -> None:
    parsed = parse_tool_calls("<tool_call>name: reply, text: hi</tool_call>", VALID)
    assert parsed.calls == []
    assert parsed.errors and "could not read" in parsed.errors[0]


def test_broken_json_in_tag_with_bad_tokens() -> None:
    parsed = parse_tool_calls('<tool_call>{"name": "reply", "arguments": {"text": hi}}</tool_call>', VALID)
    assert parsed.calls == [] and parsed.errors


def test_arguments_not_an_object_is_an_error() -> None:
    parsed = parse_tool_calls('<tool_call>{"name": "reply", "arguments": [1, 2]}</tool_call>', VALID)
    assert parsed.calls == [] and "must be a JSON object" in parsed.errors[0]


def test_unparseable_argument_string_means_empty() -> None:
    parsed = parse_tool_calls('<tool_call>{"name": "get_date_time", "arguments": "Tokyo"}</tool_call>', VALID)
    assert parsed.calls[0]["arguments"] == {}


def test_call_without_name_is_an_error() -> None:
    parsed = parse_tool_calls('<tool_call>{"arguments": {"text": "x"}}</tool_call>', VALID)
    assert parsed.calls == [] and "without a name" in parsed.errors[0]


def test_empty_tag_is_ignored() -> None:
    parsed = parse_tool_calls("Hi there.<tool_call>\n</tool_call>", VALID)
    assert parsed.calls == [] and parsed.errors == [] and parsed.text == "Hi there."


def test_plain_prose_passes_through() -> None:
    parsed = parse_tool_calls("It is sunny today.", VALID)
    assert parsed.calls == [] and parsed.errors == [] and parsed.text == "It is sunny today."


def test_stray_closing_tag_is_removed_from_text() -> None:
    parsed = parse_tool_calls("Bye now!</tool_call>", VALID)
    assert parsed.text == "Bye now!"


def test_prose_around_tags_is_kept() -> None:
    text = 'Let me check.\n<tool_call>\n{"name": "get_date_time", "arguments": {"timezone": "Tokyo"}}\n</tool_call>'
    parsed = parse_tool_calls(text, VALID)
    assert parsed.text == "Let me check."
    assert parsed.calls[0]["name"] == "get_date_time"


def test_unicode_and_braces_inside_strings() -> None:
    text = '<tool_call>{"name": "reply", "arguments": {"text": "Ça coûte {5} €, [ok]"}}</tool_call>'
    parsed = parse_tool_calls(text, VALID)
    assert parsed.calls[0]["arguments"] == {"text": "Ça coûte {5} €, [ok]"}


def test_empty_valid_names_rejects_everything() -> None:
    parsed = parse_tool_calls('<tool_call>{"name": "reply", "arguments": {}}</tool_call>', ())
    assert parsed.calls == [] and "(none)" in parsed.errors[0]
