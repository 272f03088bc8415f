"""Work in a background driver thread whose outcome is kept, not raised there (I/O only).

The job runs driver work beside its Spark jobs: the warm-ups (:mod:`coinfeed.spark.warmup`) and
the later queries' plans built while the first collect runs (``hourly.settle``). Each is an
optimisation; whoever needs the outcome reads ``value`` or ``error`` after ``thread.join()``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

log = logging.getLogger("coinfeed.spark.background")


class Background:
    """``thread`` runs the work; ``value`` is its result once done, ``error`` what it raised."""

    def __init__(self, what: str) -> None:
        self.what = what
        self.thread: Any = None
        self.value: Any = None
        self.error: BaseException | None = None


def start(what: str, work: Callable[[], Any]) -> Background:
    """Run ``work`` in a daemon driver thread (PySpark's ``InheritableThread``: the caller's job
    properties go with it). A failure is kept in ``error`` and logged at debug level as ``what``
    not finishing."""
    from pyspark import InheritableThread

    done = Background(what)

    def run() -> None:
        try:
            done.value = work()
        except BaseException as exc:  # kept for the caller, who decides
            done.error = exc
            log.debug(f"{what} did not finish", extra={"error": f"{type(exc).__name__}: {exc}"})

    done.thread = InheritableThread(target=run, daemon=True)
    done.thread.start()
    return done
