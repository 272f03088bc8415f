"""Pinned versions, read from ``versions.env`` (the one source of truth, at the repository root).

The package carries it as data (``coinfeed/versions.env`` is a symlink to the root file in the
repository and a copy in an installed wheel), so installed code, e.g. the hourly job in its
image, reads it without any repository file.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
VERSIONS_FILE = Path(__file__).parent / "versions.env"


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
    try:
        text = VERSIONS_FILE.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise FileNotFoundError(
            f"{VERSIONS_FILE} is missing: the coinfeed package was installed without its "
            "versions.env data file (reinstall it from the repository or a built wheel)"
        ) from None
    return parse_versions(text)


def get(name: str) -> str:
    try:
        return versions()[name]
    except KeyError:
        raise KeyError(f"{name} is not pinned in {VERSIONS_FILE}") from None
