"""The embedded broker and `claimflow produce`, against the real Tansu broker."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition

from claimflow.streams.topics import KEY_FIELDS, Topics
from claimflow.tools.broker import BrokerError, EmbeddedBroker, free_port, port_taken
from tests.live_harness import alive

CLI = [sys.executable, "-m", "claimflow.cli"]


@pytest.mark.live
def test_broker_answers_and_stops_cleanly(tmp_path: Path) -> None:
    broker = EmbeddedBroker(log=tmp_path / "b.log").start()
    pid = broker.pid
    assert pid is not None and alive(pid)
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    assert isinstance(admin.list_topics(), list)
    admin.close()
    broker.stop()
    assert not alive(pid)
    assert not port_taken(broker.port)
    broker.stop()  # stopping twice is harmless


@pytest.mark.live
def test_taken_port_is_a_clear_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        with pytest.raises(BrokerError, match=f"port {port} on 127.0.0.1 is already in use"):
            EmbeddedBroker(port).start()
        done = subprocess.run(
            [*CLI, "broker", "--port", str(port)], capture_output=True, timeout=60, check=False
        )
        assert done.returncode == 2
        assert b"already in use" in done.stderr


@pytest.mark.live
def test_broker_command_runs_until_sigterm_and_stops_its_broker() -> None:
    port = free_port()
    proc = subprocess.Popen([*CLI, "broker", "--port", str(port)], stderr=subprocess.PIPE)
    assert proc.stderr is not None
    line = proc.stderr.readline().decode()
    assert f"127.0.0.1:{port}" in line
    admin = KafkaAdminClient(bootstrap_servers=f"127.0.0.1:{port}")
    admin.close()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0
    deadline = time.monotonic() + 5
    while port_taken(port) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not port_taken(port)  # the broker child is gone too


def _consume_all(bootstrap: str, topic: str) -> list[tuple[bytes | None, bytes]]:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or []]
    ends = consumer.end_offsets(partitions)
    consumer.assign(partitions)
    consumer.seek_to_beginning()
    out: list[tuple[bytes | None, bytes]] = []
    deadline = time.monotonic() + 30
    while len(out) < sum(ends.values()) and time.monotonic() < deadline:
        for records in consumer.poll(500).values():
            out += [(r.key, r.value) for r in records]
    consumer.close()
    return out


@pytest.mark.live
def test_produce_sends_each_event_to_its_topic_with_its_key(
    broker: EmbeddedBroker, tmp_path: Path
) -> None:
    events = tmp_path / "day.jsonl"
    made = subprocess.run(
        [*CLI, "simulate", "--days", "1", "--claims-per-day", "800", "--out", str(events)],
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert made.returncode == 0, made.stderr
    lines = events.read_bytes().splitlines()
    lines.insert(10, b"this is not json")
    events.write_bytes(b"\n".join(lines) + b"\n")

    done = subprocess.run(
        [*CLI, "produce", "--input", str(events), "--bootstrap", broker.bootstrap],
        capture_output=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()
    assert b"line 11: not sent: not JSON" in done.stderr
    assert b"created topic claims.arrived (4 partitions)" in done.stderr

    expected: dict[str, Counter[tuple[bytes, bytes]]] = defaultdict(Counter)
    topics = Topics()
    for line in lines:
        try:
            data = json.loads(line)
        except ValueError:
            continue
        key = str(data[KEY_FIELDS[data["type"]]]).encode()
        expected[topics.for_event(data["type"])][(key, line)] += 1
    assert set(expected) == set(topics.inputs())
    for topic, wanted in expected.items():
        got = Counter(_consume_all(broker.bootstrap, topic))
        assert got == wanted, topic
    # Exact end offsets: the producer sends one record per request (see claimflow/tools/broker.py).
    consumer = KafkaConsumer(bootstrap_servers=broker.bootstrap)
    parts = [TopicPartition("claims.arrived", p) for p in range(4)]
    assert sum(consumer.end_offsets(parts).values()) == sum(expected["claims.arrived"].values())
    consumer.close()


@pytest.mark.live  # the Kafka client waits out its timeouts against the absent broker (10 s)
def test_produce_says_clearly_when_kafka_is_not_there(tmp_path: Path) -> None:
    events = tmp_path / "e.jsonl"
    events.write_text('{"type": "claim_arrived"}\n')
    port = free_port()
    done = subprocess.run(
        [*CLI, "produce", "--input", str(events), "--bootstrap", f"127.0.0.1:{port}"],
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2
    assert f"cannot reach Kafka at 127.0.0.1:{port}".encode() in done.stderr
