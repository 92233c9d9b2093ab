"""What the regrouping of the package (issue 17) must not break: a snapshot written by a worker
of an earlier layout names its classes by their former modules (`claimflow.sequencer:LiveEngine`
in the flat package; `claimflow.live.sequencer:Merge` before that module was split,
`claimflow.engine.backlog:Backlog` before that one was named for what it holds) and its
attributes by their former names (each detector's settings were `s`), and restores to
the same state after an upgrade (claimflow/live/state_codec.py, FORMER_NAMES and
FORMER_ATTRIBUTES), so the worker need not rebuild it from the input logs; the restored worker
then goes on to publish what one that never stopped publishes. The import direction itself is
checked by `scripts/lint-imports` in CI."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import msgspec
import pytest

from claimflow.config import Config
from claimflow.contract.events import decode
from claimflow.contract.rejections import Reason, Rejection
from claimflow.live import state_codec
from claimflow.live.envelopes import Forwarded
from claimflow.live.live_engine import LiveEngine, LiveSettings, Output
from claimflow.staffing.advice import attach
from claimflow.staffing.roster import load_roster
from claimflow.streams.topics import Topics
from claimflow.tools.simulate import Simulator

ROSTER = Path(__file__).resolve().parents[2] / "claimflow" / "data" / "staffing.yaml"
TAKEN, THEN = 400, 3000  # events taken before the snapshot, and the last one taken after it

# The earlier layouts, for the modules whose classes a snapshot holds: current module -> the
# module a worker of that layout wrote.
FLAT = {  # before the package was grouped into layers
    "claimflow.contract.events": "claimflow.events",
    "claimflow.contract.rejections": "claimflow.rejections",
    "claimflow.live.idle": "claimflow.idle",
    "claimflow.live.envelopes": "claimflow.sequencer",
    "claimflow.live.merge": "claimflow.sequencer",
    "claimflow.live.live_engine": "claimflow.sequencer",
    "claimflow.engine.sla_risk": "claimflow.engine.backlog",
    "claimflow.staffing.advice": "claimflow.staffing",
    "claimflow.staffing.roster": "claimflow.staffing",
}
LAYERED = {  # in layers, before the modules that held several jobs were split and renamed
    "claimflow.live.envelopes": "claimflow.live.sequencer",
    "claimflow.live.merge": "claimflow.live.sequencer",
    "claimflow.live.live_engine": "claimflow.live.sequencer",
    "claimflow.engine.sla_risk": "claimflow.engine.backlog",
    "claimflow.staffing.advice": "claimflow.staffing",
    "claimflow.staffing.roster": "claimflow.staffing",
}
CURRENT: dict[str, str] = {}  # the modules as they are: only the attributes below differ
# Attributes renamed since (issue 17, item 3), in every layout above: class, as the codec
# names it now -> current attribute -> the name earlier versions wrote.
FORMER_ATTRIBUTES = {
    "claimflow.engine.sla_risk:Backlog": {"settings": "s"},
    "claimflow.engine.inflow:Inflow": {"settings": "s"},
    "claimflow.engine.hublink:HubLinks": {"settings": "s"},
    "claimflow.engine.feedback:Feedback": {"settings": "s"},
    "claimflow.engine.impact:Impact": {"settings": "s"},
}
# Attributes added since (state_codec.ADDED_ATTRIBUTES), which earlier versions did not write.
ADDED = {"claimflow.live.merge:Merge": {"_heard_all"}}


def _take(live: LiveEngine, config: Config, first: int, last: int) -> list[Output]:
    """What `live` publishes as it takes events `first` to `last` (excluded) of a scenario."""
    topics = Topics()
    simulated = Simulator(config, "normal", 2, date(2026, 11, 2), seed=5).events()
    outputs: list[Output] = []
    for seq, (_, raw) in zip(range(last), simulated, strict=False):
        if seq < first:
            continue
        event = decode(json.dumps(raw))
        assert not isinstance(event, Rejection)
        t = event.time.timestamp()
        line = json.dumps(raw).encode()
        outputs += live.take(seq, Forwarded(topics.for_event(raw["type"]), 0, seq, t + 1, line, t))
    return outputs


def _live_engine(config: Config, events: int) -> LiveEngine:
    """A live engine (with its idle clock) that has taken `events` events of a scenario."""
    topics = Topics()
    live = LiveEngine(config, topics.inputs(), LiveSettings(idle_clock_after=60))
    attach(live.engine, load_roster(ROSTER, config))  # the staffing classes too
    live.merge.expect(dict.fromkeys(topics.inputs(), 1))
    _take(live, config, 0, events)
    return live


def _renamed(node: Any, names: dict[str, str]) -> Any:
    """The codec's tree with every class name's module renamed by `names`, the attributes
    of FORMER_ATTRIBUTES' classes by their former names, and those of ADDED left out."""
    if isinstance(node, list):
        if len(node) == 4 and node[0] == "O" and node[2] in FORMER_ATTRIBUTES:
            former = FORMER_ATTRIBUTES[node[2]]
            node = [*node[:3], [[former.get(field, field), value] for field, value in node[3]]]
        if len(node) == 4 and node[0] == "O" and node[2] in ADDED:
            node = [*node[:3], [[f, v] for f, v in node[3] if f not in ADDED[node[2]]]]
        return [_renamed(n, names) for n in node]
    if isinstance(node, str) and ":" in node:
        module, _, qualname = node.partition(":")
        return f"{names.get(module, module)}:{qualname}"
    return node


