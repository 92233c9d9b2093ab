"""Hub-to-center links: claims in transit, claims that never arrived, and silent routes.

A route is a (hub, center) pair. `HubLinkBreak` is a sequential test on per-claim evidence,
with a threshold that comes from a false-alarm budget, not from tuned timeouts.

Missing claims. Each route learns its healthy transit-time distribution as a survival curve
S(age) (claimflow/engine/transit.py). Under "the link is healthy" a claim dispatched `age`
ago is still in transit with probability S(age); under "the route loses a share q of its
claims" with probability q + (1 - q) S(age). So every claim in transit carries the
likelihood ratio q / S(age) + 1 - q (about 1 while it is young, large once it is
improbably old), and every claim that arrived carries 1 - q. The detector takes, in
dispatch order, the CUSUM of those log-ratios: the most suspicious run of recent
dispatches, ending at the newest. For q = 1 (a total break) a single arrival after a
claim clears it; for q < 1 (partial breaks: 15% delivered is q = 0.85) arrivals only weigh
against. A few values of q are judged (`lost_shares`), as one test: the ratios' average
over them with equal weights (a mixture; it is a martingale under health as each is).

The budget. The product of the per-claim ratios is a likelihood-ratio martingale under
health, so from any one starting claim it reaches e^h with probability at most e^-h
(Ville's inequality). The CUSUM starts anew at every claim, so over a year it has about
V (the route's claims per year) chances: h = log(V / (budget * share)) keeps false alarms
at `false_alarms_per_year` per route, where the missing-claims test spends the share
1 - `silence_share` of the budget and the silence test the rest (0.8 and 0.2 by default:
silence decides only when a hub stops dispatching altogether). V is measured on the route
(never less than `min_claims_per_year`).
With 0.1% stragglers, S bottoms out near 1e-3, so each improbably old claim weighs about
log(1000) = 6.9 and two or three lost claims on a busy route are enough: about a minute.

Silence. A hub that stops sending altogether reports no dispatches either. The seasonal
baseline of the route's arrivals says how many were expected since the last one; seeing
none has probability exp(-expected / dispersion), judged against its share of the budget
(h = log(V / (budget * silence_share))). So silence is seen in minutes on a busy route and
later at night, with no fixed floor. Before the baseline has history, silence is not
judged; the part of a silence that falls on a holiday expects nothing (a hub quiet since a
holiday evening is judged from the next ordinary morning's traffic on).

Episodes. `since` is the dispatch time of the first claim of the suspicious run (or the
last arrival, for silence). While an episode is open, its figures (missing now, per
client) are kept current in the open alert and in `read`. It resolves only when claims
arrive again and no claim dispatched since `since` is still missing: they arrived, or were
written off `write_off_after` their dispatch (the resolution says how many). Arrivals of
claims dispatched during an episode, or arriving while one is open, never teach the curve:
the flood of stuck claims after a fix would otherwise make hours look normal, and a second
break would go unseen.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import msgspec
from mypy_extensions import mypyc_attr

from claimflow.config import HubLinkSettings
from claimflow.engine.alerts import AlertBook, AlertName, Labels, labels_key
from claimflow.engine.baseline import SeasonalBaseline
from claimflow.engine.detector import Arrived, Completed, Detector, Dispatched
from claimflow.engine.transit import BINS, EDGES, TransitCurve
from claimflow.engine.windows import BucketCounts
from claimflow.timeutil import DAY, iso

Route = tuple[str, str]  # (hub_id, center_id)
YEAR = 365 * DAY
QUANTILES = (0.5, 0.9, 0.99)


class Transit(msgspec.Struct, gc=False):
    """A claim dispatched and not yet arrived. A struct built in C, one per dispatch."""

    route: Route
    dispatched_at: float
    client_id: str
    seq: int = 0  # the route's dispatch counter: claims between two in transit have arrived
    hub_received_at: float = 0.0  # when the claim reached the hub: its deadline follows


@mypyc_attr(allow_interpreted_subclasses=True)  # state_codec.py: __new__ without __init__
@dataclass(slots=True)
class BreakEpisode:
    """One HubLinkBreak episode, as IT traces it."""

    route: Route
    since: float  # dispatch time of the first lost claim, or the last arrival (silence)
    detected: float  # event time the alert fired
    end: float | None  # event time it resolved; None while open
    max_missing: int  # most claims missing at once during the episode
    evidence: list[str]
    missing_now: int = 0
    missing_by_client: dict[str, int] = field(default_factory=dict)
    written_off: int = 0
    flowing_since: float | None = None  # claims dispatched after the alert arrive again
    # Dispatch times of claims dispatched after the alert that arrived in normal time.
    fresh: deque[float] = field(default_factory=lambda: deque(maxlen=512))


@mypyc_attr(allow_interpreted_subclasses=True)  # state_codec.py: __new__ without __init__
@dataclass(slots=True)
class RouteView:
    """What the views (metrics, IT, wall) read about one route, current as of `now`."""

    route: Route
    link_up: bool
    in_transit: int
    missing: int
    missing_by_client: dict[str, int]
    missing_after: float | None  # age at which a claim counts as missing (None: not learned)
    last_arrival: float | None
    since: float | None
    transit_quantiles: dict[float, float]  # share -> seconds (upper bin edge)
    healthy_samples: int


@mypyc_attr(allow_interpreted_subclasses=True)  # state_codec.py: __new__ without __init__
@dataclass(slots=True)
class RouteState:
    route: Route
    curve: TransitCurve
    # Claims in transit in dispatch order (the engine applies dispatches in event time).
    pending: dict[str, Transit] = field(default_factory=dict)
    next_seq: int = 0
    dispatched_total: int = 0
    first_dispatch: float | None = None
    last_arrival: float | None = None
    episode: BreakEpisode | None = None
    learned_dispatch: float = -math.inf  # dispatch time of the last transit learned
    # Arrivals in claims and in units (claims dispatched at one instant arrive as one): a
    # batching hub's claims come in bursts, and silence is judged in bursts, not claims.
    arrived_claims: int = 0
    arrived_units: int = 0
    arrived_dispatch: float = -math.inf
    last_dispatch: float = -math.inf
    # Recent episodes' (since, end): claims dispatched inside one never teach the curve.
    unhealthy: deque[tuple[float, float]] = field(default_factory=lambda: deque(maxlen=8))
    labels: dict[str, str] = field(default_factory=dict)
    alert_key: tuple[AlertName, Labels] = ("HubLinkBreak", ())

    def __post_init__(self) -> None:
        self.labels = {"hub_id": self.route[0], "center_id": self.route[1]}
        self.alert_key = ("HubLinkBreak", labels_key(self.labels))


@mypyc_attr(allow_interpreted_subclasses=True)  # state_codec.py: __new__ without __init__
@dataclass(slots=True)
class Evidence:
    score: float  # log-likelihood ratio of the most suspicious run
    threshold: float
    lost_share: float
    first: Transit | None  # the run's first claim


@mypyc_attr(allow_interpreted_subclasses=True)  # state_codec.py: __new__ without __init__
class HubLinks(Detector[Route, RouteView]):
    def __init__(
        self,
        settings: HubLinkSettings,
        window: float,
        memory: float,
        hub_centers: dict[str, tuple[str, ...]],
        baseline: SeasonalBaseline,
        book: AlertBook,
    ) -> None:
        self.settings = settings
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
        self.dispatched = BucketCounts(window, DAY + 2 * window)
        self.arrivals = BucketCounts(window, baseline.retention + window)
        self.abandoned = 0  # claims written off, in all
        # Break episodes for IT, newest last: open ones have end None. Bounded.
        self.episodes: deque[BreakEpisode] = deque(maxlen=200)
        # Silence expectations only change when a bucket edge is crossed: keep the last one.
        self._silence_cache: dict[Route, tuple[float, float, float | None]] = {}
        # (lost share, log(1 - share)) per hypothesis; -inf for a total break.
        self._hypotheses = [
            (q, math.log1p(-q) if q < 1 else -math.inf) for q in sorted(settings.lost_shares)
        ]
        # The least an arrival costs any run: log(1 - q) for the smallest lost share (finite
        # when only total breaks are looked for: an arrival then ends every run anyway).
        q_min = min(settings.lost_shares)
        self._arrival_bound = math.log1p(-q_min) if q_min < 1 else -1e6

    def _route(self, route: Route) -> RouteState:
        state = self.routes.get(route)
        if state is None:
            curve = TransitCurve(self.settings.max_samples)
            state = self.routes[route] = RouteState(route, curve)
            self._ordered = [self.routes[r] for r in sorted(self.routes)]
        return state

    # --- facts -------------------------------------------------------------------------

    def on_dispatched(self, fact: Dispatched) -> None:
        claim_id, route, t = fact.claim_id, fact.route, fact.t
        if claim_id in self.transit:
            return  # dispatched again before arriving: the first dispatch is what counts
        state = self.routes.get(route) or self._route(route)
        record = Transit(route, t, fact.client_id, state.next_seq, fact.hub_received_at)
        state.next_seq += 1
        self.transit[claim_id] = record
        state.pending[claim_id] = record
        if t != state.last_dispatch:
            state.dispatched_total += 1  # in units: a batch dispatched at one instant is one
            state.last_dispatch = t
        if state.first_dispatch is None:
            state.first_dispatch = t
        self.dispatched.add(route, t)

    def on_arrived(self, fact: Arrived) -> None:
        claim_id, t, count = fact.claim_id, fact.t, fact.counted
        record = self.transit.pop(claim_id, None)
        if record is not None:
            state = self.routes[record.route]
            del state.pending[claim_id]
            episode = state.episode
            if (
                episode is not None
                and record.dispatched_at >= episode.detected
                and t - record.dispatched_at <= self._missing_after(state)
            ):
                episode.fresh.append(record.dispatched_at)
            unhealthy = state.unhealthy  # the last episode first: one comparison, usually
            if (
                state.episode is None
                and record.dispatched_at != state.learned_dispatch
                and (
                    not unhealthy
                    or record.dispatched_at > unhealthy[-1][1]
                    or self._healthy(state, record.dispatched_at)
                )
            ):
                # One sample per dispatch time: a batching hub's file travels as one unit,
                # and thirty copies of its transit would make the curve thirty times surer.
                state.learned_dispatch = record.dispatched_at
                state.curve.learn(max(0.0, t - record.dispatched_at))
        else:
            centers = self.hub_centers.get(fact.hub_id, ())
            if len(centers) != 1:
                return  # no dispatch seen and the hub feeds several centers: route unknown
            state = self._route((fact.hub_id, centers[0]))
        if count:
            self.arrivals.add(state.route, t)
        state.arrived_claims += 1
        dispatched_at = record.dispatched_at if record is not None else t
        if dispatched_at != state.arrived_dispatch:
            state.arrived_units += 1
            state.arrived_dispatch = dispatched_at
        if state.last_arrival is None or t > state.last_arrival:
            state.last_arrival = t

    def on_completed(self, fact: Completed) -> None:
        if fact.closed:
            self.forget_claim(fact.claim_id)

    def forget_claim(self, claim_id: str) -> None:
        """A claim completed without its arrival seen: it is not in transit any more."""
        record = self.transit.pop(claim_id, None)
        if record is not None:
            del self.routes[record.route].pending[claim_id]

    @staticmethod
    def _healthy(state: RouteState, dispatched_at: float) -> bool:
        """Dispatched outside every past episode (on_arrived looks at the last one first:
        most arrivals come long after it ended)."""
        return not any(since <= dispatched_at <= end for since, end in state.unhealthy)

    # --- evaluation --------------------------------------------------------------------

    def evaluate(self, now: float, history_start: float) -> None:
        for state in self._ordered:
            self._write_off(state, now)
            if state.episode is None:
                self._judge_healthy(state, now, history_start)
            else:
                self._judge_open(state, now, history_start)

    def _threshold(self, state: RouteState, now: float, share: float) -> float:
        """h = log(V / (budget * share)): the route's dispatches per year V (a batch sent at
        one instant is one; measured, at least `min_claims_per_year`), and the share of the
        budget the test may spend (`silence_share` for silence, the rest for missing
        claims)."""
        per_year = self.settings.min_claims_per_year
        if state.first_dispatch is not None:
            span = max(now - state.first_dispatch, DAY)
            per_year = max(per_year, state.dispatched_total / span * YEAR)
        return math.log(per_year / (self.settings.false_alarms_per_year * share))

    def missing_threshold(self, state: RouteState, now: float) -> float:
        return self._threshold(state, now, 1.0 - self.settings.silence_share)

    def evidence(self, state: RouteState, now: float, after: float = -math.inf) -> Evidence:  # noqa: PLR0912 - the per-claim evidence in one pass over the route; compiled hot path
        """The CUSUM of the per-claim likelihood ratios over the route's recent dispatches
        (those dispatched at `after` or later), mixed over the lost shares, and the
        threshold the budget sets for it.

        From each starting claim, the ratio of "the route loses a share q" to "healthy" is
        a martingale under health for every q, and so is their average with equal weights
        (a mixture, as in Robbins' mixture SPRT): one test, not one per q, so no share of the
        budget is split among the values of q. The score of a run is log(mean_q ratio_q);
        `lost_share` in the result is the q that weighs most in it."""
        h = self.missing_threshold(state, now)
        best = Evidence(0.0, h, 1.0, None)
        pending = state.pending
        if not pending or state.curve.total < self.settings.min_samples:
            return best
        table = state.curve.survival_table()
        # No claim weighs more than log(q / S + 1 - q) <= -log S, an arrival at most 0, and a
        # mixture at most its largest member. A quick look first, oldest claim first: ages
        # only fall along the claims, so the claims left weigh at most `left` x this one's
        # -log S. Usually every claim in transit is young and this ends at the first one.
        neglog = state.curve.neglog_table()
        bound, left = 0.0, len(pending)
        for record in pending.values():
            weight = neglog[bisect_right(EDGES, now - record.dispatched_at)]
            if bound + left * weight < h:
                return best
            bound += weight
            left -= 1
            if bound >= h:
                break
        # Then the bound with the arrivals in it. A run from the newest claim back to claim k
        # gains at most -log S per claim in transit and loses at least -log(1 - q_min) per
        # claim that arrived in between (q = 1 dies at once). With B(k) = (sum of -log S
        # before k) + c (seq_k - k), c = log(1 - q_min), a run from the end back to k scores
        # at most B(end) - B(k), and from claim i back to k adds at most B(i) - B(k): so the
        # best any run can still reach past claim i is B(i) - min(B(k), k <= i).
        arrival = self._arrival_bound
        bins: list[int] = []
        reach: list[float] = []  # per claim: the most its older claims can still add
        weights, low = 0.0, math.inf
        for k, record in enumerate(pending.values()):
            index = bisect_right(EDGES, now - record.dispatched_at)
            bins.append(index)
            b = weights + arrival * (record.seq - k)
            low = min(low, b)
            reach.append(b - low)
            weights += neglog[index]
        if weights + arrival * (state.next_seq - len(bins)) - low < h:
            return best
        log, exp = math.log, math.exp
        prior = -log(len(self._hypotheses))  # log of each share's weight in the mixture
        dead = -math.inf
        # One pass, newest claim first, every lost share at once: (share, 1 - share,
        # log-weight of an arrival, running total).
        runs = [[q, 1.0 - q, arrived, 0.0] for q, arrived in self._hypotheses]
        i = len(bins)
        prev = state.next_seq
        unit = math.nan  # dispatch time of the newer claim: claims sharing one are one unit
        for record in reversed(pending.values()):
            if record.dispatched_at < after:
                break
            i -= 1
            arrived = prev - record.seq - 1  # claims dispatched in between that arrived
            prev = record.seq
            # A batch (claims dispatched at the same instant, a hub's file) travels as one:
            # its claims are one piece of evidence, not one each.
            survival = 1.0 if record.dispatched_at == unit else table[min(bins[i], BINS - 1)]
            unit = record.dispatched_at
            top_total, top_share = dead, 1.0
            for run in runs:
                q, keep, log_arrived, total = run
                if total == dead:
                    continue
                if arrived:
                    if keep == 0.0:
                        run[3] = dead  # a total break is cleared by any later arrival
                        continue
                    total += arrived * log_arrived
                total += log(q / survival + keep)
                run[3] = total
                if total > top_total:
                    top_total, top_share = total, q
            if top_total == dead:
                break
            score = top_total + log(sum(exp(r[3] - top_total) for r in runs if r[3] != dead))
            score += prior
            if score > best.score:
                best = Evidence(score, h, top_share, record)
            # What older claims can still add (see above), and a mixture is at most its
            # largest member: stop once no run can beat the best.
            if top_total + reach[i] <= best.score:
                break
        return best

    def _judge_healthy(self, state: RouteState, now: float, history_start: float) -> None:
        found = self.evidence(state, now)
        by_missing = found.first is not None and found.score >= found.threshold
        silent_for, expected, silence_threshold = self._silence(state, now, history_start)
        by_silence = (
            expected is not None and expected / self.settings.dispersion >= silence_threshold
        )
        if by_missing or by_silence:
            self._open(state, now, found if by_missing else None, silent_for, expected)

    def _open(
        self,
        state: RouteState,
        now: float,
        found: Evidence | None,
        silent_for: float | None,
        expected: float | None,
    ) -> None:
        """Fire an episode on missing-claim evidence (`found`), silence, or both."""
        by_silence = silent_for is not None and expected is not None
        starts = []
        if found is not None and found.first is not None:
            starts.append(found.first.dispatched_at)
        if by_silence and state.last_arrival is not None:
            starts.append(state.last_arrival)
        since = min(starts)
        evidence = [
            name
            for name, hit in (("missing_claims", found is not None), ("silence", by_silence))
            if hit
        ]
        episode = BreakEpisode(state.route, since, now, None, 0, evidence)
        state.episode = episode
        self._count_missing(state, episode, now)
        episode.max_missing = episode.missing_now
        details = self._details(state, episode, now)
        if found is not None:
            details["evidence_log_likelihood_ratio"] = round(found.score, 2)
            details["threshold"] = round(found.threshold, 2)
            details["lost_share"] = found.lost_share
        details["silent_for_seconds"] = round(silent_for) if silent_for is not None else None
        details["expected_arrivals_in_silence"] = (
            round(expected, 1) if expected is not None and by_silence else None
        )
        self.book.fire("HubLinkBreak", state.labels, now, self._summary(state, episode), details)
        self.episodes.append(episode)

    def _judge_open(self, state: RouteState, now: float, history_start: float) -> None:
        episode = state.episode
        assert episode is not None
        lost_since = self._count_missing(state, episode, now)
        episode.max_missing = max(episode.max_missing, episode.missing_now)
        arriving = state.last_arrival is not None and state.last_arrival > episode.detected
        _, expected, silence_threshold = self._silence(state, now, history_start)
        silent = expected is not None and expected / self.settings.dispersion >= silence_threshold
        details = self._details(state, episode, now)
        # Flowing again: enough claims dispatched since the alert arrived in normal time,
        # with none lost after them, that a route still losing even the smallest share in
        # `lost_shares` would have shown it (probability e^-h). From then on a new break is a
        # new episode, raised as fast as the first, even while the first one's stuck claims
        # are still on their way.
        if episode.flowing_since is None:
            edge = now - self._missing_after(state)
            lost_after = episode.detected
            for record in reversed(state.pending.values()):
                if record.dispatched_at < episode.detected:
                    break
                if record.dispatched_at <= edge:
                    lost_after = record.dispatched_at  # the newest fresh claim still missing
                    break
            streak = sum(1 for d in episode.fresh if d > lost_after)
            h = self.missing_threshold(state, now)
            if streak >= h / -math.log1p(-min(self.settings.lost_shares)):
                episode.flowing_since = now
        if episode.flowing_since is not None and lost_since:
            again = self.evidence(state, now, after=episode.flowing_since)
            if again.first is not None and again.score >= again.threshold:
                summary = (
                    f"{state.route[0]} → {state.route[1]}: claims flowed again, then a new "
                    f"break began; {lost_since} claims of this one are still missing "
                    "(carried into the new episode's figures)"
                )
                details["still_missing"] = lost_since
                self.book.resolve("HubLinkBreak", state.labels, now, summary, details)
                episode.end = now
                state.unhealthy.append((episode.since, now))
                state.episode = None
                self._open(state, now, again, None, None)
                return
        if arriving and not silent and lost_since == 0:
            summary = f"{state.route[0]} → {state.route[1]}: claims are arriving again"
            if episode.written_off:
                summary += f"; {episode.written_off} claims never arrived and were written off"
            self.book.resolve("HubLinkBreak", state.labels, now, summary, details)
            episode.end = now
            state.unhealthy.append((episode.since, now))
            state.episode = None
            return
        self.book.update("HubLinkBreak", state.labels, self._summary(state, episode), details)

    def _missing_after(self, state: RouteState) -> float:
        """Age past which a claim counts as missing: where S falls to `missing_survival`, or
        on a young route, past every healthy transit seen so far (inf before the first)."""
        curve = state.curve
        if curve.total < 1:
            return math.inf
        return curve.age_at_survival(max(self.settings.missing_survival, curve.floor))

    def _missing_by_client(
        self, state: RouteState, now: float, since: float = math.inf
    ) -> tuple[dict[str, int], int]:
        """Claims missing now by client, and how many of them were dispatched at `since` or
        later: one pass over the claims in transit, oldest first, up to the missing age."""
        edge = now - self._missing_after(state)
        by_client: dict[str, int] = {}
        after = 0
        for record in state.pending.values():
            dispatched = record.dispatched_at
            if dispatched > edge:
                break  # in dispatch order: the rest are younger still
            by_client[record.client_id] = by_client.get(record.client_id, 0) + 1
            if dispatched >= since:
                after += 1
        return dict(sorted(by_client.items())), after

    def _count_missing(self, state: RouteState, episode: BreakEpisode, now: float) -> int:
        """Keeps the episode's missing figures current; returns how many claims dispatched
        since the episode began are missing."""
        episode.missing_by_client, lost_since = self._missing_by_client(state, now, episode.since)
        episode.missing_now = sum(episode.missing_by_client.values())
        return lost_since

    def is_missing(self, record: Transit, now: float) -> bool:
        """The claim is older than its route's `missing_after` (the views' definition)."""
        edge = now - self._missing_after(self.routes[record.route])
        return record.dispatched_at <= edge

    def _write_off(self, state: RouteState, now: float) -> None:
        """Claims not arrived `write_off_after` their dispatch are given up on (counted)."""
        horizon = now - min(self.settings.write_off_after, self.memory)
        pending = state.pending
        while pending:
            claim_id, record = next(iter(pending.items()))
            if record.dispatched_at >= horizon:
                break
            del pending[claim_id]
            self.transit.pop(claim_id, None)
            self.abandoned += 1
            if state.episode is not None:
                state.episode.written_off += 1

    def _details(self, state: RouteState, episode: BreakEpisode, now: float) -> dict[str, Any]:
        missing_after = self._missing_after(state)
        return {
            "since": iso(episode.since),
            "missing_claims": episode.missing_now,
            "missing_by_client": dict(episode.missing_by_client),
            "max_missing_claims": episode.max_missing,
            "written_off": episode.written_off,
            "write_off_after_seconds": round(self.settings.write_off_after),
            "in_transit": len(state.pending),
            "missing_after_seconds": round(missing_after) if missing_after < math.inf else None,
            "evidence": list(episode.evidence),
        }

    def _summary(self, state: RouteState, episode: BreakEpisode) -> str:
        hub, center = state.route
        if "missing_claims" in episode.evidence or episode.missing_now:
            return (
                f"{hub} → {center}: {episode.missing_now} claims missing; the first lost claim "
                f"of this break was dispatched at {iso(episode.since)}"
            )
        return f"{hub} → {center}: nothing has arrived since {iso(episode.since)}"

    def _silence(
        self, state: RouteState, now: float, history_start: float
    ) -> tuple[float | None, float | None, float]:
        """How long nothing has arrived, how many arrivals (in units: a batch is one) the
        baseline expected in that time (prorated within the window buckets it covers), and
        the budget's threshold."""
        threshold = self._threshold(state, now, self.settings.silence_share)
        if state.last_arrival is None:
            return None, None, threshold
        silent_for = now - state.last_arrival
        if silent_for <= 0:
            return silent_for, None, threshold
        start = state.last_arrival // self.window * self.window
        end = -(-now // self.window) * self.window
        cached = self._silence_cache.get(state.route)
        if cached is not None and cached[0] == start and cached[1] == end:
            covering = cached[2]
        else:
            covering = self.baseline.expect_span(
                self.arrivals, state.route, start, end, history_start
            )
            self._silence_cache[state.route] = (start, end, covering)
        if covering is None:
            return silent_for, None, threshold
        burst = state.arrived_claims / state.arrived_units if state.arrived_units else 1.0
        return silent_for, covering * silent_for / (end - start) / burst, threshold

    def expire(self, now: float) -> None:
        self.dispatched.expire(now)
        self.arrivals.expire(now)

    # --- reading -----------------------------------------------------------------------

    def scopes(self) -> list[Route]:
        return sorted(self.routes)

    def in_transit(self, route: Route) -> list[tuple[str, Transit]]:
        """Claims dispatched on the route and not arrived, oldest dispatch first."""
        state = self.routes.get(route)
        return list(state.pending.items()) if state is not None else []

    def missing_after(self, route: Route) -> float | None:
        age = self._missing_after(self.routes[route])
        return age if age < math.inf else None

    def read(self, route: Route, now: float) -> RouteView:
        """The route's current figures, for metrics, the IT views and the wall page."""
        state = self.routes[route]
        missing, _ = self._missing_by_client(state, now)
        curve = state.curve
        quantiles = {}
        for share in QUANTILES:
            value = curve.quantile(share)
            if value is not None:
                quantiles[share] = value
        return RouteView(
            route=route,
            link_up=state.episode is None,
            in_transit=len(state.pending),
            missing=sum(missing.values()),
            missing_by_client=missing,
            missing_after=self.missing_after(route),
            last_arrival=state.last_arrival,
            since=state.episode.since if state.episode is not None else None,
            transit_quantiles=quantiles,
            healthy_samples=round(curve.total),
        )

    def status(self, route: Route) -> int:
        """1 while the route is in a break episode, else 0."""
        return int(self.routes[route].episode is not None)
