"""Arrivals per team, hub and client, and `InflowDrop` against the seasonal baseline.

Every `window` of event time, the arrivals of the trailing `inflow_drop.window` (an hour by
default) are compared with the seasonal expectation for that window (see baseline.py). The
drop fires when all of these hold: the expectation is at least `min_expected` (nights and
quiet clients are too thin to judge), the observed count is at most `drop_ratio` of it, and
a count that low has probability at most `max_p_value` (a quasi-Poisson test: counts and
expectation are divided by `dispersion`, because real claim counts vary about twice as much
as a Poisson process would), all for `hold` in a row. It resolves when the
observed count is back to `resolve_ratio` of the expectation. Without an expectation
(warming up, or a configured holiday) an episode neither opens nor closes.
"""

from __future__ import annotations

from claimflow.config import InflowDropSettings
from claimflow.engine.alerts import AlertBook
from claimflow.engine.baseline import SeasonalBaseline
from claimflow.engine.stats import poisson_cdf
from claimflow.engine.windows import BucketCounts
from claimflow.timeutil import DAY, format_duration

ScopeKey = tuple[str, str]  # ("team", "motor"), ("hub", "hub-1"), ("client", "alpine-re")
_LABEL = {"team": "team", "hub": "hub_id", "client": "client_id"}


class Inflow:
    def __init__(
        self,
        settings: InflowDropSettings,
        window: float,
        baseline: SeasonalBaseline,
        book: AlertBook,
        teams: list[str],
        hubs: list[str],
    ) -> None:
        self.s = settings
        self.baseline = baseline
        self.book = book
        self.counts = BucketCounts(window, baseline.retention + settings.window + window)
        self.keys: set[ScopeKey] = set()
        if "team" in settings.scopes:
            self.keys.update(("team", t) for t in teams)
        if "hub" in settings.scopes:
            self.keys.update(("hub", h) for h in hubs)
        self._clients = "client" in settings.scopes
        self.arrived_total: dict[str, int] = {}  # team -> arrivals ever counted (a counter)

    def on_arrival(self, team: str, hub_id: str, client_id: str, t: float) -> None:
        self.arrived_total[team] = self.arrived_total.get(team, 0) + 1
        client = ("client", client_id)
        self.counts.add_many((("team", team), ("hub", hub_id), client), t)
        if self._clients and client not in self.keys:
            self.keys.add(client)

    def observed(self, key: ScopeKey, now: float) -> float:
        return self.counts.window_sum(key, now - self.s.window, now)

    def evaluate(self, now: float, history_start: float) -> None:
        s = self.s
        start = now - s.window
        offsets = self.baseline.offsets(start, now, history_start)
        if offsets is None:
            return  # warming up, or a holiday: no episode opens or closes
        for key in sorted(self.keys):
            expectation = self.baseline.expect(self.counts, key, start, now, history_start, offsets)
            if expectation is None:
                continue
            observed = int(self.counts.window_sum(key, start, now))
            expected = expectation.expected
            labels = {_LABEL[key[0]]: key[1]}
            ratio = observed / expected if expected else None
            details = {
                "observed": observed,
                "expected": round(expected, 1),
                "ratio": round(ratio, 3) if ratio is not None else None,
                "window_seconds": round(s.window),
                "references": {
                    f"{round(offset / DAY)}d": int(count)
                    for offset, count in expectation.references
                },
            }
            if not self.book.is_open("InflowDrop", labels):
                if (
                    expected >= s.min_expected
                    and observed <= s.drop_ratio * expected
                    and poisson_cdf(int(observed / s.dispersion), expected / s.dispersion)
                    <= s.max_p_value
                ):
                    pct = round(100 * observed / expected)
                    summary = (
                        f"{key[0]} {key[1]}: {observed} claims arrived in the last "
                        f"{format_duration(s.window)}, {pct}% of the usual {expected:.0f}"
                    )
                    self.book.fire("InflowDrop", labels, now, summary, details, s.hold)
                else:
                    self.book.calm("InflowDrop", labels)
            elif observed >= s.resolve_ratio * expected:
                summary = (
                    f"{key[0]} {key[1]}: inflow is back to {observed} of the usual {expected:.0f}"
                )
                self.book.resolve("InflowDrop", labels, now, summary, details)
