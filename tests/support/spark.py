"""Fixtures for the real spark service (filled in by its component)."""
