"""Survey responses by score, and `NegativeFeedbackSurge` per client and per team.

A response is negative when its score is at most `negative_max_score`. For each client (and
each team, when the response names a claim whose team is remembered), the negatives of the
trailing `short_window` (where a sharp surge shows first) and of the trailing `window` (a
slow one) are each compared with what the baseline predicts from the *other* answers in
that window: expected = non-negative answers × share / (1 - share). The share is taken over
the `baseline_days` whole days before the long window, at its upper bound (negatives plus
two standard errors: a fortnight that was quiet by chance would otherwise make an ordinary
day look like a surge), floored at `min_negative_share`. Scaling by the other answers makes
the test indifferent to the daily rhythm of answering e-mails, and a surge of negative
answers does not raise its own expectation.

It fires when, in either window, negatives >= `min_count`, >= `min_ratio` × expected, and
the Poisson probability of so many is at most `max_p_value`. It resolves when neither
window would fire and the long one is below `min_count` or `resolve_ratio` × expected.
Without `min_baseline_responses` in the baseline, or before `min_history` of data, there
is no judgement.
"""

from __future__ import annotations

import math
from collections import Counter, deque
from typing import Any

from claimflow.config import NegativeFeedbackSettings
from claimflow.engine.alerts import AlertBook
from claimflow.engine.stats import poisson_sf
from claimflow.engine.windows import BucketCounts
from claimflow.timeutil import DAY, format_duration

_LABEL = {"client": "client_id", "team": "team"}
Scope = tuple[str, str]  # ("client", "alpine-re"), ("team", "motor")
DailyKey = tuple[str, str, str]  # a scope and "all" or "neg"
# The scopes an answer counts in, and their keys in the daily counts (all, negative).
_ScopeKeys = tuple[tuple[Scope, ...], tuple[tuple[DailyKey, DailyKey], ...]]


class _Trailing:
    """Exact answer counts per scope over a trailing window. Answers are few, so they are
    kept in a queue and subtracted as they leave the window."""

    def __init__(self, window: float) -> None:
        self.window = window
        self._queue: deque[tuple[float, tuple[tuple[str, str], ...], bool]] = deque()
        # Plain dicts (absent means 0): CPython's fast paths are for exact dicts.
        self.all: dict[tuple[str, str], int] = {}
        self.negative: dict[tuple[str, str], int] = {}

    def add(self, t: float, scopes: tuple[tuple[str, str], ...], negative: bool) -> None:
        self._queue.append((t, scopes, negative))
        counts = self.all
        for scope in scopes:
            counts[scope] = counts.get(scope, 0) + 1
        if negative:
            counts = self.negative
            for scope in scopes:
                counts[scope] = counts.get(scope, 0) + 1

    def advance(self, now: float) -> None:
        queue, start = self._queue, now - self.window
        while queue and queue[0][0] <= start:
            _, scopes, negative = queue.popleft()
            for scope in scopes:
                self.all[scope] -= 1
                if negative:
                    self.negative[scope] -= 1


