"""Attacks on the live worker (issue 14): each test reproduces one and shows it now holds."""
