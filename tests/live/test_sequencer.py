"""The merge across partitions, idempotent redelivery, output numbering and snapshots:
the live worker's logic without Kafka (claimflow/live/envelopes.py, merge.py,
live_engine.py, snapshots.py)."""

from __future__ import annotations

import hashlib
import json
import math
import random
import zlib
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from claimflow.config import Config
from claimflow.contract.deadletter import (
    MAX_ORIGINAL,
    Digest,
    dead_letter,
    dead_letter_json,
    original_bytes,
)
from claimflow.contract.events import decode
from claimflow.contract.rejections import Reason, Rejection
from claimflow.engine import Engine
from claimflow.live import snapshots
from claimflow.live.envelopes import (
    BUNDLE_BYTES,
    BUNDLE_RECORDS,
    Bundle,
    EnvelopeError,
    Forwarded,
    Progress,
    bundles,
    decode_envelope,
)
from claimflow.live.live_engine import LiveEngine, LiveSettings, OutputGate
from claimflow.live.merge import Merge
from claimflow.streams.topics import KEY_FIELDS, Topics
from claimflow.timeutil import iso
from claimflow.tools.simulate import Simulator

TOPICS = Topics()
INPUTS = TOPICS.inputs()


def _rec(topic: str, partition: int, offset: int, time: float, wall: float) -> Forwarded:
    return Forwarded(topic, partition, offset, wall, b"{}", time=time)


def test_envelopes_round_trip_through_bytes_and_headers() -> None:
    record = Forwarded("t", 2, 7, 12.5, b"\x00raw", time=99.25)
    refused = Forwarded("t", 0, 1, 3.0, b"{", reason="malformed_json", detail="bad")
    progress = Progress(4.0, {"t": 4}, (("t", 0, 10, True), ("t", 1, 3, False)))
    timed = Progress(4.0, {"t": 4}, (("t", 0, 10, True), ("t", 1, 3, False)), (3.9, 3.5))
    for envelope in (record, refused, progress, timed):
        assert decode_envelope(*envelope.encode()) == envelope
    with pytest.raises(EnvelopeError):
        decode_envelope(b"x", [])


def test_bundles_round_trip_and_are_cut_by_count_and_bytes() -> None:
    records = [Forwarded("t", i % 3, i, 10.0 + i, b"x" * 1000, time=99.0 + i) for i in range(2500)]
    records.append(Forwarded("t", 0, 2500, 3.0, b"{", reason="malformed_json", detail="bad"))
    digest = Digest.of(b"y" * 700_000)
    large = Forwarded(
        "t", 1, 2501, 4.0, b"y" * MAX_ORIGINAL, reason="too_large", detail="big",
        size=digest.size, sha256=digest.sha256,
    )  # fmt: skip
    records.append(large)
    cut = bundles(records)
    assert [r for b in cut for r in b.records] == records  # all, in order
    assert all(sum(len(r.raw) for r in b.records) <= BUNDLE_BYTES for b in cut)
    assert all(len(b.records) <= BUNDLE_RECORDS for b in cut)
    for bundle in cut:
        value, headers = bundle.encode()
        assert len(value) < 1024 * 1024
        assert decode_envelope(value, headers) == bundle
    assert cut[0].wall == max(r.wall for r in cut[0].records)
    (alone,) = bundles([Forwarded("t", 0, 0, 1.0, b"z" * (BUNDLE_BYTES + 1), time=1.0)])
    assert len(alone.records) == 1  # a record larger than a bundle still travels, alone
    for bad in (b"", b"\x90", b"not msgpack", b"\x91\x93\xa1t\x00\x00"):
        with pytest.raises(EnvelopeError):
            decode_envelope(bad, [("cf-kind", b"bundle")])


