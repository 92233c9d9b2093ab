"""`claimflow produce`: contract events from a JSON-lines file onto their Kafka topics.

For backfills, demos and tests. Each line goes, byte for byte, to the input topic of its
event type with the contract's message key (claim id, or client id for surveys). Lines that
are not a JSON object with a known `type` cannot be routed: they are reported with their
line numbers and counted, not sent. The worker validates everything else itself.

A line counts as sent only once the broker has acknowledged it. kafka-python's `send` only
queues a record, and one that waits in its buffer longer than `delivery_timeout_ms` (2 min)
is dropped with an error on a future nobody read. A 90-day backlog (454,911 lines) queued
as fast as it was read waited that long on the embedded broker: 24,887 records expired while
the summary said every line was sent, and the live benchmark's worker waited for records
that were never written (issue 15). Now at most `IN_FLIGHT` records are unacknowledged at
once, every outcome is counted, and records the broker did not take are reported line by
line and make `claimflow produce` exit non-zero.
"""

from __future__ import annotations

import json
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from claimflow.streams.topics import KEY_FIELDS, Topics

IN_FLIGHT = 2000  # records sent and not yet acknowledged, at most
ACK_TIMEOUT = 180.0  # seconds to wait for the broker's answer to one record


@dataclass
class ProduceSummary:
    sent: Counter[str] = field(default_factory=Counter)  # acknowledged by the broker, per topic
    skipped: list[tuple[int, str]] = field(default_factory=list)
    failed: list[tuple[int, str]] = field(default_factory=list)  # line, the broker's refusal
    seconds: float = 0.0

    def render(self) -> str:
        total = sum(self.sent.values())
        rate = total / self.seconds if self.seconds else 0.0
        lines = [f"sent {total:,} events in {self.seconds:.1f}s ({rate:,.0f}/s)"]
        lines += [f"  {topic}: {n:,}" for topic, n in sorted(self.sent.items())]
        if self.skipped:
            lines.append(f"skipped {len(self.skipped):,} lines that cannot be routed")
        if self.failed:
            lines.append(
                f"NOT SENT: {len(self.failed):,} lines the broker did not accept "
                f"(first: line {self.failed[0][0]}: {self.failed[0][1]})"
            )
        return "\n".join(lines)


def route(line: bytes, topics: Topics) -> tuple[str, bytes | None] | str:
    """(topic, key) for a line, or why it cannot be routed."""
    try:
        data: Any = json.loads(line)
    except ValueError:
        return "not JSON"
    if not isinstance(data, dict):
        return "not a JSON object"
    kind = data.get("type")
    if kind not in KEY_FIELDS:
        return f"unknown event type {kind!r}"
    key = data.get(KEY_FIELDS[kind])
    return topics.for_event(kind), str(key).encode() if key is not None else None


def make_producer(bootstrap: str, max_batch_bytes: int = 0, **settings: Any) -> Any:
    from kafka import KafkaProducer  # noqa: PLC0415

    # batch_size=0 sends one record per request: slower, but every broker reports exact
    # offsets for it (Tansu's are wrong for multi-record batches). Not idempotent, which
    # kafka-python 3 turns on by default and the embedded broker does not support; one
    # request in flight per connection, so a retried record cannot overtake the next one.
    options: dict[str, Any] = {
        "batch_size": max_batch_bytes,
        "linger_ms": 0 if max_batch_bytes == 0 else 5,
        "acks": "all",
        "retries": 5,
        "max_in_flight_requests_per_connection": 1,
    }
    if "enable_idempotence" in KafkaProducer.DEFAULT_CONFIG:
        options["enable_idempotence"] = False
    return KafkaProducer(bootstrap_servers=bootstrap, **{**options, **settings})


def ensure_topics(
    bootstrap: str, names: Iterable[str], partitions: int, timeout: float = 10.0
) -> list[str]:
    """Create the topics that do not exist yet; returns the ones created. Fails after
    `timeout` seconds when no broker answers (kafka-python would wait 30)."""
    from kafka import KafkaAdminClient  # noqa: PLC0415
    from kafka.admin import NewTopic  # noqa: PLC0415

    admin = KafkaAdminClient(bootstrap_servers=bootstrap, bootstrap_timeout_ms=int(timeout * 1000))
    try:
        existing = set(admin.list_topics())
        missing = [n for n in names if n not in existing]
        if missing:
            admin.create_topics([NewTopic(n, partitions, 1) for n in missing])
        return missing
    finally:
        admin.close()


def produce(
    lines: Iterable[bytes],
    producer: Any,
    topics: Topics,
    rate: float | None = None,
    on_skip: Callable[[int, str], None] | None = None,
    on_progress: Callable[[ProduceSummary], None] | None = None,
    on_fail: Callable[[int, str], None] | None = None,
) -> ProduceSummary:
    """Send every routable line; `summary.sent` counts what the broker acknowledged and
    `summary.failed` what it refused (reported through `on_fail` as it happens)."""
    summary = ProduceSummary()
    started = time.perf_counter()
    waiting: deque[tuple[int, str, Any]] = deque()  # (line, topic, future), oldest first
    queued = 0

    def failed(number: int, topic: str, exc: Exception) -> None:
        summary.failed.append((number, f"{topic}: {exc!r}"))
        if on_fail:
            on_fail(number, f"{topic}: {exc!r}")

    def settle(number: int, topic: str, future: Any) -> None:
        try:
            future.get(timeout=ACK_TIMEOUT)
        except Exception as exc:  # kafka-python raises many kinds: report which
            failed(number, topic, exc)
        else:
            summary.sent[topic] += 1

    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        target = route(line, topics)
        if isinstance(target, str):
            summary.skipped.append((number, target))
            if on_skip:
                on_skip(number, target)
            continue
        topic, key = target
        try:
            future = producer.send(topic, key=key, value=line.rstrip(b"\r\n"))
        except Exception as exc:  # refused before it was queued (too large, no metadata)
            failed(number, topic, exc)
            continue
        waiting.append((number, topic, future))
        queued += 1
        while len(waiting) > IN_FLIGHT or (waiting and waiting[0][2].is_done):
            settle(*waiting.popleft())
        if rate:
            ahead = queued / rate - (time.perf_counter() - started)
            if ahead > 0:
                time.sleep(ahead)
        if on_progress and queued % 5000 == 0:
            summary.seconds = time.perf_counter() - started
            on_progress(summary)
    producer.flush()
    while waiting:
        settle(*waiting.popleft())
    summary.seconds = time.perf_counter() - started
    return summary
