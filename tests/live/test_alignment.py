"""Event-time alignment of input partitions (claimflow/live/alignment.py): which partitions a
backlog read pauses and resumes, on hand-made positions."""

from __future__ import annotations

from claimflow.live.alignment import DENSITY_OVER, Alignment

A, B, C = ("claims.arrived", 0), ("claims.arrived", 1), ("surveys", 0)
HOUR = 3600.0


def test_a_partition_ahead_of_the_slowest_is_paused_and_resumed_when_it_is_caught_up() -> None:
    align = Alignment(max_drift=HOUR)
    align.forwarded(A, 10 * HOUR, wall=0.0)
    align.forwarded(B, 12 * HOUR, wall=0.0)
    assert align.decide({A: 100, B: 100}, now=0.0) == ({B}, set())
    # B stays paused until A is within half the drift of it (hysteresis), not just within it.
    align.forwarded(A, 11.2 * HOUR, wall=1.0)
    assert align.decide({A: 90, B: 100}, now=1.0) == (set(), set())
    align.forwarded(A, 11.6 * HOUR, wall=2.0)
    assert align.decide({A: 80, B: 100}, now=2.0) == (set(), {B})
    assert align.paused == set()
    assert align.pauses == 1


def test_the_slowest_partition_is_never_paused_so_the_backlog_always_drains() -> None:
    align = Alignment(max_drift=HOUR)
    for i, source in enumerate((A, B, C)):
        align.forwarded(source, (1 + 5 * i) * HOUR, wall=0.0)
    pause, _ = align.decide({A: 5, B: 5, C: 5}, now=0.0)
    assert pause == {B, C}
    assert A not in align.paused


def test_a_partition_with_nothing_waiting_holds_nobody_back() -> None:
    align = Alignment(max_drift=HOUR)
    align.forwarded(A, 1 * HOUR, wall=0.0)  # caught up: live, what comes next is new
    align.forwarded(B, 9 * HOUR, wall=0.0)
    assert align.decide({A: 0, B: 500}, now=0.0) == (set(), set())


def test_a_partition_not_started_holds_the_others_until_it_starts_or_stalls() -> None:
    align = Alignment(max_drift=HOUR, stall_after=5.0, start_within=10.0)
    align.forwarded(B, 9 * HOUR, wall=0.0)
    assert align.decide({A: 50, B: 500}, now=0.0) == ({B}, set())
    # A never delivers (its "waiting" records never come: a transaction marker, a compacted
    # range): after start_within it holds nobody back. The merge cannot release anything
    # before A starts, so holding B back meanwhile costs no time, only saves memory.
    assert align.decide({A: 50, B: 500}, now=6.0) == (set(), set())
    assert align.decide({A: 50, B: 500}, now=11.0) == (set(), {B})


def test_a_resumed_partition_gets_a_fresh_stall_allowance() -> None:
    align = Alignment(max_drift=HOUR, stall_after=5.0)
    align.forwarded(A, 1 * HOUR, wall=0.0)
    align.forwarded(B, 9 * HOUR, wall=0.0)
    assert align.decide({A: 10, B: 10}, now=0.0) == ({B}, set())
    align.forwarded(A, 8.9 * HOUR, wall=100.0)  # A caught up after a long while
    assert align.decide({A: 10, B: 10}, now=100.0) == (set(), {B})
    # B was paused for 100 s; resumed, it is not taken as stalled.
    align.forwarded(A, 11 * HOUR, wall=101.0)
    assert align.decide({A: 10, B: 10}, now=101.0) == ({A}, set())


def test_a_new_assignment_starts_with_nothing_paused() -> None:
    align = Alignment(max_drift=HOUR)
    align.forwarded(A, 1 * HOUR, wall=0.0)
    align.forwarded(B, 9 * HOUR, wall=0.0)
    align.decide({A: 10, B: 10}, now=0.0)
    align.forget({A})
    assert align.paused == set()
    assert align.newest == {A: 1 * HOUR}


def test_zero_drift_turns_alignment_off() -> None:
    align = Alignment(max_drift=0.0)
    align.forwarded(A, 0.0, wall=0.0)
    align.forwarded(B, 100 * HOUR, wall=0.0)
    assert align.decide({A: 10, B: 10}, now=0.0) == (set(), set())


def _steady(
    align: Alignment, source: tuple[str, int], per_hour: int, until: float, since: float = 0.0
) -> None:
    """`source` forwards `per_hour` records an hour of event time from hour `since` (first
    record included) to hour `until` (last record included)."""
    first = round(per_hour * since) + (1 if since > 0 else 0)
    for k in range(first, round(per_hour * until) + 1):
        align.forwarded(source, k * HOUR / per_hour, wall=0.0)


