"""Faust agents: thin adapters that hand Kafka records to the engine."""
