"""The snapshot codec (claimflow/live/state_codec.py): what it writes comes back equal, shared
objects stay shared, and what it cannot write is named with its place in the state."""

from __future__ import annotations

import itertools
import operator
import tracemalloc
from collections import Counter, deque
from datetime import UTC, date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from claimflow.config import Config
from claimflow.contract.rejections import Reason
from claimflow.engine import Engine
from claimflow.engine.alerts import Alert, AlertBook
from claimflow.engine.detector import Detector
from claimflow.engine.sla_risk import OpenClaim
from claimflow.live import state_codec

whole = st.integers(min_value=-(2**63), max_value=2**63 - 1)  # msgpack's range
plain = st.none() | st.booleans() | whole | st.floats(allow_nan=False) | st.text()
keys = whole | st.text() | st.tuples(st.text(), whole)
values = st.recursive(
    plain,
    lambda inner: (
        st.lists(inner)
        | st.dictionaries(keys, inner)
        | st.tuples(inner, inner)
        | st.builds(deque, st.lists(inner))
        | st.frozensets(whole | st.text())
    ),
    max_leaves=30,
)


@given(values)
def test_every_supported_value_comes_back_equal(value: Any) -> None:
    assert state_codec.decode(state_codec.encode(value)) == value


def test_the_closed_set_of_special_values_round_trips() -> None:
    shared = [1, 2]
    state = {
        "a": shared,
        "b": shared,
        "counter": Counter({"x": 3}),
        "deque": deque([1, 2], maxlen=5),
        "when": datetime(2026, 11, 2, 9, 30, tzinfo=ZoneInfo("Europe/London")),
        "utc": datetime(2026, 11, 2, tzinfo=UTC),
        "day": date(2026, 11, 2),
        "at": time(12, 0),
        "zone": ZoneInfo("America/New_York"),
        "nan": float("nan"),
        "inf": float("-inf"),
        "reason": Reason.LATE,
        "claim": OpenClaim(1.0, 2.0),
        "count": itertools.count(7),
        "getter": operator.attrgetter("due"),
        "class": OpenClaim,
    }
    back = state_codec.decode(state_codec.encode(state))
    assert back["a"] is back["b"] == [1, 2]
    assert back["counter"] == Counter({"x": 3}) and isinstance(back["counter"], Counter)
    assert back["deque"].maxlen == 5 and list(back["deque"]) == [1, 2]
    assert back["when"] == state["when"] and back["when"].tzinfo == ZoneInfo("Europe/London")
    assert back["utc"] == state["utc"]
    assert (back["day"], back["at"], back["zone"]) == (state["day"], state["at"], state["zone"])
    assert back["nan"] != back["nan"] and back["inf"] == float("-inf")
    assert back["reason"] is Reason.LATE and back["claim"] == OpenClaim(1.0, 2.0)
    assert next(back["count"]) == 7 and back["getter"](OpenClaim(3.0, 4.0)) == 3.0
    assert back["class"] is OpenClaim


def test_an_engine_round_trips_with_its_bound_handlers(config: Config) -> None:
    engine = Engine(config)
    back = state_codec.decode(state_codec.encode(engine))
    # Bound methods keep their owners: the engine's event handlers, the detectors' fact
    # handlers, the backlog's hook into the impact detector; shared objects stay shared.
    assert back.backlog.before_projection.__self__ is back.impact
    assert back.backlog.book is back.book is back.links.book
    assert all(h[2].__self__ is back for h in back._handlers.values())
    assert [h.__self__ for h in back._on_arrived] == [
        d for d in back.detectors if type(d).on_arrived is not Detector.on_arrived
    ]


def test_what_cannot_be_written_is_named_with_its_place() -> None:
    book = AlertBook()  # an alert's details that picked up a function, two levels down
    book.pending.append(Alert("InflowDrop", "firing", 0.0, {}, "", {"a": [1, lambda: 0]}))
    with pytest.raises(
        state_codec.StateCodecError, match=r"state\.pending\[0\]\.details\.a\[1\]: builtins:"
    ):
        state_codec.encode(book)
    with pytest.raises(state_codec.StateCodecError, match="64 bits"):
        state_codec.encode({"big": 2**70})


def _whole_tree(node: Any, encoder: Any) -> Any:
    """The tree as the codec built it before it wrote while walking: every node at once."""
    if isinstance(node, state_codec._Pending):
        return _whole_tree(encoder.hook(node), encoder)
    if isinstance(node, list):
        return [_whole_tree(item, encoder) for item in node]
    return node


def test_a_large_state_is_written_without_its_whole_tree_in_memory() -> None:
    """A snapshot of a 90-day state at the end of a catch-up cost the worker a transient
    of about 30 MB when the whole tree was built first; now the nodes are made as msgspec
    writes them. Same bytes; a fraction of the memory."""
    shared = OpenClaim(1.0, 2.0)
    state = {
        "teams": [
            {f"c{t}-{i}": OpenClaim(float(i), float(t)) for i in range(40)} for t in range(1500)
        ],
        "shared": [shared, shared, (shared, [shared])],
    }
    tracemalloc.start()
    try:
        written = state_codec.encode(state)
        _, streamed_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        encoder = state_codec._Encoder()
        tree = _whole_tree(state_codec._Pending(state, "state", 0), encoder)
        whole_size, _ = tracemalloc.get_traced_memory()
        assert msgspec.msgpack.encode(tree) == written
        del tree, encoder
    finally:
        tracemalloc.stop()
    assert streamed_peak < 0.5 * whole_size, (streamed_peak, whole_size)
    back = state_codec.decode(written)
    assert back["teams"][7]["c7-3"] == OpenClaim(3.0, 7.0)
    assert back["shared"][0] is back["shared"][1] is back["shared"][2][1][0]