def test_a_dense_partition_is_held_to_its_share_of_the_records_ahead() -> None:
    # Two partitions with records waiting, 100 records to share: 50 each ahead of the slowest.
    align = Alignment(max_drift=HOUR, hold_records=100)
    _steady(align, A, 10, 10)  # A at 10 h
    _steady(align, B, 10, 14)  # B 4 h ahead at 10 an hour: 40 records, within its 50
    assert align.density(B) == 10 / HOUR
    assert align.decide({A: 50, B: 50}, now=0.0) == (set(), set())
    _steady(align, B, 10, 16, since=14)  # 6 h ahead: 60 records
    assert align.decide({A: 50, B: 50}, now=0.0) == ({B}, set())
    # B 3.5 h ahead: 35 records, over half its share: still held.
    _steady(align, A, 10, 12.5, since=10)
    assert align.decide({A: 50, B: 50}, now=0.0) == (set(), set())
    _steady(align, A, 10, 13.6, since=12.5)  # 2.4 h: 24 records, under 25
    assert align.decide({A: 50, B: 50}, now=0.0) == (set(), {B})


def test_a_sparse_partition_runs_ahead_by_more_than_max_drift() -> None:
    # Surveys trickle: a poll's share of them covers hours of event time, but few records.
    align = Alignment(max_drift=HOUR, hold_records=100)
    _steady(align, A, 100, 2)  # A at 2 h, 100 an hour
    _steady(align, C, 1, 40)  # C at 40 h, 1 an hour: 38 h ahead, 38 records
    assert align.decide({A: 500, C: 5}, now=0.0) == (set(), set())
    # Without a budget in records, the same lead is paused.
    plain = Alignment(max_drift=HOUR)
    _steady(plain, A, 100, 2)
    _steady(plain, C, 1, 40)
    assert plain.decide({A: 500, C: 5}, now=0.0) == ({C}, set())


def test_a_partition_whose_density_is_unknown_keeps_max_drift() -> None:
    align = Alignment(max_drift=HOUR, hold_records=100)
    _steady(align, A, 10, 2)
    align.forwarded(B, 30 * HOUR, wall=0.0)  # one record: no density yet
    assert align.density(B) is None
    assert align.decide({A: 50, B: 50}, now=0.0) == ({B}, set())


def test_a_forgotten_partition_no_longer_counts() -> None:
    align = Alignment(max_drift=HOUR, hold_records=100)
    _steady(align, A, 10, 3)
    align.forget({B})
    assert align.density(A) is None
    assert A not in align.recent


def test_one_back_dated_record_does_not_make_a_dense_partition_sparse_for_good() -> None:
    align = Alignment(max_drift=HOUR, hold_records=100)
    _steady(align, A, 100, 1)
    align.forwarded(A, -1000 * HOUR, wall=0.0)  # a record dated 40 days back
    assert align.density(A) < 1 / HOUR  # for now it looks sparse...
    _steady(align, A, 100, 4, since=1)  # ...until DENSITY_OVER later records have come
    assert abs(align.density(A) - 100 / HOUR) < 1 / HOUR


def test_caps_count_the_records_each_partition_may_still_forward() -> None:
    # What the consumer may hand out per partition (streams/fair_fetch.py): the same limits
    # as the pauses, in records, so that a partition stops within a record of its share.
    align = Alignment(max_drift=HOUR, hold_records=100)
    _steady(align, A, 10, 10)  # the slowest, at 10 h
    _steady(align, B, 10, 14)  # 4 h ahead at 10 an hour: 40 records of its 50
    align.decide({A: 50, B: 50}, now=0.0)
    assert align.caps[B] == 10
    assert align.caps[A] >= DENSITY_OVER  # the slowest always gets some: the backlog drains
    _steady(align, B, 10, 16, since=14)  # 6 h ahead: over its share
    align.decide({A: 50, B: 50}, now=0.0)
    assert align.caps[B] == 0


def test_until_every_partition_has_started_the_started_ones_forward_nothing() -> None:
    align = Alignment(max_drift=HOUR, hold_records=100, start_within=10.0)
    _steady(align, B, 10, 14)
    align.decide({A: 50, B: 50}, now=0.0)
    # A not started: a few records to learn its density; B none until A has some.
    assert align.caps == {A: DENSITY_OVER, B: 0}
    align.forwarded(B, 14 * HOUR, wall=11.0)
    align.decide({A: 50, B: 50}, now=11.0)  # A never came: B goes on alone
    assert align.caps == {}


def test_a_partition_whose_density_is_unknown_may_forward_enough_to_learn_it() -> None:
    align = Alignment(max_drift=HOUR, hold_records=100)
    _steady(align, A, 10, 2)
    align.forwarded(B, 2.5 * HOUR, wall=0.0)  # one record, within max_drift
    align.decide({A: 50, B: 50}, now=0.0)
    assert align.caps[B] == DENSITY_OVER
    align.forwarded(C, 30 * HOUR, wall=0.0)  # one record, far ahead
    align.decide({A: 50, B: 50, C: 50}, now=0.0)
    assert align.caps[C] == 0


def test_the_slowest_may_forward_as_far_as_the_next_slowest_and_its_share() -> None:
    # Covering the gap to the next slowest adds nothing to what the merge holds: it releases.
    align = Alignment(max_drift=HOUR, hold_records=100)
    _steady(align, A, 100, 10)  # the slowest, at 10 h, 100 an hour
    _steady(align, B, 100, 14)  # 4 h ahead
    align.decide({A: 5000, B: 5000}, now=0.0)
    # A: its limit (the larger of its share, 50, and max_drift's 100 records) plus 4 h of its
    # records; B: 400 records ahead, over its limit.
    assert align.caps == {A: 100 + 400, B: 0}