def test_a_bundle_is_applied_once_at_its_offset(config: Config) -> None:
    live = LiveEngine(config, INPUTS, LiveSettings(idle_clock_after=0))
    topic = next(iter(INPUTS))
    bundle = Bundle(
        tuple(Forwarded(topic, 0, i, 1.0, b"{", reason="malformed_json") for i in range(2))
    )
    letters = live.take(0, bundle)
    assert [o.kind for o in letters] == ["deadletter", "deadletter"]
    assert live.next_offset == 1
    assert live.take(0, bundle) == []  # read again after a restart: nothing twice
    assert live.merge.sources[(topic, 0)].next_offset == 2


def test_a_too_large_record_travels_as_an_excerpt_and_its_dead_letter_says_so(
    config: Config,
) -> None:
    original = b"{" + b"z" * 700_000
    digest = Digest.of(original)
    refused = Forwarded(
        "claims.arrived",
        0,
        0,
        1.0,
        original[:MAX_ORIGINAL],
        reason="too_large",
        detail="over the limit",
        size=digest.size,
        sha256=digest.sha256,
    )
    assert decode_envelope(*refused.encode()) == refused
    live = LiveEngine(config, INPUTS, LiveSettings(idle_clock_after=0))
    (letter,) = [o for o in live.take(0, refused) if o.kind == "deadletter"]
    record = json.loads(letter.value)
    assert len(letter.value) < 1024 * 1024
    assert record["reason"] == "too_large"
    assert record["original_truncated"] is True
    assert record["original_size"] == len(original)
    assert record["original_sha256"] == hashlib.sha256(original).hexdigest()
    assert original.startswith(original_bytes(record))
    assert live.engine.rejected == {"too_large": 1}


def test_a_dead_letter_of_a_large_original_is_bounded_and_small_ones_are_whole() -> None:
    rejection = Rejection(Reason.MALFORMED_JSON, "bad")
    control = b"\x01" * 600_000  # JSON escapes each as six bytes: unbounded, 3.6 MB of text
    record = dead_letter(control, rejection, "t", 0, 1)
    assert len(dead_letter_json(record)) < 1024 * 1024
    assert record["original_sha256"] == hashlib.sha256(control).hexdigest()
    small = dead_letter(b"{", rejection, "t", 0, 1)
    assert "original_truncated" not in small and original_bytes(small) == b"{"


def test_merge_holds_a_record_until_every_partition_has_passed_it() -> None:
    merge = Merge(idle_after=2.0, max_hold=30.0)
    merge.expect({"a": 2})
    assert merge.offer(_rec("a", 0, 0, time=100.0, wall=1.0))
    assert merge.release() == []  # partition 1 never heard of: it may hold anything
    assert merge.offer(_rec("a", 1, 0, time=50.0, wall=1.1))
    assert [r.time for r in merge.release()] == [50.0]  # partition 0 is past 50
    assert merge.offer(_rec("a", 1, 1, time=150.0, wall=1.2))
    assert [r.time for r in merge.release()] == [100.0]
    # Partition 0 caught up, but reported so too soon after the record was read: hold on.
    merge.report(Progress(2.0, {"a": 2}, (("a", 0, 1, True), ("a", 1, 2, False))))
    assert merge.release() == []
    merge.report(Progress(3.3, {"a": 2}, (("a", 0, 1, True), ("a", 1, 2, False))))
    assert [r.time for r in merge.release()] == [150.0]


def test_a_partition_added_after_all_were_heard_of_holds_back_until_heard_of() -> None:
    """Whether every partition was heard of is remembered between records (not checked for
    each one), but a new partition count asks again."""
    merge = Merge(idle_after=2.0, max_hold=30.0)
    merge.expect({"a": 1})
    assert merge.offer(_rec("a", 0, 0, time=10.0, wall=1.0))
    assert [r.time for r in merge.release()] == [10.0]
    merge.report(Progress(1.5, {"a": 2}, (("a", 0, 1, False),)))  # a/1 is new
    assert merge.offer(_rec("a", 0, 1, time=20.0, wall=2.0))
    assert merge.release() == []  # a/1 never heard of: it may hold anything
    assert merge.offer(_rec("a", 1, 0, time=25.0, wall=2.1))
    assert [r.time for r in merge.release()] == [20.0]


