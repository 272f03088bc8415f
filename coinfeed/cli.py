"""``coinfeed``: one command, one subcommand per component.

Each subcommand lives in its component and is imported only when used, so an image that installs
only its own extra (producer, operator, spark) never imports the others' dependencies.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Sequence
from typing import Final

# subcommand -> (module, summary)
COMMANDS: Final[dict[str, tuple[str, str]]] = {
    "producer": ("coinfeed.producers.cli", "run a price or tweet producer (live or replay)"),
    "operator": ("coinfeed.operator.cli", "run the CoinFeed operator (kopf)"),
    "hourly": ("coinfeed.spark.hourly", "run the hourly Spark aggregation"),
    "spark-cds": (
        "coinfeed.spark.cds",
        "build the class-data archive the hourly job's driver JVM starts from",
    ),
    "kafka": (
        "coinfeed.devcluster.cli",
        "local ZooKeeper/KRaft + 3-broker Kafka cluster (up/down/status)",
    ),
    "demo": ("coinfeed.demo.cli", "run the whole pipeline locally on the shipped sample"),
}


def usage() -> str:
    lines = ["usage: coinfeed <command> [options]", "", "commands:"]
    lines += [f"  {name:<10} {summary}" for name, (_, summary) in COMMANDS.items()]
    lines += ["", "Run `coinfeed <command> --help` for a command's options."]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print(usage())
        return 0
    name, rest = args[0], args[1:]
    if name not in COMMANDS:
        print(f"coinfeed: unknown command {name!r}\n\n{usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(COMMANDS[name][0])
    entry: Callable[[list[str]], int] = module.main
    return int(entry(rest) or 0)


if __name__ == "__main__":
    raise SystemExit(main())
