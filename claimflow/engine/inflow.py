"""Arrivals per team, hub and client, and `InflowDrop` against the seasonal baseline.

Every `window` of event time, the arrivals of the trailing `inflow_drop.window` (an hour by
default) are compared with the seasonal expectation for that window (see baseline.py). The
drop fires when all of these hold: the expectation is at least `min_expected` (nights and
quiet clients are too thin to judge), the observed count is at most `drop_ratio` of it, and
a count that low has probability at most `max_p_value` (a quasi-Poisson test: counts and
expectation are divided by `dispersion`, because real claim counts vary about twice as much
as a Poisson process would), all for `hold` in a row. `max_p_value` comes from the budget
unless set: `false_alarms_per_quarter` split over the quarter's independent windows
(Bonferroni: window / quarter each). It resolves when the observed count is back to
`resolve_ratio` of the expectation. Without an expectation (warming up, or a holiday, public
or configured) an episode neither opens nor closes.

One cause, one page: when a hub drops and the arrivals missing on its route to a team make
up most (`explained_share`) of that team's missing arrivals, the team gets no episode of its
own; the hub's episode names it under `teams`. Which teams a hub feeds, and how much, is
learned from arrivals history with the same seasonal baseline.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mypy_extensions import mypyc_attr

from claimflow.config import InflowDropSettings
from claimflow.engine.alerts import AlertBook
from claimflow.engine.baseline import SeasonalBaseline
from claimflow.engine.detector import Arrived, Detector
from claimflow.engine.stats import poisson_cdf
from claimflow.engine.windows import Amount, BucketCounts
from claimflow.timeutil import DAY, format_duration

QUARTER = 91.3125 * DAY

ScopeKey = tuple[str, str]  # ("team", "motor"), ("hub", "hub-1"), ("client", "alpine-re")
CountKeys = tuple[tuple[tuple[str, ...], int], ...]  # an arrival's count keys, one each
_LABEL = {"team": "team", "hub": "hub_id", "client": "client_id"}


@mypyc_attr(allow_interpreted_subclasses=True)  # state_codec.py: __new__ without __init__
@dataclass(frozen=True, slots=True)
class ScopeInflow:
    """One scope's inflow over the detector's window ending at a whole window."""

    observed: Amount
    expected: Amount | None  # None: warming up, or a holiday
    references: tuple[tuple[float, Amount], ...]  # (offset seconds, count), most recent first


@mypyc_attr(allow_interpreted_subclasses=True)  # state_codec.py: __new__ without __init__
class Inflow(Detector[ScopeKey, ScopeInflow]):
    def __init__(
        self,
        settings: InflowDropSettings,
        window: float,
        baseline: SeasonalBaseline,
        book: AlertBook,
        teams: list[str],
        hubs: list[str],
    ) -> None:
        self.settings = settings
        self.window = window
        self.baseline = baseline
        self.book = book
        self.counts = BucketCounts(window, baseline.retention + settings.window + window)
        self.keys: set[ScopeKey] = set()
        if "team" in settings.scopes:
            self.keys.update(("team", t) for t in teams)
        if "hub" in settings.scopes:
            self.keys.update(("hub", h) for h in hubs)
        self._clients = "client" in settings.scopes
        self.hubs = list(hubs) if "hub" in settings.scopes else []
        self.teams = list(teams)
        # The per-window probability from the budget: one scope judges one independent
        # window per `window`, so a quarter holds QUARTER / window of them (Bonferroni).
        self.max_p_value = (
            settings.max_p_value
            if settings.max_p_value is not None
            else settings.false_alarms_per_quarter * settings.window / QUARTER
        )
        self.arrived_total: dict[str, int] = {}  # team -> arrivals ever counted (a counter)
        self._keys_of: dict[tuple[str, str, str], CountKeys] = {}
        self._history_start = float("inf")  # as of the last evaluation

    def on_arrived(self, fact: Arrived) -> None:
        if not fact.counted:
            return  # late: the windows it belongs to were judged already
        team, hub_id, client_id = fact.team, fact.hub_id, fact.client_id
        self.arrived_total[team] = self.arrived_total.get(team, 0) + 1
        keys = self._keys_of.get((team, hub_id, client_id))
        if keys is None:
            keys = self._scope_keys(team, hub_id, client_id)
        self.counts.add_each(keys, fact.t)

    def _scope_keys(self, team: str, hub_id: str, client_id: str) -> CountKeys:
        """The count keys of an arrival, each with its count of one, built once per team, hub
        and client (bounded: client ids come from the input). The route key learns which
        teams each hub feeds (for one episode at the hub)."""
        client = ("client", client_id)
        keys = tuple(
            (key, 1) for key in (("team", team), ("hub", hub_id), client, ("route", hub_id, team))
        )
        if len(self._keys_of) < 10_000:
            self._keys_of[(team, hub_id, client_id)] = keys
        if self._clients and client not in self.keys:
            self.keys.add(client)
        return keys

    def observed(self, key: ScopeKey, now: float) -> Amount:
        return self.counts.window_sum(key, now - self.settings.window, now)

    def expire(self, now: float) -> None:
        self.counts.expire(now)

    def scopes(self) -> list[ScopeKey]:
        return sorted(self.keys)

    def read(self, scope: ScopeKey, now: float) -> ScopeInflow:
        """Arrivals over the `window` ending at the last whole bucket edge, and the seasonal
        expectation for them (what the boards draw next to each other)."""
        end = now // self.window * self.window
        start = end - self.settings.window
        observed = self.counts.window_sum(scope, start, end)
        expectation = self.baseline.expect(self.counts, scope, start, end, self._history_start)
        if expectation is None:
            return ScopeInflow(observed, None, ())
        return ScopeInflow(observed, expectation.expected, expectation.references)

    def evaluate(self, now: float, history_start: float) -> None:
        self._history_start = history_start
        if now % self.window:
            return  # judged once a window
        s = self.settings
        start = now - s.window
        offsets = self.baseline.offsets(start, now, history_start)
        if offsets is None:
            return  # warming up, or a holiday: no episode opens or closes
        judged: dict[ScopeKey, tuple[int, Amount, bool, dict[str, Any]]] = {}
        for key in sorted(self.keys):
            expectation = self.baseline.expect(self.counts, key, start, now, history_start, offsets)
            if expectation is None:
                continue
            observed = int(self.counts.window_sum(key, start, now))
            expected = expectation.expected
            ratio = observed / expected if expected else None
            details: dict[str, Any] = {
                "observed": observed,
                # A median of whole counts (windows.py): whole, or a half, as it is; not
                # round(expected, 1), which mypyc compiles for a float and so turns 448 into
                # 448.0 where plain Python keeps 448.
                "expected": expected,
                "ratio": round(ratio, 3) if ratio is not None else None,
                "window_seconds": round(s.window),
                "references": {
                    f"{round(offset / DAY)}d": int(count)
                    for offset, count in expectation.references
                },
            }
            dropping = (
                expected >= s.min_expected
                and observed <= s.drop_ratio * expected
                and poisson_cdf(int(observed / s.dispersion), expected / s.dispersion)
                <= self.max_p_value
            )
            judged[key] = (observed, expected, dropping, details)
        explained = self._explained_by_hubs(judged, start, now, history_start, offsets)
        for key, (observed, expected, dropping, details) in judged.items():
            labels = {_LABEL[key[0]]: key[1]}
            if not self.book.is_open("InflowDrop", labels):
                if dropping and key not in explained:
                    pct = round(100 * observed / expected)
                    summary = (
                        f"{key[0]} {key[1]}: {observed} claims arrived in the last "
                        f"{format_duration(s.window)}, {pct}% of the usual {expected:.0f}"
                    )
                    if details.get("teams"):
                        summary += f"; teams affected: {', '.join(details['teams'])}"
                    self.book.fire("InflowDrop", labels, now, summary, details, s.hold)
                else:
                    self.book.calm("InflowDrop", labels)
            elif observed >= s.resolve_ratio * expected:
                summary = (
                    f"{key[0]} {key[1]}: inflow is back to {observed} of the usual {expected:.0f}"
                )
                self.book.resolve("InflowDrop", labels, now, summary, details)

    def _explained_by_hubs(
        self,
        judged: dict[ScopeKey, tuple[int, Amount, bool, dict[str, Any]]],
        start: float,
        now: float,
        history_start: float,
        offsets: list[float],
    ) -> set[ScopeKey]:
        """Teams whose drop a dropping hub explains: the arrivals missing on that hub's route
        to the team make up at least `explained_share` of the team's missing arrivals. Those
        teams are named in the hub's details and get no episode of their own."""
        explained: set[ScopeKey] = set()
        for hub in self.hubs:
            hub_key = ("hub", hub)
            state = judged.get(hub_key)
            if state is None:
                continue
            hub_open = self.book.is_open("InflowDrop", {"hub_id": hub})
            if not (state[2] or hub_open):
                continue
            teams: list[str] = []
            for team in self.teams:
                team_state = judged.get(("team", team))
                if team_state is None:
                    continue
                observed, expected, dropping, _ = team_state
                if not dropping:
                    continue
                route = ("route", hub, team)
                route_exp = self.baseline.expect(
                    self.counts, route, start, now, history_start, offsets
                )
                if route_exp is None:
                    continue
                route_missing = route_exp.expected - self.counts.window_sum(route, start, now)
                team_missing = expected - observed
                if (
                    team_missing > 0
                    and route_missing >= self.settings.explained_share * team_missing
                ):
                    explained.add(("team", team))
                    teams.append(team)
            state[3]["teams"] = teams
        return explained
