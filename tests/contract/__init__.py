"""Tests of the wire format: events, their decoding, the configuration."""
