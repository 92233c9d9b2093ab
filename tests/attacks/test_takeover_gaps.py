"""Item 4: input offsets the sequenced topic skipped (Faust's consumer resuming past them
after a rebalance) are re-read from the input log on the real embedded broker, applied, and
counted; offsets the log no longer holds are counted as lost, never accepted silently."""

from __future__ import annotations

import asyncio
import time
from datetime import date
from pathlib import Path

import pytest

from claimflow.agents.detect import GapFiller
from claimflow.agents.ingest import judge
from claimflow.config import Config
from claimflow.live.envelopes import Forwarded, Progress
from claimflow.live.live_engine import LiveEngine, LiveSettings
from claimflow.streams.log_reader import LogReader
from claimflow.streams.topics import Topics
from claimflow.tools.broker import EmbeddedBroker
from claimflow.tools.produce import make_producer, produce
from claimflow.tools.simulate import Simulator, write_scenario
from tests.live_harness import read_topic, reference

pytestmark = [pytest.mark.attack, pytest.mark.live]
TOPICS = Topics()
INPUTS = TOPICS.inputs()


async def _run(
    live: LiveEngine, gaps: GapFiller, records: list[Forwarded], skip: set[tuple[str, int, int]]
) -> None:
    offset = 0
    for record in records:
        if (record.topic, record.partition, record.offset) in skip:
            continue  # what the consumer skipped: ingest never forwarded it
        if offset >= live.next_offset:
            await gaps.fill(live, record)
        live.take(offset, record)
        offset += 1
    wall = max(r.wall for r in records) + 10
    ends = {(r.topic, r.partition): r.offset + 1 for r in records}
    sources = tuple((t, p, ends.get((t, p), 0), True) for t in INPUTS for p in range(4))
    report = Progress(wall, dict.fromkeys(INPUTS, 4), sources)
    live.take(offset, report)


def test_offsets_skipped_at_take_over_are_re_read_and_a_lost_one_is_counted(
    broker: EmbeddedBroker, tmp_path: Path, config: Config
) -> None:
    events = tmp_path / "events.jsonl"
    write_scenario(Simulator(config, "normal", 2, date(2026, 11, 2), 1, 200), events)
    lines = events.read_bytes().splitlines()
    producer = make_producer(broker.bootstrap)
    produce(lines, producer, TOPICS)
    producer.flush()
    producer.close()

    wall = time.time()
    records = [
        judge(r.topic, r.partition, r.offset, r.value, wall, INPUTS[r.topic], 1 << 18, 600.0)
        for topic in INPUTS
        for r in read_topic(broker.bootstrap, topic)
    ]
    assert len(records) == len(lines)
    # Take-over skips: a run of 8 in one partition, 3 in another, never the first record.
    by_source: dict[tuple[str, int], list[int]] = {}
    for r in records:
        by_source.setdefault((r.topic, r.partition), []).append(r.offset)
    (a, offsets_a), (b, offsets_b) = sorted(by_source.items(), key=lambda kv: -len(kv[1]))[:2]
    skip = {(*a, o) for o in offsets_a[10:18]} | {(*b, o) for o in offsets_b[5:8]}

    live = LiveEngine(config, INPUTS, LiveSettings(idle_clock_after=0))
    live.merge.expect(dict.fromkeys(INPUTS, 4))
    gaps = GapFiller(LogReader([broker.bootstrap], {}), INPUTS, 1 << 18, 600.0)
    asyncio.run(_run(live, gaps, records, skip))

    expected, _ = reference(config, lines)
    assert live.engine.accepted == expected.accepted  # before: 11 events short, silently
    assert (gaps.recovered, gaps.lost) == (11, 0)

    # A record forwarded past the end of what the log holds: the rest cannot be recovered.
    topic, partition = a
    last = max(offsets_a)
    beyond = Forwarded(topic, partition, last + 6, wall, b"{}", reason="malformed_json")
    asyncio.run(gaps.fill(live, beyond))
    assert (gaps.recovered, gaps.lost) == (11, 5)
