"""What the grouping of the package into layers (issue 17) must not break: a snapshot written
by a worker of the former flat layout names its classes by their former modules
(`claimflow.sequencer:LiveEngine`), and restores to the same state after an upgrade
(claimflow/live/state_codec.py, FORMER_NAMES), so the worker need not rebuild it from the
input logs. The import direction itself is checked by `scripts/lint-imports` in CI."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import msgspec

from claimflow.config import Config
from claimflow.contract.events import decode
from claimflow.contract.rejections import Reason, Rejection
from claimflow.live import state_codec
from claimflow.live.sequencer import Forwarded, LiveEngine, LiveSettings
from claimflow.staffing.advice import attach
from claimflow.staffing.roster import load_roster
from claimflow.streams.topics import Topics
from claimflow.tools.simulate import Simulator

ROSTER = Path(__file__).resolve().parent.parent / "claimflow" / "data" / "staffing.yaml"


def _live_engine(config: Config, events: int) -> LiveEngine:
    """A live engine (with its idle clock) that has taken `events` events of a scenario."""
    topics = Topics()
    live = LiveEngine(config, topics.inputs(), LiveSettings(idle_clock_after=60))
    attach(live.engine, load_roster(ROSTER, config))  # the staffing classes too
    live.merge.expect(dict.fromkeys(topics.inputs(), 1))
    simulated = Simulator(config, "normal", 2, date(2026, 11, 2), seed=5).events()
    for seq, (_, raw) in zip(range(events), simulated, strict=False):
        event = decode(json.dumps(raw))
        assert not isinstance(event, Rejection)
        t = event.time.timestamp()
        line = json.dumps(raw).encode()
        live.take(seq, Forwarded(topics.for_event(raw["type"]), 0, seq, t + 1, line, t))
    return live


def _renamed(node: Any, names: dict[str, str]) -> Any:
    """The codec's tree with every class name's module renamed by `names`."""
    if isinstance(node, list):
        return [_renamed(n, names) for n in node]
    if isinstance(node, str) and ":" in node:
        module, _, qualname = node.partition(":")
        return f"{names.get(module, module)}:{qualname}"
    return node


def test_a_snapshot_of_the_former_flat_layout_restores_to_the_same_state(config: Config) -> None:
    # This live engine holds no Rejection or Reason: one of each beside it.
    refused = Rejection(Reason.LATE, "older than allowed")
    written = state_codec.encode([_live_engine(config, 400), refused, Reason.DUPLICATE])
    former = {current: old for old, current in state_codec.FORMER_NAMES}
    tree = msgspec.msgpack.decode(written)
    old = msgspec.msgpack.encode(_renamed(tree, former))
    for name in former.values():  # the snapshot names every former module
        assert f"{name}:".encode() in old
    for name in former:
        assert f"{name}:".encode() not in old
    restored = state_codec.decode(old)
    assert type(restored[0]) is LiveEngine
    assert restored[1:] == [refused, Reason.DUPLICATE]
    assert state_codec.shape_difference(restored, state_codec.decode(written)) is None
    assert state_codec.encode(restored) == state_codec.encode(state_codec.decode(written))
