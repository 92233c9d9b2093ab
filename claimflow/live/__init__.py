"""The live runtime without Kafka or Faust: the records on the sequenced topic (`envelopes.py`),
the merge of partitions (`merge.py`) and the engine behind it (`live_engine.py`), event-time
alignment of partitions (`alignment.py`), event time on an idle stream (`idle.py`), engine state
as signed data (`state_codec.py`) and its snapshots (`snapshots.py`).

Imports the engine and the contract, never the views, the Kafka plumbing (streams/) or the
agents, which import this (pyproject.toml, `[tool.importlinter]`).
"""