def test_a_caught_up_partition_vouches_as_of_its_fetch_not_as_of_the_report() -> None:
    """A report written long after the record was read still cannot vouch for a partition
    whose end came from a fetch sent before the record was read (a starved consumer thread
    processed the response late): the end may miss records written in between."""
    merge = Merge(idle_after=0.25, max_hold=30.0)
    merge.expect({"a": 2})
    assert merge.offer(_rec("a", 1, 0, time=40.0, wall=0.5))
    assert merge.offer(_rec("a", 0, 0, time=100.0, wall=1.0))
    assert [r.time for r in merge.release()] == [40.0]
    sources = (("a", 0, 1, True), ("a", 1, 1, True))
    merge.report(Progress(5.0, {"a": 2}, sources, (5.0, 1.1)))  # partition 1: fetched at 1.1
    assert merge.release() == []
    merge.report(Progress(5.25, {"a": 2}, sources, (5.25, 1.3)))  # 1.0 + idle_after
    assert [r.time for r in merge.release()] == [100.0]
    # An as_of after the report's own time is taken as the report's time.
    assert Progress(2.0, {"a": 1}, (("a", 0, 1, True),), (9.0,)).vouched() == [2.0]
    # A report without as_of (an older worker) vouches as of its own time.
    assert Progress(2.0, {"a": 1}, (("a", 0, 1, True),)).vouched() == [2.0]


def test_merge_skips_records_forwarded_twice() -> None:
    merge = Merge(2.0, 30.0)
    merge.expect({"a": 1})
    assert merge.offer(_rec("a", 0, 0, 1.0, 1.0))
    assert merge.offer(_rec("a", 0, 1, 2.0, 1.0))
    assert not merge.offer(_rec("a", 0, 1, 2.0, 5.0))  # ingest restarted and sent it again
    assert not merge.offer(_rec("a", 0, 0, 1.0, 5.0))
    assert merge.repeats == 2
    assert [r.offset for r in merge.release()] == [0, 1]


def test_a_partition_not_heard_of_stops_holding_back_after_max_hold() -> None:
    merge = Merge(2.0, max_hold=30.0)
    merge.expect({"a": 2})
    merge.offer(_rec("a", 0, 0, 10.0, wall=0.0))
    merge.report(Progress(29.0, {"a": 2}, (("a", 0, 1, True),)))
    assert merge.release() == []
    merge.report(Progress(31.0, {"a": 2}, (("a", 0, 1, True),)))
    assert [r.time for r in merge.release()] == [10.0]


def _partitioned(lines: list[bytes], partitions: int) -> dict[tuple[str, int], list[bytes]]:
    parts: dict[tuple[str, int], list[bytes]] = {
        (topic, p): [] for topic in INPUTS for p in range(partitions)
    }
    for line in lines:
        event = json.loads(line)
        topic = TOPICS.for_event(event["type"])
        key = event[KEY_FIELDS[event["type"]]]
        parts[(topic, zlib.crc32(key.encode()) % partitions)].append(line)
    return parts


