"""Survey responses by score, and `NegativeFeedbackSurge` per client and per team.

A response is negative when its score is at most `negative_max_score`. For each client (and
each team, when the response names a claim whose team is remembered), the negatives of the
trailing `window` are compared with what the baseline predicts from the *other* answers
seen in that window: expected = non-negative answers × share / (1 - share), the share taken
over the `baseline_days` whole days before the window (floored at `min_negative_share`).
Scaling by the other answers makes the test indifferent to the daily rhythm of answering
e-mails, and a surge of negative answers does not raise its own expectation.
It fires when negatives >= `min_count`, >= `min_ratio` × expected, and Poisson probability
of so many is at most `max_p_value`; it resolves below `min_count` or below
`resolve_ratio` × expected. Without `min_baseline_responses` in the baseline, or before
`min_history` of data, no judgement.
"""

from __future__ import annotations

from collections import Counter, deque

from claimflow.config import NegativeFeedbackSettings
from claimflow.engine.alerts import AlertBook
from claimflow.engine.stats import poisson_sf
from claimflow.engine.windows import BucketCounts
from claimflow.timeutil import DAY, format_duration

_LABEL = {"client": "client_id", "team": "team"}


class Feedback:
    def __init__(self, settings: NegativeFeedbackSettings, window: float, book: AlertBook) -> None:
        self.s = settings
        self.book = book
        # Exact trailing sums over the window: answers are few, so keep them in a queue
        # and subtract each one as it leaves the window.
        self._recent: deque[tuple[float, tuple[tuple[str, str], ...], bool]] = deque()
        self._recent_all: Counter[tuple[str, str]] = Counter()
        self._recent_neg: Counter[tuple[str, str]] = Counter()
        self.daily = BucketCounts(DAY, (settings.baseline_days + 2) * DAY)
        self.keys: set[tuple[str, str]] = set()
        self.scores: Counter[tuple[str, int]] = Counter()  # (client, score) -> responses
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
        scopes = [("client", client_id)]
        if team is not None:
            scopes.append(("team", team))
        mine = tuple(scope for scope in scopes if scope[0] in self.s.scopes)
        self._recent.append((t, mine, negative))
        for scope in mine:
            self.keys.add(scope)
            self._recent_all[scope] += 1
            self.daily.add((*scope, "all"), t)
            if negative:
                self._recent_neg[scope] += 1
                self.daily.add((*scope, "neg"), t)

    def evaluate(self, now: float, history_start: float) -> None:
        s = self.s
        if now - history_start < s.min_history:
            return
        start = now - s.window
        recent = self._recent
        while recent and recent[0][0] <= start:
            _, scopes, negative = recent.popleft()
            for scope in scopes:
                self._recent_all[scope] -= 1
                if negative:
                    self._recent_neg[scope] -= 1
        base_end = (start // DAY) * DAY
        base_start = base_end - s.baseline_days * DAY
        if base_end != self._baselines_end:
            self._baselines_end = base_end
            self._baselines = {
                key: (
                    self.daily.window_sum((*key, "all"), base_start, base_end),
                    self.daily.window_sum((*key, "neg"), base_start, base_end),
                )
                for key in self.keys
            }
        for key in sorted(self.keys):
            base_all, base_neg = self._baselines.get(key, (0.0, 0.0))
            if base_all < s.min_baseline_responses:
                continue
            share = max(s.min_negative_share, base_neg / base_all)
            responses = self._recent_all[key]
            negatives = self._recent_neg[key]
            # Predicted from the other answers, so a surge does not raise its own bar.
            expected = max(0.5, (responses - negatives) * share / (1 - share))
            labels = {_LABEL[key[0]]: key[1]}
            details = {
                "negative_responses": negatives,
                "responses": responses,
                "expected_negative": round(expected, 1),
                "baseline_negative_share": round(share, 3),
                "window_seconds": round(s.window),
            }
            if not self.book.is_open("NegativeFeedbackSurge", labels):
                if (
                    negatives >= s.min_count
                    and negatives >= s.min_ratio * expected
                    and poisson_sf(negatives, expected) <= s.max_p_value
                ):
                    summary = (
                        f"{key[0]} {key[1]}: {negatives} negative survey answers of {responses} "
                        f"in the last {format_duration(s.window)} (about {expected:.1f} usual)"
                    )
                    self.book.fire("NegativeFeedbackSurge", labels, now, summary, details)
            elif negatives < s.min_count or negatives < s.resolve_ratio * expected:
                summary = f"{key[0]} {key[1]}: negative survey answers are back to normal"
                self.book.resolve("NegativeFeedbackSurge", labels, now, summary, details)
