"""Poisson tail probabilities: how surprising an observed count is against an expectation."""

from __future__ import annotations

import math


def _log_pmf(k: int, mu: float) -> float:
    return -mu + k * math.log(mu) - math.lgamma(k + 1)


def poisson_cdf(k: int, mu: float) -> float:
    """P(X <= k) for X ~ Poisson(mu)."""
    if k < 0:
        return 0.0
    if mu <= 0:
        return 1.0
    if k > mu + 40 * math.sqrt(mu) + 40:
        return 1.0
    logs = [_log_pmf(i, mu) for i in range(k + 1)]
    top = max(logs)
    return min(1.0, math.exp(top) * sum(math.exp(v - top) for v in logs))


def poisson_sf(k: int, mu: float) -> float:
    """P(X >= k) for X ~ Poisson(mu)."""
    if k <= 0:
        return 1.0
    if mu <= 0:
        return 0.0
    if k <= mu:
        return max(0.0, 1.0 - poisson_cdf(k - 1, mu))
    # Upper tail summed directly: 1 - cdf would lose everything to rounding out here.
    total, i = 0.0, k
    while True:
        term = math.exp(_log_pmf(i, mu))
        total += term
        if term < total * 1e-12 or i > k + 10_000:
            return min(1.0, total)
        i += 1
