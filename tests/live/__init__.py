"""Tests of the live runtime and worker: merge, envelopes, snapshots, Kafka (claimflow/live,
agents, streams)."""
