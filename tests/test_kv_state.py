"""What a context holds, as tokens and text, and the states kept for later within a budget."""

from __future__ import annotations

from model.kv_state import KVStates, Sequence, common_prefix


def _sequence(*pieces: str) -> Sequence:
    sequence = Sequence()
    sequence.extend(range(len(pieces)), [p.encode() for p in pieces])
    return sequence


def test_common_prefix() -> None:
    assert common_prefix(b"abcdef", b"abcxyz") == 3
    assert common_prefix(b"", b"abc") == 0 and common_prefix(b"abc", b"abc") == 3
    assert common_prefix(b"abc", b"abcd") == 3


def test_only_whole_tokens_of_the_common_text_are_shared() -> None:
    sequence = _sequence("<|im_start|>", "system", "\nHi", " there")
    assert sequence.shared_tokens(b"<|im_start|>system\nHi there, friend") == 4
    assert sequence.shared_tokens(b"<|im_start|>system\nHi yourself") == 3
    assert sequence.shared_tokens(b"<|im_start|>system\nH") == 2  # "\nHi" is not all there
    assert sequence.shared_tokens(b"something else") == 0


def test_truncate_keeps_tokens_and_text_in_step() -> None:
    sequence = _sequence("a", "bc", "def")
    sequence.truncate(2)
    assert sequence.tokens == [0, 1] and sequence.text == b"abc" and sequence.ends == [1, 3]
    sequence.truncate(0)
    assert len(sequence) == 0 and sequence.text == b""


def test_the_state_sharing_the_most_is_found_and_the_oldest_go_first() -> None:
    states = KVStates(budget_bytes=10)
    system = _sequence("SYS", " user A", " more A")
    other = _sequence("SYS", " user B")
    states.put(system, b"aaaa")
    states.put(other, b"bbbb")
    found = states.best(b"SYS user B and then")
    assert found is not None and found[1] == b"bbbb" and found[2] == 2
    found = states.best(b"SYS user A more A and more")
    assert found is not None and found[1] == b"aaaa" and found[2] == 3
    states.put(_sequence("SYS", " user C"), b"cccc")  # over budget: the least recently used (B) goes
    assert states.bytes_used == 8 and len(states) == 2
    found = states.best(b"SYS user B")
    assert found is not None and found[1] != b"bbbb"
    assert states.best(b"nothing in common") is None


def test_a_longer_state_of_the_same_conversation_replaces_the_shorter() -> None:
    states = KVStates(budget_bytes=100)
    states.put(_sequence("SYS", " Q1"), b"12")
    states.put(_sequence("SYS", " Q1", " A1"), b"123")
    assert len(states) == 1 and states.bytes_used == 3
    states.put(_sequence("SYS", " Q1"), b"1" * 200)  # more than the whole budget: not kept
    assert len(states) == 1
