"""Run every ``benchmarks/bench_*.py`` (or those named on the command line) one after another.

Each benchmark module exposes ``main(argv: list[str]) -> int``, prints a short report in which
every figure is a ratio against a baseline measured in the same run, and writes its raw numbers
to ``out/bench/<name>.json``. Nothing here passes or fails on a timing.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
from pathlib import Path


def discover() -> list[str]:
    here = Path(__file__).parent
    return sorted(p.stem for p in here.glob("bench_*.py"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make bench", description=__doc__)
    parser.add_argument(
        "names", nargs="*", help=f"benchmarks to run (default: all of {discover()})"
    )
    parser.add_argument("--quick", action="store_true", help="smaller inputs, for a smoke run")
    args = parser.parse_args(argv)
    names = args.names or discover()
    failed = []
    for name in names:
        mod_name = name if name.startswith("bench_") else f"bench_{name}"
        print(f"\n=== {mod_name} ===", flush=True)
        t0 = time.perf_counter()
        module = importlib.import_module(f"benchmarks.{mod_name}")
        rc = module.main(["--quick"] if args.quick else [])
        print(f"=== {mod_name}: exit {rc} in {time.perf_counter() - t0:.1f}s ===", flush=True)
        if rc:
            failed.append(mod_name)
    if failed:
        print(f"benchmarks that could not run: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
