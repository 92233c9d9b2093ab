"""Tests of what people see: metrics, wall, IT views, boards, alert rules, logs
(claimflow/views, dashboards)."""
