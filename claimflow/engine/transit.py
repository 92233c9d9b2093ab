"""A route's transit-time distribution, learned as a survival curve from healthy arrivals.

HubLinkBreak weighs each claim in transit by how improbable its age is: S(age), the share of
healthy claims that take longer than `age` to arrive. The curve is a histogram of transit
times on a logarithmic grid (quarter octaves from one second to months), so it keeps the
whole tail, stragglers included, in a few hundred numbers, and the shape is learned, not
assumed: heavy tails, batching hubs and slow routes need no setting.

The estimate is deliberately cautious where it knows little:

* S(age) counts the histogram bin holding `age` as still in transit, so S is never
  underestimated by the grid;
* one pseudo-observation sits beyond every age (a Laplace-style floor): with n healthy
  samples S(age) >= 1 / (n + 1), so a young route, with few samples, judges a claim of any
  age as only mildly improbable, and the floor shrinks only as healthy data accumulates.

Only healthy transits teach it: the caller leaves out claims that arrive during or after an
open break episode on their route (the flood of stuck claims would otherwise teach the curve
that hours are normal, and the next break would go unseen).
"""

from __future__ import annotations

import math
from bisect import bisect_right

from mypy_extensions import mypyc_attr

STEPS_PER_OCTAVE = 4
BINS = STEPS_PER_OCTAVE * 24  # up to 2**24 s (194 days): every age the engine remembers
# Upper edge of each bin, seconds: bin 0 holds [0, 2**0.25), bin i holds [e(i-1), e(i)).
EDGES = tuple(2 ** ((i + 1) / STEPS_PER_OCTAVE) for i in range(BINS))


def bin_of(seconds: float) -> int:
    return min(BINS - 1, bisect_right(EDGES, seconds))


@mypyc_attr(allow_interpreted_subclasses=True)  # state_codec.py: __new__ without __init__
class TransitCurve:
    """Healthy transit times of one route and the survival curve they imply."""

    __slots__ = ("_ages", "_built", "_neglog", "_survival", "counts", "max_samples", "total")

    def __init__(self, max_samples: int = 200_000) -> None:
        self.counts = [0.0] * BINS
        self.total = 0.0
        # Past this many samples, older ones count half (the route may change over months).
        self.max_samples = max_samples
        self._survival: list[float] | None = None
        self._neglog: list[float] = []  # -log S per bin, for the current table
        self._built = 0.0  # samples the table was built from
        self._ages: dict[float, float] = {}  # age_at_survival answers for the current table

    def learn(self, seconds: float) -> None:
        self.counts[bin_of(seconds)] += 1.0
        self.total += 1.0
        if self.total > self.max_samples:
            self.counts = [c / 2 for c in self.counts]
            self.total /= 2
            self._survival = None

    def survival_table(self) -> list[float]:
        """S at each bin: the share of healthy claims in that bin or later (cautious).
        Rebuilt once the samples have grown by 1% (by one, while fewer than a hundred):
        the curve moves slowly, and the tick that reads it comes every few seconds."""
        table = self._survival
        if table is None or self.total - self._built >= max(1.0, self._built / 100):
            self._built = self.total
            self._ages = {}
            table = [0.0] * BINS
            above = 1.0  # the pseudo-observation beyond every age
            denominator = self.total + 1.0
            for i in range(BINS - 1, -1, -1):
                above += self.counts[i]
                table[i] = min(1.0, above / denominator)
            self._survival = table
            # One entry more than the bins, for ages past the last edge (bisect_right's
            # answer there is BINS): the evidence pass indexes it without a clamp.
            self._neglog = [-math.log(v) for v in table] + [-math.log(table[-1])]
        return table

    def neglog_table(self) -> list[float]:
        """-log S at each bin (what an improbably old claim weighs), for the current table."""
        self.survival_table()
        return self._neglog

    def survival(self, age: float) -> float:
        return self.survival_table()[bin_of(age)]

    @property
    def floor(self) -> float:
        """The smallest S the curve can give: 1 / (samples + 1)."""
        return 1.0 / (self.total + 1.0)

    def quantile(self, share: float) -> float | None:
        """The age by which `share` of healthy claims have arrived (upper bin edge)."""
        if self.total < 1:
            return None
        target = share * self.total
        seen = 0.0
        for i, c in enumerate(self.counts):
            seen += c
            if seen >= target:
                return EDGES[i]
        return EDGES[-1]

    def age_at_survival(self, survival: float) -> float:
        """The youngest age at which S drops to `survival` or below (inf if it never does):
        a claim older than this counts as missing in the views."""
        table = self.survival_table()
        age = self._ages.get(survival)
        if age is None:
            age = math.inf
            for i, s in enumerate(table):
                if s <= survival:
                    age = EDGES[i - 1] if i else 0.0
                    break
            self._ages[survival] = age
        return age
