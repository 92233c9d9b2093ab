"""`claimflow replay` and `claimflow simulate` as a user runs them: real processes."""

from __future__ import annotations

import json
import os
import pty
import re
import subprocess
import sys
from pathlib import Path

import pytest

from claimflow.contract.deadletter import original_bytes
from claimflow.contract.events import decode
from claimflow.contract.rejections import Rejection

CLI = [sys.executable, "-m", "claimflow.cli"]


def _run(*args: str | Path, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [*CLI, *map(str, args)], input=stdin, capture_output=True, timeout=300, check=False
    )


@pytest.fixture(scope="module")
def day_of_events(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sim") / "day.jsonl"
    done = _run("simulate", "--scenario", "normal", "--days", "4", "--seed", "5", "--out", out)
    assert done.returncode == 0, done.stderr.decode()
    return out


GOOD_ARRIVAL = {
    "type": "claim_arrived",
    "event_id": "bad-test-1",
    "claim_id": "X-1",
    "client_id": "x",
    "hub_id": "hub-1",
    "team": "motor",
    "claim_type": "motor",
    "hub_received_at": "2026-11-05T10:00:00Z",
    "arrived_at": "2026-11-05T10:01:00Z",
}

BAD_LINES = {
    "malformed_json": b'{"type": "claim_arrived", "event_id": ',
    "not_an_object": b"[1, 2, 3]",
    "unknown_type": json.dumps({**GOOD_ARRIVAL, "type": "claim_teleported"}).encode(),
    "missing_field": json.dumps({k: v for k, v in GOOD_ARRIVAL.items() if k != "team"}).encode(),
    "wrong_type": json.dumps({**GOOD_ARRIVAL, "team": 42}).encode(),
    "naive_timestamp": json.dumps({**GOOD_ARRIVAL, "arrived_at": "2026-11-05T10:01:00"}).encode(),
    "invalid_timestamp": json.dumps({**GOOD_ARRIVAL, "arrived_at": "soon"}).encode(),
    # Dated before the stream's event time where it goes in: days ahead of it, it would be
    # refused as future_timestamp first (see that line below).
    "unknown_team": json.dumps(
        {
            **GOOD_ARRIVAL,
            "event_id": "bad-test-2",
            "team": "gardening",
            "hub_received_at": "2026-11-02T00:00:00Z",
            "arrived_at": "2026-11-02T00:01:00Z",
        }
    ).encode(),
    "late": json.dumps(
        {
            **GOOD_ARRIVAL,
            "event_id": "bad-test-3",
            "arrived_at": "2026-11-02T00:30:00Z",
            "hub_received_at": "2026-11-02T00:20:00Z",
            "claim_id": "X-3",
        }
    ).encode(),
    # Days ahead of the stream where it goes in, and the lines after it do not follow.
    "future_timestamp": json.dumps({**GOOD_ARRIVAL, "event_id": "bad-test-4"}).encode(),
}


@pytest.mark.slow
def test_replay_reports_every_bad_line_with_its_number_and_goes_on(
    day_of_events: Path, tmp_path: Path
) -> None:
    good = day_of_events.read_bytes().splitlines()
    lines = list(good)
    for k, raw in enumerate(BAD_LINES.values()):
        lines.insert(2000 + 500 * k, raw)
    duplicate = b"  " + good[4000]  # a second delivery of an event (bytes differ, id same)
    lines.insert(7000, duplicate)
    lines.insert(7100, b"   ")
    where = {reason: lines.index(raw) + 1 for reason, raw in BAD_LINES.items()}
    where["duplicate"] = lines.index(duplicate) + 1
    mixed = tmp_path / "mixed.jsonl"
    mixed.write_bytes(b"\n".join(lines) + b"\n")

    done = _run("replay", "--input", mixed)
    assert done.returncode == 0
    err = done.stderr.decode()
    for reason, line in where.items():
        assert f"line {line}: {reason}: " in err, (reason, err[-2000:])
    for reason in where:
        assert f"rejected {reason}: 1" in err
    # Every good line counts, plus the late arrival (its claim is still opened).
    assert f"{len(good) + 1:,} events counted" in err
    for line in done.stdout.decode().splitlines():
        json.loads(line)

    # --dead-letters keeps every refused line, byte for byte, with its reason and line.
    dead = tmp_path / "dead.jsonl"
    kept = _run("replay", "--input", mixed, "--quiet", "--dead-letters", dead)
    assert kept.returncode == 0 and kept.stdout == done.stdout
    records = [json.loads(line) for line in dead.read_bytes().splitlines()]
    by_line = {r["source"]["offset"]: r for r in records}
    assert set(by_line) == set(where.values())
    for reason, line in where.items():
        record = by_line[line]
        assert record["reason"] == reason
        assert record["source"]["topic"] == str(mixed.resolve())
        assert original_bytes(record) == lines[line - 1]
    assert by_line[where["late"]]["applied_to_claim_state"] is True
    assert by_line[where["malformed_json"]]["original"] == BAD_LINES["malformed_json"].decode()

    # The same input from standard input gives the same output.
    piped = _run("replay", "--input", "-", stdin=mixed.read_bytes())
    assert piped.returncode == 0
    assert piped.stdout == done.stdout


@pytest.mark.slow
def test_replay_output_is_the_contract_shape(tmp_path: Path) -> None:
    out = tmp_path / "break.jsonl"
    assert _run("simulate", "--scenario", "hub-break", "--days", "10", "--out", out).returncode == 0
    done = _run("replay", "--input", out, "--quiet")
    assert done.returncode == 0
    alerts = [json.loads(line) for line in done.stdout.decode().splitlines()]
    assert alerts, done.stderr.decode()
    for alert in alerts:
        assert list(alert) == ["alert", "state", "at", "labels", "summary", "details"]
        assert alert["state"] in {"firing", "resolved"}
        assert alert["at"].endswith("Z")
    truth = tmp_path / "break.jsonl.truth.json"
    scored = _run("replay", "--input", out, "--quiet", "--truth", truth)
    assert scored.stdout == done.stdout
    assert re.search(rb"hub_link_break .* HubLinkBreak after \d+ min", scored.stderr)
    assert b"false alarms: 0" in scored.stderr
    assert re.search(
        rb"hub-1 -> center-1: since 2026-\S+, detected 2026-\S+, ended 2026-\S+; "
        rb"up to \d+ claims missing \(missing_claims",
        scored.stderr,
    )
    fired = [a for a in alerts if a["alert"] == "HubLinkBreak" and a["state"] == "firing"]
    assert fired and fired[0]["labels"] == {"hub_id": "hub-1", "center_id": "center-1"}
    assert {"since", "missing_claims"} <= set(fired[0]["details"])
    assert "alerts firing: " in done.stderr.decode()


def test_progress_line_on_a_terminal(day_of_events: Path) -> None:
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [*CLI, "replay", "--input", str(day_of_events)],
        stdout=subprocess.DEVNULL,
        stderr=follower,
        stdin=subprocess.DEVNULL,
    )
    os.close(follower)
    seen = b""
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:
            break
        if not chunk:
            break
        seen += chunk
    assert proc.wait(timeout=120) == 0
    os.close(leader)
    assert b"lines/s" in seen and b"\r" in seen
    assert b"events counted" in seen


