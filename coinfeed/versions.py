"""Pinned versions, read from ``versions.env`` at the repository root (the one source of truth)."""

from __future__ import annotations

from functools import cache
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
VERSIONS_FILE = REPO_ROOT / "versions.env"


def parse_versions(text: str) -> dict[str, str]:
    """Parse ``KEY=value`` lines; blank lines and ``#`` comments are ignored."""
    out: dict[str, str] = {}
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"versions.env line {lineno}: expected KEY=value, got {raw!r}")
        out[key.strip()] = value.strip()
    return out


@cache
def versions() -> dict[str, str]:
    return parse_versions(VERSIONS_FILE.read_text(encoding="utf-8"))


def get(name: str) -> str:
    try:
        return versions()[name]
    except KeyError:
        raise KeyError(f"{name} is not pinned in {VERSIONS_FILE}") from None