@pytest.mark.slow
@pytest.mark.parametrize("bundled", [False, True], ids=["one-by-one", "bundled"])
def test_live_engine_gives_replay_alerts_whatever_the_interleaving_of_partitions(
    config: Config, scenario: Any, bundled: bool
) -> None:
    """Partitions are forwarded in bursts of up to 3,000 records, hours of event time apart:
    the merge must hand the engine the same history replay sees, with nothing late. Forwarded
    in bundles (what ingest sends since issue 15, through their bytes), the same."""
    run = scenario("hub-break", 10, 1)
    lines = Path(run.events).read_bytes().splitlines()
    parts = _partitioned(lines, 4)
    rng = random.Random(7)
    live = LiveEngine(config, INPUTS, LiveSettings(idle_clock_after=0))
    live.merge.expect(dict.fromkeys(INPUTS, 4))
    position = dict.fromkeys(parts, 0)
    wall, offset, outputs = 1000.0, 0, []
    while any(position[k] < len(v) for k, v in parts.items()):
        source = rng.choice([k for k in parts if position[k] < len(parts[k])])
        burst = []
        for i in range(
            position[source], min(position[source] + rng.randint(1, 3000), len(parts[source]))
        ):
            event = decode(parts[source][i], INPUTS[source[0]])
            assert not isinstance(event, Rejection)
            burst.append(Forwarded(*source, i, wall, parts[source][i], time=event.time.timestamp()))
            position[source] = i + 1
        for envelope in bundles(burst) if bundled else burst:
            outputs += live.take(offset, decode_envelope(*envelope.encode()))
            offset += 1
        wall += 0.01
    for _ in range(2):  # every partition reports caught up, twice idle_after apart
        wall += 5
        done = tuple((t, p, position[(t, p)], True) for t, p in parts)
        outputs += live.take(offset, Progress(wall, dict.fromkeys(INPUTS, 4), done))
        offset += 1
    assert not [o for o in outputs if o.kind == "deadletter"]  # nothing late
    alerts = [json.loads(o.value) for o in outputs if o.kind == "alert"]
    expected = [a.to_dict() for a in run.alerts if a.at <= live.engine.watermark]
    assert alerts == expected and alerts
    assert [o.seq for o in outputs] == list(range(1, len(outputs) + 1))
    # The same sequenced records again (a restart reading them back) change nothing.
    assert live.take(0, Progress(wall, {}, ())) == []


def test_output_gate_suppresses_only_numbers_that_landed_in_their_partition() -> None:
    gate = OutputGate({("alert", 0): 5, ("alert", 1): 3})
    assert not gate.should_send("alert", 0, 5)
    assert gate.should_send("alert", 0, 6)
    assert gate.should_send("alert", 1, 4)  # lost in flight to partition 1: sent again
    assert gate.should_send("deadletter", 0, 1)


def test_snapshots_round_trip_in_chunks_and_alternate_slots() -> None:
    store: dict[str, bytes] = {}
    assert snapshots.load(store) is None
    rng = random.Random(1)
    state = {"claims": [rng.random() for _ in range(50_000)]}
    first = snapshots.save(store, state, "offset 10", chunk_bytes=64 * 1024)
    assert first.chunks > 1 and first.slot == 0
    second = snapshots.save(store, {"small": True}, "offset 20", chunk_bytes=64 * 1024)
    assert second.slot == 1
    loaded, info = snapshots.load(store)  # type: ignore[misc]
    assert loaded == {"small": True} and info.label == "offset 20"
    third = snapshots.save(store, {"again": 1}, "offset 30", chunk_bytes=64 * 1024)
    assert third.slot == 0 and not [k for k in store if k.startswith("0/") and k != "0/0"]


def test_a_snapshot_interrupted_midway_leaves_the_previous_one_readable() -> None:
    store: dict[str, bytes] = {}
    snapshots.save(store, {"v": 1}, "first")

    class Crash(dict[str, bytes]):
        def __setitem__(self, key: str, value: bytes) -> None:
            if key == snapshots.MANIFEST:
                raise RuntimeError("killed")
            super().__setitem__(key, value)

    crashing = Crash(store)
    with pytest.raises(RuntimeError):
        snapshots.save(crashing, {"v": 2}, "second")
    assert snapshots.load(crashing)[0] == {"v": 1}  # type: ignore[index]
    dict.__setitem__(crashing, snapshots.MANIFEST, b'{"format": 99}')
    with pytest.raises(snapshots.SnapshotError, match="format 99"):
        snapshots.load(crashing)


def test_a_report_ahead_of_the_records_taken_does_not_skip_them() -> None:
    """An ingest agent that has just taken a partition over reports its fetch position, which
    may be ahead of what it has forwarded: the records still to come must count."""
    merge = Merge(2.0, 30.0)
    merge.expect({"a": 1})
    merge.report(Progress(1.0, {"a": 1}, (("a", 0, 50, False),)))
    assert merge.offer(_rec("a", 0, 0, 5.0, 1.1))
    assert merge.repeats == 0
    merge.report(Progress(4.0, {"a": 1}, (("a", 0, 50, True),)))  # cannot vouch: 1..49 due
    assert merge.sources[("a", 0)].caught_up_wall == float("-inf")


