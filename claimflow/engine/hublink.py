"""Hub-to-center links: claims in transit, claims that never arrived, and silent routes.

A route is a (hub, center) pair. Two kinds of evidence open a `HubLinkBreak` episode:

* Missing claims. A dispatched claim that has not arrived `transit_timeout` after its
  dispatch is missing. The timeout is learned per route: `transit_factor` times the
  `transit_quantile` of recent transit times, clamped to [min, max]. The route is broken
  when, among claims dispatched in the `resolve_window` or in the `lookback` before the
  timeout edge, at least `min_missing` and at least `min_missing_share` of them are
  missing. This catches total and partial breaks as long as the hub reports its dispatches.
* Silence. When nothing has arrived on a route for a while, the seasonal baseline of the
  route's arrivals says how many were expected in that gap; if seeing none has probability
  exp(-expected / dispersion) below `silence_p_value` (and the gap is at least `min_silence`),
  the route is broken. This catches a hub that stopped sending altogether.

The episode resolves when the recent dispatches arrive again (missing share below
`resolve_share` over `resolve_window`, or no claim missing at all) and the route is not silent.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import msgspec

from claimflow.config import HubLinkSettings
from claimflow.engine.alerts import AlertBook, AlertName, Labels, labels_key
from claimflow.engine.baseline import SeasonalBaseline
from claimflow.engine.windows import BucketCounts
from claimflow.timeutil import format_duration, iso

Route = tuple[str, str]  # (hub_id, center_id)


class Transit(msgspec.Struct, gc=False):
    """A claim dispatched and not yet arrived. A struct built in C, one per dispatch."""

    route: Route
    dispatched_at: float
    client_id: str
    hub_received_at: float = 0.0  # when the claim reached the hub: its deadline follows


@dataclass(slots=True)
class BreakEpisode:
    """One HubLinkBreak episode, as IT traces it."""

    route: Route
    since: float  # dispatch time of the first missing claim, or the last arrival (silence)
    detected: float  # event time the alert fired
    end: float | None  # event time it resolved; None while open
    max_missing: int  # most claims missing at once during the episode
    evidence: list[str]


@dataclass(slots=True)
class RouteState:
    route: Route
    timeout: float
    pending: deque[tuple[float, str]] = field(default_factory=deque)
    missing: dict[str, float] = field(default_factory=dict)
    transit_times: deque[float] = field(default_factory=lambda: deque(maxlen=1000))
    in_transit: int = 0
    last_arrival: float | None = None
    since: float | None = None
    labels: dict[str, str] = field(default_factory=dict)
    alert_key: tuple[AlertName, Labels] = ("HubLinkBreak", ())

    def __post_init__(self) -> None:
        self.labels = {"hub_id": self.route[0], "center_id": self.route[1]}
        self.alert_key = ("HubLinkBreak", labels_key(self.labels))


class HubLinks:
    def __init__(
        self,
        settings: HubLinkSettings,
        window: float,
        memory: float,
        hub_centers: dict[str, tuple[str, ...]],
        baseline: SeasonalBaseline,
        book: AlertBook,
    ) -> None:
        self.s = settings
        self.window = window
        self.memory = memory
        self.hub_centers = hub_centers
        self.baseline = baseline
        self.book = book
        self.transit: dict[str, Transit] = {}
        self.routes: dict[Route, RouteState] = {}
        self._ordered: list[RouteState] = []  # routes in a fixed order, for determinism
        for hub, centers in hub_centers.items():
            for center in centers:
                self._route((hub, center))
        span = settings.lookback + settings.max_transit_timeout + 2 * window
        self.dispatched = BucketCounts(window, span)
        self.missing_counts = BucketCounts(window, span)
        self.arrivals = BucketCounts(window, baseline.retention + window)
        self.abandoned = 0
        # Break episodes for IT, newest last: open ones have end None. Bounded.
        self.episodes: deque[BreakEpisode] = deque(maxlen=200)
        # Silence expectations only change when a bucket edge is crossed: keep the last one.
        self._silence_cache: dict[Route, tuple[float, float, float | None]] = {}

    def _route(self, route: Route) -> RouteState:
        state = self.routes.get(route)
        if state is None:
            state = self.routes[route] = RouteState(route, self.s.transit_timeout)
            self._ordered = [self.routes[r] for r in sorted(self.routes)]
        return state

    # --- facts -------------------------------------------------------------------------

    def on_dispatch(
        self, claim_id: str, route: Route, t: float, client_id: str, hub_received_at: float = 0.0
    ) -> None:
        if claim_id in self.transit:
            return  # dispatched again before arriving: the first dispatch is what counts
        state = self.routes.get(route) or self._route(route)
        self.transit[claim_id] = Transit(route, t, client_id, hub_received_at)
        state.pending.append((t, claim_id))
        state.in_transit += 1
        self.dispatched.add(route, t)

    def on_arrival(self, claim_id: str, hub_id: str, t: float, count: bool = True) -> None:
        record = self.transit.pop(claim_id, None)
        if record is not None:
            state = self.routes[record.route]
            state.in_transit -= 1
            state.transit_times.append(max(0.0, t - record.dispatched_at))
            if state.missing.pop(claim_id, None) is not None:
                self.missing_counts.add(record.route, record.dispatched_at, -1)
        else:
            centers = self.hub_centers.get(hub_id, ())
            if len(centers) != 1:
                return  # no dispatch seen and the hub feeds several centers: route unknown
            state = self._route((hub_id, centers[0]))
        if count:
            self.arrivals.add(state.route, t)
        if state.last_arrival is None or t > state.last_arrival:
            state.last_arrival = t

    def forget_claim(self, claim_id: str) -> None:
        """A claim completed without its arrival seen: it is not in transit any more."""
        record = self.transit.pop(claim_id, None)
        if record is not None:
            state = self.routes[record.route]
            state.in_transit -= 1
            if state.missing.pop(claim_id, None) is not None:
                self.missing_counts.add(record.route, record.dispatched_at, -1)

    # --- evaluation --------------------------------------------------------------------

    def learn_timeouts(self) -> None:
        for state in self.routes.values():
            samples = state.transit_times
            if len(samples) < self.s.min_transit_samples:
                continue
            ordered = sorted(samples)
            q = ordered[min(len(ordered) - 1, int(self.s.transit_quantile * len(ordered)))]
            state.timeout = min(
                self.s.max_transit_timeout,
                max(self.s.min_transit_timeout, q * self.s.transit_factor),
            )

    def evaluate(self, now: float, history_start: float) -> None:
        for state in self._ordered:
            self._classify_missing(state, now)
            self._judge(state, now, history_start)

    def _classify_missing(self, state: RouteState, now: float) -> None:
        edge = now - state.timeout
        pending = state.pending
        while pending and pending[0][0] <= edge:
            dispatched_at, claim_id = pending.popleft()
            record = self.transit.get(claim_id)
            if record is not None and record.dispatched_at == dispatched_at:
                state.missing[claim_id] = dispatched_at
                self.missing_counts.add(state.route, dispatched_at, 1)
        # Claims missing for longer than the claim memory are given up on (and counted).
        horizon = now - self.memory
        while state.missing:
            claim_id, dispatched_at = next(iter(state.missing.items()))
            if dispatched_at >= horizon:
                break
            del state.missing[claim_id]
            self.transit.pop(claim_id, None)
            state.in_transit -= 1
            self.abandoned += 1

    def _judge(self, state: RouteState, now: float, history_start: float) -> None:
        s = self.s
        quiet = state.last_arrival is None or now - state.last_arrival < s.min_silence
        is_open = state.alert_key in self.book.open
        if quiet and len(state.missing) < s.min_missing and not is_open:
            return  # neither kind of evidence can be there: skip the sums
        edge = now - state.timeout
        # A fresh break shows first in the most recent dispatches, a slow partial one over
        # the whole lookback: judge both spans.
        broken_by_missing = False
        dispatched = missing = 0.0
        for span in (s.resolve_window, s.lookback):
            d = self.dispatched.window_sum(state.route, edge - span, edge)
            m = self.missing_counts.window_sum(state.route, edge - span, edge)
            if m >= s.min_missing and m >= s.min_missing_share * d:
                broken_by_missing, dispatched, missing = True, d, m
                break
            dispatched, missing = d, m
        silent_for, expected = self._silence(state, now, history_start)
        broken_by_silence = expected is not None and expected / s.dispersion >= -math.log(
            s.silence_p_value
        )
        details: dict[str, Any] = {
            "since": None,
            "missing_claims": len(state.missing),
            "dispatched_judged": int(dispatched),
            "missing_judged": int(missing),
            "transit_timeout_seconds": round(state.timeout),
            "silent_for_seconds": round(silent_for) if silent_for is not None else None,
            "expected_arrivals_in_silence": round(expected, 1) if expected is not None else None,
            "evidence": [
                name
                for name, hit in (
                    ("missing_claims", broken_by_missing),
                    ("silence", broken_by_silence),
                )
                if hit
            ],
        }
        hub, center = state.route
        if not is_open:
            if not (broken_by_missing or broken_by_silence):
                return
            starts = []
            if broken_by_missing:
                starts.append(self._first_missing_since(state, edge - s.lookback))
            if broken_by_silence and state.last_arrival is not None:
                starts.append(state.last_arrival)
            state.since = min(starts)
            details["since"] = iso(state.since)
            if broken_by_missing:
                summary = (
                    f"{hub} → {center}: {len(state.missing)} claims dispatched since "
                    f"{iso(state.since)} have not arrived ({int(missing)} of {int(dispatched)} "
                    f"dispatched before the {format_duration(state.timeout)} transit timeout)"
                )
            else:
                gap = format_duration(silent_for or 0)
                summary = (
                    f"{hub} → {center}: nothing has arrived for {gap}; "
                    f"about {expected:.0f} claims were expected in that time"
                )
            self.book.fire("HubLinkBreak", state.labels, now, summary, details)
            self.episodes.append(
                BreakEpisode(
                    state.route, state.since, now, None, len(state.missing), details["evidence"]
                )
            )
            return
        for episode in reversed(self.episodes):
            if episode.route == state.route and episode.end is None:
                episode.max_missing = max(episode.max_missing, len(state.missing))
                break
        recent_dispatched = self.dispatched.window_sum(state.route, edge - s.resolve_window, edge)
        recent_missing = self.missing_counts.window_sum(state.route, edge - s.resolve_window, edge)
        flowing = not state.missing or (
            recent_dispatched >= 3 and recent_missing <= s.resolve_share * recent_dispatched
        )
        if flowing and not broken_by_missing and not broken_by_silence:
            details["since"] = iso(state.since) if state.since is not None else None
            summary = f"{hub} → {center}: claims are arriving again"
            self.book.resolve("HubLinkBreak", state.labels, now, summary, details)
            state.since = None
            for episode in reversed(self.episodes):
                if episode.route == state.route and episode.end is None:
                    episode.end = now
                    break

    def _silence(
        self, state: RouteState, now: float, history_start: float
    ) -> tuple[float | None, float | None]:
        if state.last_arrival is None:
            return None, None
        silent_for = now - state.last_arrival
        if silent_for < self.s.min_silence:
            return silent_for, None
        start = (state.last_arrival // self.window + 1) * self.window
        if now - start < self.window:
            return silent_for, None
        end = now // self.window * self.window
        cached = self._silence_cache.get(state.route)
        if cached is not None and cached[0] == start and cached[1] == end:
            return silent_for, cached[2]
        expectation = self.baseline.expect(self.arrivals, state.route, start, end, history_start)
        expected = expectation.expected if expectation else None
        self._silence_cache[state.route] = (start, end, expected)
        return silent_for, expected

    def _first_missing_since(self, state: RouteState, start: float) -> float:
        for dispatched_at in state.missing.values():
            if dispatched_at >= start:
                return dispatched_at
        return start

    def in_transit(self, route: Route) -> list[tuple[str, Transit]]:
        """Claims dispatched on the route and not arrived, oldest dispatch first."""
        claims = [(cid, rec) for cid, rec in self.transit.items() if rec.route == route]
        claims.sort(key=lambda item: item[1].dispatched_at)
        return claims

    def status(self, route: Route) -> int:
        """1 while the route is in a break episode, else 0."""
        return int(self.book.is_open("HubLinkBreak", self.routes[route].labels))
