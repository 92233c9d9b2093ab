"""The claim-flow engine: event-time state and detectors in plain Python.

No Faust or Kafka here. The live agents and `claimflow replay` both feed events to
`Engine` and take alerts from it, which is what makes a replay a faithful backtest.
"""

from claimflow.engine.alerts import Alert
from claimflow.engine.engine import Engine

__all__ = ["Alert", "Engine"]