@pytest.mark.slow
def test_live_engine_notices_a_silent_feed_from_progress_reports_alone(config: Config) -> None:
    """The feed stops; only the ingest agents' progress reports keep coming, once a second
    of wall time. Their wall stamps move event time on, and both routes go silent."""
    live = LiveEngine(config, INPUTS, LiveSettings(idle_clock_after=60))
    live.merge.expect(dict.fromkeys(INPUTS, 1))
    offsets = dict.fromkeys(INPUTS, 0)
    seq = 0
    last = 0.0
    for _, raw in Simulator(config, "normal", 10, date(2026, 11, 2), seed=6).events():
        event = decode(json.dumps(raw))
        assert not isinstance(event, Rejection)
        t = event.time.timestamp()
        if event.time.isoformat() > "2026-11-11T10:00":
            break
        topic = TOPICS.for_event(raw["type"])
        # Wall time follows event time, as it does live (ingest reads events as they happen).
        live.take(seq, Forwarded(topic, 0, offsets[topic], t + 1, json.dumps(raw).encode(), t))
        offsets[topic] += 1
        seq += 1
        last = t
    fired = []
    for second in range(0, 2 * 3600, 60):  # two hours of progress reports, nothing else
        done = tuple((topic, 0, offsets[topic], True) for topic in INPUTS)
        outputs = live.take(seq, Progress(last + 1 + second, dict.fromkeys(INPUTS, 1), done))
        seq += 1
        fired += [json.loads(o.value) for o in outputs if o.kind == "alert"]
    breaks = {
        (a["labels"]["hub_id"], a["labels"]["center_id"])
        for a in fired
        if a["alert"] == "HubLinkBreak" and a["state"] == "firing"
    }
    assert breaks == {("hub-1", "center-1"), ("hub-2", "center-1")}


def _link_break_stream() -> list[tuple[str, float, bytes]]:
    """hub-1 -> center-1 dispatches a claim a minute; each arrives 60 s later, until minute
    150: from then on nothing arrives (a total break) while dispatches go on to minute 152.
    (topic, event time, JSON) in event-time order."""
    t0 = 1_795_510_800.0  # Tuesday 2026-11-24 09:00 UTC
    out: list[tuple[str, float, bytes]] = []
    for i in range(153):
        at = t0 + 60 * i
        common = {"claim_id": f"c{i}", "client_id": "northwind-mutual", "hub_id": "hub-1"}
        received = at - 30
        out.append(
            (
                TOPICS.hub_dispatched,
                at,
                json.dumps(
                    {
                        "type": "hub_dispatched",
                        "event_id": f"d{i}",
                        **common,
                        "center_id": "center-1",
                        "hub_received_at": _iso(received),
                        "dispatched_at": _iso(at),
                    }
                ).encode(),
            )
        )
        if i < 150:
            out.append(
                (
                    TOPICS.claim_arrived,
                    at + 60,
                    json.dumps(
                        {
                            "type": "claim_arrived",
                            "event_id": f"a{i}",
                            **common,
                            "team": "motor",
                            "claim_type": "motor",
                            "hub_received_at": _iso(received),
                            "arrived_at": _iso(at + 60),
                        }
                    ).encode(),
                )
            )
    return sorted(out, key=lambda e: e[1])


def _iso(t: float) -> str:
    return iso(t)


