"""``coinfeed producer prices|tweets``: one coin's price or tweet producer (live or replay)."""

from __future__ import annotations

import logging
import signal
import sys
import threading
from types import FrameType

from coinfeed.logs import configure
from coinfeed.producers.settings import SettingsError, parse


def main(argv: list[str] | None = None) -> int:
    try:
        settings = parse(list(sys.argv[1:] if argv is None else argv))
    except (SettingsError, ValueError) as exc:
        print(f"coinfeed producer: {exc}", file=sys.stderr)
        return 2
    configure(settings.log_level)
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        logging.getLogger("coinfeed.producers").info(
            "stopping", extra={"signal": signal.Signals(signum).name}
        )
        stop.set()

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
    from coinfeed.producers.runner import run

    try:
        return run(settings, stop)
    except (SettingsError, ValueError, FileNotFoundError) as exc:
        logging.getLogger("coinfeed.producers").error(
            "configuration error", extra={"error": str(exc)}
        )
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
