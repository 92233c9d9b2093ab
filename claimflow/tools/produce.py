"""`claimflow produce`: contract events from a JSON-lines file onto their Kafka topics.

For backfills, demos and tests. Each line goes, byte for byte, to the input topic of its
event type with the contract's message key (claim id, or client id for surveys). Lines that
are not a JSON object with a known `type` cannot be routed: they are reported with their
line numbers and counted, not sent. The worker validates everything else itself.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from claimflow.streams.topics import KEY_FIELDS, Topics


@dataclass
class ProduceSummary:
    sent: Counter[str] = field(default_factory=Counter)
    skipped: list[tuple[int, str]] = field(default_factory=list)
    seconds: float = 0.0

    def render(self) -> str:
        total = sum(self.sent.values())
        rate = total / self.seconds if self.seconds else 0.0
        lines = [f"sent {total:,} events in {self.seconds:.1f}s ({rate:,.0f}/s)"]
        lines += [f"  {topic}: {n:,}" for topic, n in sorted(self.sent.items())]
        if self.skipped:
            lines.append(f"skipped {len(self.skipped):,} lines that cannot be routed")
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
    # offsets for it (Tansu's are wrong for multi-record batches).
    return KafkaProducer(
        bootstrap_servers=bootstrap,
        batch_size=max_batch_bytes,
        linger_ms=0 if max_batch_bytes == 0 else 5,
        acks="all",
        **settings,
    )


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
) -> ProduceSummary:
    summary = ProduceSummary()
    started = time.perf_counter()
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
        producer.send(topic, key=key, value=line.rstrip(b"\r\n"))
        summary.sent[topic] += 1
        sent = sum(summary.sent.values())
        if rate:
            ahead = sent / rate - (time.perf_counter() - started)
            if ahead > 0:
                time.sleep(ahead)
        if on_progress and sent % 5000 == 0:
            summary.seconds = time.perf_counter() - started
            on_progress(summary)
    producer.flush()
    summary.seconds = time.perf_counter() - started
    return summary
