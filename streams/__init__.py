"""Kafka topics and stream wiring for the live worker (installed as `claimflow.streams`).

Topics and their models are declared once here; the agents in agents/ consume them. The
live pipeline is tracked in issue 3; the engine it wraps lives in claimflow/engine/.
"""
