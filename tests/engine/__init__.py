"""Tests of event-time state and detectors, plain Python (claimflow/engine, the calendars,
claimflow/timeutil.py)."""
