"""Regenerate ``manifests/crd-coinfeed.yaml`` from the one source of the CRD, the operator
chart's ``crds/coinfeed.io_coinfeeds.yaml``.

    python -m coinfeed.operator.crdsync           # write the copy
    python -m coinfeed.operator.crdsync --check   # exit 1 when the copy is stale
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Final

from coinfeed.versions import REPO_ROOT

SOURCE: Final = REPO_ROOT / "charts" / "coinfeed-operator" / "crds" / "coinfeed.io_coinfeeds.yaml"
COPY: Final = REPO_ROOT / "manifests" / "crd-coinfeed.yaml"
HEADER: Final = (
    "# GENERATED from charts/coinfeed-operator/crds/coinfeed.io_coinfeeds.yaml by\n"
    "# `python -m coinfeed.operator.crdsync`. Do not edit: change the source and regenerate.\n"
)


def render(source_text: str) -> str:
    """The copy: the generated-file header, then the source without its leading comments."""
    lines = source_text.splitlines(keepends=True)
    while lines and lines[0].startswith("#"):
        lines.pop(0)
    return HEADER + "".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m coinfeed.operator.crdsync",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--check", action="store_true", help="only check; exit 1 when the copy differs")
    p.add_argument("--source", type=Path, default=SOURCE)
    p.add_argument("--copy", type=Path, default=COPY)
    args = p.parse_args(argv)
    want = render(args.source.read_text(encoding="utf-8"))
    have = args.copy.read_text(encoding="utf-8") if args.copy.exists() else None
    if args.check:
        if have != want:
            print(
                f"{args.copy} differs from {args.source}: run python -m coinfeed.operator.crdsync",
                file=sys.stderr,
            )
            return 1
        return 0
    if have != want:
        args.copy.parent.mkdir(parents=True, exist_ok=True)
        args.copy.write_text(want, encoding="utf-8")
        print(f"wrote {args.copy}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
