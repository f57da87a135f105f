"""`voicegraph bench load`, small: two replicas on loopback sharing a real Redis, sessions moving
between them, then every session read back; and the verdict on sessions that hold too
little or too much."""

from __future__ import annotations

from api.load_bench import LoadReport, _Session, _verdict, run_load_bench


def test_sessions_moving_between_two_replicas_hold_exactly_their_turns() -> None:
    report = run_load_bench(sessions=4, turns=2, replicas=2)
    assert report.consistent, report.render()
    assert report.answered == 8 and not report.errors
    assert len(report.per_replica) == 2 and all(n == 4 for n in report.per_replica.values())
    assert "verdict: consistent" in report.render()
    assert set(report.replica_cpu_ms) == set(report.per_replica) and all(
        0 < ms < 10_000 for ms in report.replica_cpu_ms.values()
    )
    assert "ms per answered turn" in report.render()


def test_a_replica_killed_mid_run_leaves_the_other_carrying_on() -> None:
    report = run_load_bench(sessions=4, turns=3, replicas=2, kill=True)
    assert report.consistent, report.render()
    assert report.killed is not None and report.killed_after >= 4
    survivor = next(url for url in report.per_replica if url != report.killed)
    answered_after = report.answered - report.killed_after
    assert report.per_replica[survivor] >= answered_after > 0
    assert report.answered + sum(report.errors.values()) == 12
    assert sum(report.errors.values()) <= report.in_flight_at_kill  # only turns the killed replica had
    assert list(report.replica_cpu_ms) == [survivor]  # the killed one's CPU time went with it


def test_the_verdict_counts_lost_duplicated_and_unexpected_entries() -> None:
    report = LoadReport(replicas=1, sessions=3, turns=2)
    good = _Session("a", [("a1", True), ("a2", False)])
    _verdict(report, good, ["a1"])
    _verdict(report, _Session("b", [("b1", True), ("b2", True)]), ["b1", "b1"])
    _verdict(report, _Session("c", [("c1", True), ("c2", True)]), ["c2", "x"])
    assert (report.lost, report.duplicated, report.unexpected) == (2, 1, 1)
    assert report.consistent_sessions == 1 and report.failed_dropped == 1 and not report.consistent
