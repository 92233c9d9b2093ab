"""Tests of the command line and the tools: simulator, replay, produce (claimflow/tools, cli)."""