def test_clear_errors_for_missing_input_and_bad_config(tmp_path: Path) -> None:
    done = _run("replay", "--input", tmp_path / "nope.jsonl")
    assert done.returncode == 2 and b"no such file" in done.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text("teams: [motor]\nhubs: [{id: h, centers: [c]}]\ntimezone: Mars/Olympus\n")
    done = _run("replay", "--config", bad, "--input", "-", stdin=b"")
    assert done.returncode == 2
    assert f"{bad}: timezone: unknown time zone 'Mars/Olympus'".encode() in done.stderr


@pytest.mark.slow
def test_simulate_writes_valid_events_and_ground_truth(tmp_path: Path) -> None:
    out = tmp_path / "s.jsonl"
    done = _run(
        "simulate", "--scenario", "feedback-surge", "--days", "10", "--seed", "9", "--out", out
    )
    assert done.returncode == 0
    assert re.search(rb"[\d,]+ claims; teams working them", done.stderr)  # progress
    lines = out.read_bytes().splitlines()
    events = [decode(line) for line in lines]
    assert not [e for e in events if isinstance(e, Rejection)]
    kinds = {e.type for e in events if not isinstance(e, Rejection)}
    assert kinds == {"hub_dispatched", "claim_arrived", "claim_completed", "survey_response"}
    truth = json.loads((tmp_path / "s.jsonl.truth.json").read_text())
    assert [f["kind"] for f in truth["faults"]] == ["feedback_surge"]
    assert truth["faults"][0]["expect"] == "NegativeFeedbackSurge"
    again = tmp_path / "again.jsonl"
    _run("simulate", "--scenario", "feedback-surge", "--days", "10", "--seed", "9", "--out", again)
    assert again.read_bytes() == out.read_bytes()  # a seed makes it reproducible


def test_simulate_refuses_a_fault_without_history(tmp_path: Path) -> None:
    done = _run("simulate", "--scenario", "hub-break", "--days", "3", "--out", tmp_path / "x")
    assert done.returncode == 2
    assert b"needs --days 10 or more" in done.stderr
    done = _run("simulate", "--scenario", "meteor", "--days", "30", "--out", tmp_path / "x")
    assert done.returncode == 2 and b"unknown scenario" in done.stderr


def test_version_and_simulate_needs_a_file() -> None:
    done = _run("--version")
    assert done.returncode == 0 and done.stdout.decode().startswith("claimflow 0.")
    done = _run("simulate", "--scenario", "normal", "--days", "1", "--out", "-")
    assert done.returncode == 2 and b"--out needs a file" in done.stderr
