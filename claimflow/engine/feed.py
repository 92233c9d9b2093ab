"""The one way a decoded input record reaches the engine.

Every path that turns raw input into engine calls does `feed(engine, decode(raw, kind))`:
`claimflow replay`, `claimflow staffing suggest` (through the replay) and the live worker
(`live_engine.LiveEngine`). A record that did not decode is counted by the engine
(`engine.refuse`, so `claimflow_rejected_events_total` covers every dead letter) exactly as a
record the engine itself refused (duplicate, late, unknown team): before, the live worker
counted undecodable input, the replay did not, and `staffing suggest` skipped it unseen, so
the same file gave three different rejected counts.

Decoding stays with the caller because two callers look at the decoded event before the
engine does: the replay holds an event dated far ahead until the stream confirms it
(claimflow/tools/ahead.py), and `staffing suggest --at` stops at the first event past its moment.
"""

from __future__ import annotations

from claimflow.contract.events import Event
from claimflow.contract.rejections import Rejection
from claimflow.engine.engine import Engine


def feed(engine: Engine, item: Event | Rejection, t: float | None = None) -> Rejection | None:
    """Hand one decoded record to `engine`: None when it was taken as a new event, else the
    rejection (already counted) for the caller to report or dead-letter. A late event comes
    back as a rejection with `applied` set: its claim state was updated all the same. `t` is
    the event time in epoch seconds, when the caller has it already."""
    if isinstance(item, Rejection):
        engine.refuse(item)
        return item
    return engine.ingest(item, t)
