"""Prompt-lookup drafts (model/lookup.py): guesses come from what the context already says."""

from __future__ import annotations

from model.lookup import WINDOW, draft


def test_the_tokens_after_the_latest_earlier_occurrence_are_guessed() -> None:
    context = [1, 2, 3, 4, 5, 9, 1, 2, 3, 7, 8, 0, 1, 2, 3]
    assert draft(context, 2) == [7, 8]  # "1 2 3" last occurs before 7 8, the latest occurrence
    assert draft(context, 10) == [7, 8, 0, 1, 2, 3]  # never past the context's end
    assert draft([*context, 4], 3) == [5, 9, 1]  # "2 3 4" occurs once, early
    assert draft(context, 2, n=2) == [7, 8]


def test_a_shorter_match_is_no_match() -> None:
    context = [5, 6, 7, 40, 41, 9, 6, 7]
    assert draft(context, 2) == []  # "9 6 7" occurs nowhere earlier; "6 7" alone is not enough


def test_nothing_is_guessed_without_an_earlier_occurrence_or_room() -> None:
    assert draft([1, 2, 3, 4], 4) == []
    assert draft([1, 2, 1, 2], 0) == []
    assert draft([], 3) == []
    assert draft([7], 3) == []


def test_only_the_recent_window_is_searched() -> None:
    context = [1, 2, 3, 99] + [0] * WINDOW + [1, 2, 3]
    assert draft(context, 1) == []
