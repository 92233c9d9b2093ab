"""`claimflow alerts`: read the alerts topic as an operator would tail a log, outside any
consumer group (reading commits nothing and moves no one's offsets).

Records are JSON objects (claimflow.engine.alerts.Alert.to_dict); they are parsed, never
executed. A record that is not such an object is shown as unreadable, not dropped.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition


async def read_alerts(
    bootstrap: list[str],
    auth: dict[str, Any],
    topic: str,
    since: datetime | None = None,
    follow: bool = False,
    idle_ms: int = 1500,
) -> AsyncIterator[dict[str, Any]]:
    """Alerts whose event time (`at`) is `since` or later (default: all the topic holds);
    with `follow`, keep waiting for new ones, else stop at the end as it was when reading
    started. Event time, not the time a record was written: a replayed day reads the same."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None, **auth
    )
    await consumer.start()
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        if not partitions:
            await consumer._client.force_metadata_update()
            partitions = consumer.partitions_for_topic(topic) or set()
        if not partitions:
            raise LookupError(f"topic {topic!r} does not exist on {','.join(bootstrap)}")
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        ends = await consumer.end_offsets(tps)
        starts = await consumer.beginning_offsets(tps)
        for tp in tps:
            consumer.seek(tp, starts[tp])
        while True:
            batches = await consumer.getmany(*tps, timeout_ms=idle_ms)
            for tp, records in sorted(batches.items(), key=lambda item: item[0].partition):
                for record in records:
                    if not follow and record.offset >= ends[tp]:
                        continue
                    alert = decode(record.value)
                    at = _at(alert)
                    if since is None or at is None or at >= since:  # unreadable ones show
                        yield alert
            if not follow:
                positions = {tp: await consumer.position(tp) for tp in tps}
                if all(positions[tp] >= ends[tp] for tp in tps):
                    return
    finally:
        await consumer.stop()


def _at(alert: dict[str, Any]) -> datetime | None:
    try:
        return datetime.fromisoformat(str(alert.get("at", "")))
    except ValueError:
        return None


def decode(value: bytes | None) -> dict[str, Any]:
    try:
        data = json.loads(value or b"")
    except (ValueError, UnicodeDecodeError):
        data = None
    if not isinstance(data, dict):
        return {"alert": "?", "state": "unreadable", "at": "", "labels": {}, "summary": repr(value)}
    return data


def table_row(alert: dict[str, Any]) -> str:
    labels = alert.get("labels") or {}
    where = " ".join(f"{k}={v}" for k, v in sorted(labels.items()) if v)
    at, name, state = alert.get("at", ""), alert.get("alert", ""), alert.get("state", "")
    return f"{at:<26} {state:<9} {name:<22} {where:<40} {alert.get('summary', '')}"


TABLE_HEADER = f"{'AT':<26} {'STATE':<9} {'ALERT':<22} {'WHERE':<40} SUMMARY"