def _live_feed(
    config: Config, vouch: bool, reports: int
) -> tuple[list[tuple[float, dict[str, Any]]], float]:
    """The stream read one second after each event happens, with a progress report after
    each event (every partition caught up when `vouch`, else one is not), then `reports`
    more reports a second apart and no events. Returns (report wall, alert) for each
    HubLinkBreak that came out, and the wall time of the last event read."""
    live = LiveEngine(config, INPUTS, LiveSettings(idle_clock_after=60))
    live.merge.expect(dict.fromkeys(INPUTS, 1))
    offsets = dict.fromkeys(INPUTS, 0)
    seq = 0
    fired: list[tuple[float, dict[str, Any]]] = []

    def report(wall: float) -> list[Any]:
        nonlocal seq
        sources = tuple(
            (topic, 0, offsets[topic], vouch or topic != TOPICS.survey_response) for topic in INPUTS
        )
        seq += 1
        return live.take(seq - 1, Progress(wall, dict.fromkeys(INPUTS, 1), sources))

    def note(wall: float, outputs: list[Any]) -> None:
        for output in outputs:
            alert = json.loads(output.value)
            if output.kind == "alert" and alert["alert"] == "HubLinkBreak":
                fired.append((wall, alert))

    wall = 0.0
    for topic, t, raw in _link_break_stream():
        wall = t + 1
        note(wall, live.take(seq, Forwarded(topic, 0, offsets[topic], wall, raw, t)))
        seq += 1
        offsets[topic] += 1
        note(wall, report(wall))
    last = wall
    for k in range(1, reports + 1):
        note(last + k, report(last + k))
    return fired, last


def test_caught_up_the_live_engine_judges_a_break_between_events_by_the_wall_clock(
    config: Config,
) -> None:
    """After the last event, only progress reports come. With every partition caught up,
    event time runs on with their wall stamps at the lag events were read with (1 s), so the
    break is raised at the first report that puts event time `allowed_lateness` past the
    tick that judges it, at the same event time as an engine that had seen later events."""
    reference = Engine(config)
    for _, _, raw in _link_break_stream():
        event = decode(raw)
        assert not isinstance(event, Rejection)
        assert reference.ingest(event) is None
    reference.advance_to(reference.newest + 3600)
    (expected,) = [
        a for a in reference.drain_alerts() if a.alert == "HubLinkBreak" and a.state == "firing"
    ]

    fired, last = _live_feed(config, vouch=True, reports=600)
    (wall, alert), *_ = fired
    assert alert["state"] == "firing" and alert["at"] == _iso(expected.at)
    lateness = config.engine.allowed_lateness
    assert wall == max(last, math.ceil(expected.at + 1 + lateness))  # lag 1 s + lateness

    # A partition not reported caught up: only the idle clock (60 s without events, then
    # event time at the wall clock minus lateness + 5 min) moves event time on, much later.
    held, last = _live_feed(config, vouch=False, reports=600)
    assert held and held[0][1]["at"] == _iso(expected.at)
    assert held[0][0] >= expected.at + lateness + 300


def test_the_merge_is_caught_up_only_while_every_partition_was_vouched_for_recently() -> None:
    merge = Merge(idle_after=2.0, max_hold=30.0)
    merge.expect({"a": 2})
    assert merge.offer(_rec("a", 0, 0, 5.0, 1.0))
    assert not merge.caught_up()  # a/1 never heard of, a/0 not reported on
    merge.report(Progress(1.5, {"a": 2}, (("a", 0, 1, True), ("a", 1, 0, True))))
    assert not merge.release()
    assert not merge.caught_up()  # the record is still held (until wall 1.0 + idle_after)
    merge.report(Progress(3.0, {"a": 2}, (("a", 0, 1, True), ("a", 1, 0, True))))
    assert len(merge.release()) == 1
    assert merge.caught_up()
    assert merge.offer(_rec("a", 1, 0, 6.0, 3.2))
    assert not merge.caught_up()  # a/1 has a record no report has vouched for yet
    merge.report(Progress(5.5, {"a": 2}, (("a", 0, 1, True), ("a", 1, 1, True))))
    assert len(merge.release()) == 1
    assert merge.caught_up()
    # The worker owning a/1 goes quiet: its last word grows stale, a/0's stays fresh.
    merge.report(Progress(8.0, {"a": 2}, (("a", 0, 1, True),)))
    assert not merge.caught_up()
