"""Pinned versions. ``versions.env`` at the repository root is the one source of truth; the
installed package reads ``coinfeed/pinned_versions.py``, generated from it, because an installed
distribution (the Spark image deletes its build tree) has no ``versions.env`` to read.

    python -m coinfeed.versions           # regenerate coinfeed/pinned_versions.py
    python -m coinfeed.versions --check   # exit 1 when it differs from versions.env

A unit test runs ``--check``, so the two never drift apart unnoticed.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Final

# Only for development tools and tests (a checkout); runtime code must not read repository files.
REPO_ROOT = Path(__file__).resolve().parent.parent
VERSIONS_FILE = REPO_ROOT / "versions.env"
PINNED_MODULE: Final = Path(__file__).resolve().parent / "pinned_versions.py"


class MissingPinError(KeyError):
    """A version the code needs is not pinned; the message names it (not KeyError's repr)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "missing pin"


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


def versions() -> dict[str, str]:
    """Every pin, from the generated module that ships inside the package."""
    from coinfeed.pinned_versions import PINS

    return dict(PINS)


def get(name: str) -> str:
    try:
        return versions()[name]
    except KeyError:
        raise MissingPinError(
            f"{name} is not pinned: add it to versions.env and run `python -m coinfeed.versions` "
            "(regenerates coinfeed/pinned_versions.py, which the installed package reads)"
        ) from None


def render_module(text: str) -> str:
    """The source of ``pinned_versions.py`` for the contents of ``versions.env``."""
    pins = parse_versions(text)
    lines = [
        '"""GENERATED from versions.env by `python -m coinfeed.versions`. Do not edit: change',
        "versions.env and regenerate (a unit test fails while the two differ).",
        '"""',
        "",
        "from __future__ import annotations",
        "",
        "from typing import Final",
        "",
        "PINS: Final[dict[str, str]] = {",
        *(f"    {json.dumps(key)}: {json.dumps(value)}," for key, value in pins.items()),
        "}",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m coinfeed.versions", description=__doc__)
    p.add_argument("--check", action="store_true", help="exit 1 when the module is stale")
    args = p.parse_args(argv)
    want = render_module(VERSIONS_FILE.read_text(encoding="utf-8"))
    have = PINNED_MODULE.read_text(encoding="utf-8") if PINNED_MODULE.exists() else ""
    if args.check:
        if have != want:
            print(
                f"{PINNED_MODULE} differs from {VERSIONS_FILE}: run `python -m coinfeed.versions`",
                file=sys.stderr,
            )
            return 1
        return 0
    if have != want:
        PINNED_MODULE.write_text(want, encoding="utf-8")
        print(f"wrote {PINNED_MODULE}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