@pytest.mark.parametrize("layout", [FLAT, LAYERED, CURRENT], ids=["flat", "layered", "current"])
def test_a_snapshot_of_an_earlier_layout_restores_to_the_same_state(
    config: Config, layout: dict[str, str]
) -> None:
    # This live engine holds no Rejection or Reason, and no record held back by its merge: one
    # of each beside it.
    refused = Rejection(Reason.LATE, "older than allowed")
    held = Forwarded("claims.arrived", 3, 7, 1.0, b"{}", 0.5)
    written = state_codec.encode([_live_engine(config, TAKEN), refused, Reason.DUPLICATE, held])
    for name in layout:  # the snapshot holds a class of every renamed module
        assert f"{name}:".encode() in written
    tree = msgspec.msgpack.decode(written)
    old = msgspec.msgpack.encode(_renamed(tree, layout))
    for name in layout.values():  # the snapshot names every former module
        assert f"{name}:".encode() in old
    for name in layout:
        assert f"{name}:".encode() not in old
    now, before = _objects(tree), _objects(msgspec.msgpack.decode(old))
    assert [name for name, fields in now if "s" in fields] == []  # no class still writes it
    for name, renamed in FORMER_ATTRIBUTES.items():  # each detector's settings, by its old name
        module, _, qualname = name.partition(":")
        (current_fields,) = [fields for n, fields in now if n == name]
        (former_fields,) = [
            fields for n, fields in before if n == f"{layout.get(module, module)}:{qualname}"
        ]
        for current, former in renamed.items():
            assert current in current_fields and current not in former_fields
            assert former in former_fields
    restored = state_codec.decode(old)
    assert type(restored[0]) is LiveEngine
    assert restored[1:] == [refused, Reason.DUPLICATE, held]
    unstopped = state_codec.decode(written)
    # What the worker checks before it uses a restored engine (agents/detect.py): a list holds
    # no object it would compare, so the engine itself.
    assert state_codec.shape_difference(restored[0], unstopped[0]) is None
    assert state_codec.encode(restored) == state_codec.encode(unstopped)
    # And it goes on as the worker that wrote it would have: the same alerts and dead letters
    # (each detector reads its settings every window), and the same state after.
    published = _take(restored[0], config, TAKEN, THEN)
    assert published == _take(unstopped[0], config, TAKEN, THEN)
    projected = unstopped[0].engine.backlog.projections
    assert any(projected.values())  # it projected deadlines after the snapshot: read them
    assert restored[0].engine.backlog.projections == projected
    assert state_codec.encode(restored) == state_codec.encode(unstopped)


def _objects(node: Any) -> list[tuple[str, list[str]]]:
    """Every object the codec's tree holds: its class name and its attribute names."""
    if not isinstance(node, list):
        return []
    found: list[tuple[str, list[str]]] = []
    if len(node) == 4 and node[0] == "O" and isinstance(node[3], list):
        found.append((str(node[2]), [str(field) for field, _ in node[3]]))
    for item in node:
        found += _objects(item)
    return found
