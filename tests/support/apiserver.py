"""Fixtures for the real apiserver service (filled in by its component)."""
