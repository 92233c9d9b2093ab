"""The live runtime without Kafka or Faust: the merge of partitions and the engine behind it
(`sequencer.py`), event-time alignment of partitions (`alignment.py`), event time on an idle
stream (`idle.py`), engine state as signed data (`state_codec.py`) and its snapshots
(`snapshots.py`).

Imports the engine and the contract, never the views, the Kafka plumbing (streams/) or the
agents, which import this (pyproject.toml, `[tool.importlinter]`).
"""
