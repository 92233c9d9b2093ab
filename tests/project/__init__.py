"""Tests of the project around the code: docs, deployment files, test tiers, process clean-up."""
