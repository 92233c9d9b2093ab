"""Tests of the roster and the staffing advice (claimflow/staffing)."""