class Feedback:
    def __init__(self, settings: NegativeFeedbackSettings, window: float, book: AlertBook) -> None:
        self.s = settings
        self.book = book
        # A sharp surge shows first in the short window, a slow one in the long window.
        self.windows = [_Trailing(settings.short_window), _Trailing(settings.window)]
        self.daily = BucketCounts(DAY, (settings.baseline_days + 2) * DAY)
        self.keys: set[tuple[str, str]] = set()
        self.scores: Counter[tuple[str, int]] = Counter()  # (client, score) -> responses
        # (client, team) -> the scopes an answer counts in, with their daily-count keys.
        self._scope_keys: dict[tuple[str, str | None], _ScopeKeys] = {}
        # Baselines are whole days: they change once a day, so keep them for the day.
        self._baselines: dict[tuple[str, str], tuple[float, float]] = {}
        self._baselines_end: float | None = None

    def on_response(
        self, client_id: str, team: str | None, score: int, t: float, count: bool = True
    ) -> None:
        self.scores[(client_id, score)] += 1
        if not count:
            return
        negative = score <= self.s.negative_max_score
        keys = self._scope_keys.get((client_id, team))
        if keys is None:
            keys = self._keys_for(client_id, team)
        mine, daily_keys = keys
        for trailing in self.windows:
            trailing.add(t, mine, negative)
        for all_key, negative_key in daily_keys:
            self.daily.add(all_key, t)
            if negative:
                self.daily.add(negative_key, t)

    def _keys_for(self, client_id: str, team: str | None) -> _ScopeKeys:
        scopes: list[Scope] = [("client", client_id)]
        if team is not None:
            scopes.append(("team", team))
        mine = tuple(scope for scope in scopes if scope[0] in self.s.scopes)
        keys = (mine, tuple(((*scope, "all"), (*scope, "neg")) for scope in mine))
        self.keys.update(mine)
        if len(self._scope_keys) >= 10_000:  # client ids come from the input: stay bounded
            self._scope_keys.clear()
        self._scope_keys[(client_id, team)] = keys
        return keys

    def _baseline(self, key: tuple[str, str], now: float) -> tuple[float, float]:
        base_end = ((now - self.s.window) // DAY) * DAY
        if base_end != self._baselines_end:
            base_start = base_end - self.s.baseline_days * DAY
            self._baselines_end = base_end
            self._baselines = {
                k: (
                    self.daily.window_sum((*k, "all"), base_start, base_end),
                    self.daily.window_sum((*k, "neg"), base_start, base_end),
                )
                for k in self.keys
            }
        return self._baselines.get(key, (0.0, 0.0))

    def evaluate(self, now: float, history_start: float) -> None:
        s = self.s
        if now - history_start < s.min_history:
            return
        for trailing in self.windows:
            trailing.advance(now)
        for key in sorted(self.keys):
            base_all, base_neg = self._baseline(key, now)
            if base_all < s.min_baseline_responses:
                continue
            # The baseline share is itself an estimate: judge against its upper bound
            # (two standard errors of the negative count), so that a fortnight that was
            # luckily quiet does not make an ordinary day look like a surge.
            share = max(s.min_negative_share, (base_neg + 2 * math.sqrt(base_neg)) / base_all)
            judged = [self._judge(trailing, key, share) for trailing in self.windows]
            labels = {_LABEL[key[0]]: key[1]}
            surging = [j for j in judged if j[0]]
            if not self.book.is_open("NegativeFeedbackSurge", labels):
                if surging:
                    _, details = surging[0]
                    summary = (
                        f"{key[0]} {key[1]}: {details['negative_responses']} negative survey "
                        f"answers of {details['responses']} in the last "
                        f"{format_duration(details['window_seconds'])} "
                        f"(about {details['expected_negative']} usual)"
                    )
                    self.book.fire("NegativeFeedbackSurge", labels, now, summary, details)
                continue
            _, long_details = judged[-1]
            negatives, expected = long_details["negative_responses"], long_details["expected"]
            if not surging and (negatives < s.min_count or negatives < s.resolve_ratio * expected):
                summary = f"{key[0]} {key[1]}: negative survey answers are back to normal"
                self.book.resolve("NegativeFeedbackSurge", labels, now, summary, long_details)

    def _judge(
        self, trailing: _Trailing, key: tuple[str, str], share: float
    ) -> tuple[bool, dict[str, Any]]:
        s = self.s
        responses = trailing.all.get(key, 0)
        negatives = trailing.negative.get(key, 0)
        # Predicted from the other answers, so a surge does not raise its own bar.
        expected = max(0.5, (responses - negatives) * share / (1 - share))
        surging = (
            negatives >= s.min_count
            and negatives >= s.min_ratio * expected
            and poisson_sf(negatives, expected) <= s.max_p_value
        )
        return surging, {
            "negative_responses": negatives,
            "responses": responses,
            "expected_negative": round(expected, 1),
            "expected": expected,
            "baseline_negative_share": round(share, 3),
            "window_seconds": round(trailing.window),
        }
