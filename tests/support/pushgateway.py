"""Fixtures for the real pushgateway service (filled in by its component)."""
