"""What people see of an engine: Prometheus metrics (`metrics.py`), the IT views of routes and
breaks (`hub_links.py`) and the wall page's data (`wall.py`).

Read the engine (and the staffing report) and import nothing of the live runtime; the agents'
web server serves them (pyproject.toml, `[tool.importlinter]`).
"""
