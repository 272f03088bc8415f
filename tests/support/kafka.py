"""Fixtures for the real kafka service (filled in by its component)."""
