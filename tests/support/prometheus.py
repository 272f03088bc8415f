"""Fixtures for the real prometheus service (filled in by its component)."""
