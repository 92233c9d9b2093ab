"""The command line's offline tools: the replay of a file through the engine (`replay.py`, with
its bound on events dated ahead, `ahead.py`), the scenario simulator (`simulate.py`) and its
scoring (`scoring.py`), the embedded broker (`broker.py`), producing events to it
(`produce.py`), the demo that runs them together (`demo.py`), the JSON Schema export
(`schema_export.py`).

Near the top of the layers: the command line imports these, nothing else in the package does
(pyproject.toml, `[tool.importlinter]`).
"""
