"""Creating claimflow's topics before the worker starts, with the partition counts it needs.

Done up front (not left to Faust) because any send to a missing topic makes the broker create
it with its default partition count, and the sequenced topic must have exactly one partition.
"""

from __future__ import annotations

from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from claimflow.streams.settings import WorkerSettings

DAY_MS = 86_400_000


class TopicError(RuntimeError):
    """A topic exists with a shape the worker cannot use."""


def topic_specs(settings: WorkerSettings) -> dict[str, tuple[int, dict[str, str]]]:
    """Topic -> (partitions, configuration) for every topic claimflow reads or writes."""
    t = settings.topics
    specs: dict[str, tuple[int, dict[str, str]]] = {
        name: (settings.partitions, {}) for name in t.inputs()
    }
    # The sequenced log rebuilds the detector state when no snapshot can be read: keep it
    # longer than the baselines look back (five weeks).
    specs[t.sequenced] = (1, {"retention.ms": str(35 * DAY_MS)})
    specs[t.alerts] = (1, {})
    specs[t.deadletter] = (1, {"retention.ms": str(30 * DAY_MS)})
    return specs


async def ensure_topics(settings: WorkerSettings, auth: dict[str, Any]) -> list[str]:
    """Create missing topics; refuse a sequenced topic with more than one partition."""
    specs = topic_specs(settings)
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap_servers, **auth)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [name for name in specs if name not in existing]
        if missing:
            await admin.create_topics(
                [
                    NewTopic(
                        name, specs[name][0], settings.replication, topic_configs=specs[name][1]
                    )
                    for name in missing
                ]
            )
        if settings.topics.sequenced not in missing:
            described = await admin.describe_topics([settings.topics.sequenced])
            partitions = len(described[0].get("partitions", [])) if described else 0
            if partitions != 1:
                raise TopicError(
                    f"topic {settings.topics.sequenced} has {partitions} partitions; the "
                    "detector stage needs exactly 1. Delete it (it holds only forwarded "
                    "input) or name another with CLAIMFLOW_TOPIC_SEQUENCED."
                )
        return missing
    finally:
        await admin.close()
