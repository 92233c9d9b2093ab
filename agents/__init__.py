"""Faust agents (installed as `claimflow.agents`): thin adapters that decode Kafka records,
hand them to the engine (claimflow/engine/) and emit its alerts and dead letters.

Tracked in issue 3. Nothing here may hold domain logic: it lives in the engine so that
`claimflow replay` runs exactly the code the live agents run.
"""
