from __future__ import annotations

from claimflow.engine.dedupe import SeenIds


def test_seen_ids_remember_for_the_horizon_and_stay_bounded() -> None:
    seen = SeenIds(horizon=100)
    assert seen.first_time("a", 0)
    assert not seen.first_time("a", 50)
    assert not seen.first_time("a", 150)  # rotated once: still in the previous generation
    for i in range(1000):
        seen.first_time(f"id-{i}", 1000 + i)
    assert len(seen) <= 200
