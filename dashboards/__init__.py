"""Grafana boards as code with grafanalib (installed as `claimflow.dashboards`).

Tracked in issue 4: boards are generated from here by `claimflow dashboards build`.
"""
