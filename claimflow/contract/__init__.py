"""The wire format and what is refused: the event models (`models.py`, what is valid), the
fast decoder and the engine's event types (`events.py`), the reasons for refusing a record
(`rejections.py`) and the dead-letter record that carries one (`deadletter.py`).

The bottom of the package's layers (pyproject.toml, `[tool.importlinter]`): this imports
nothing of claimflow but `timeutil`; everything else may import it. Nothing is re-exported
here, so importing `rejections` (compiled) does not load the pydantic models.
"""
