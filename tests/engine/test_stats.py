from __future__ import annotations

import math
from decimal import Decimal, getcontext
from fractions import Fraction

from claimflow.engine.stats import poisson_cdf, poisson_sf

getcontext().prec = 60


def _exact_cdf(k: int, mu: float) -> float:
    m = Fraction(mu)
    total = sum(m**i / math.factorial(i) for i in range(k + 1))
    return float(Decimal(math.exp(-mu)) * Decimal(total.numerator) / Decimal(total.denominator))


def test_poisson_tails_match_exact_sums() -> None:
    for mu in (0.5, 4.0, 30.0, 200.0):
        for k in (0, 1, 3, 10, 25, 180, 260):
            assert math.isclose(
                poisson_cdf(k, mu), min(1.0, _exact_cdf(k, mu)), rel_tol=1e-9, abs_tol=1e-300
            )
            assert math.isclose(
                poisson_sf(k + 1, mu), 1 - poisson_cdf(k, mu), rel_tol=1e-6, abs_tol=1e-12
            )
    assert poisson_sf(40, 1.0) < 1e-40  # deep tails do not round to zero or one
    assert poisson_cdf(0, 20.0) == math.exp(-20.0)
