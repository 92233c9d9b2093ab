from __future__ import annotations

from claimflow.engine.alerts import AlertBook


def test_alert_book_emits_one_firing_and_one_resolved_per_episode() -> None:
    book = AlertBook()
    labels = {"team": "motor"}
    for minute in range(5):
        book.fire("InflowDrop", labels, 60.0 * minute, "drop", {"n": minute})
    for minute in range(5, 8):
        book.resolve("InflowDrop", labels, 60.0 * minute, "back", {})
    alerts = book.drain()
    assert [(a.state, a.at) for a in alerts] == [("firing", 0.0), ("resolved", 300.0)]
    assert alerts[1].details["firing_since"] == "1970-01-01T00:00:00Z"
    assert alerts[1].details["duration_seconds"] == 300.0
    assert book.drain() == []


def test_alert_book_hold_needs_the_condition_unbroken() -> None:
    book = AlertBook()
    labels = {"team": "t"}
    book.fire("SlaAtRisk", labels, 0, "s", {}, hold=600)
    book.fire("SlaAtRisk", labels, 300, "s", {}, hold=600)
    book.calm("SlaAtRisk", labels)  # the condition broke: the hold starts again
    book.fire("SlaAtRisk", labels, 600, "s", {}, hold=600)
    assert book.drain() == []
    book.fire("SlaAtRisk", labels, 1200, "s", {}, hold=600)
    assert [a.at for a in book.drain()] == [1200]
