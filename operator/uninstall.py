"""``coinfeed operator --release-on-uninstall``: what the chart's pre-delete hook runs.

``helm uninstall`` deletes the operator's RoleBinding right after its Deployment, before the
operator's pod even gets its SIGTERM, so the operator cannot let go of its feeds by itself. Feeds
left holding the ``deletionPolicy: Delete`` finalizer could then never be deleted (nor their
namespace) until an operator came back. So, while the Deployment and its rights still exist:

1. scale the operator to 0 and wait for its pods to go (a running operator would put the
   finalizer straight back: every change of a feed is an event it handles),
2. remove the finalizer from every feed it served; their topics are kept, and each feed gets a
   ``TopicsKept`` event saying why.

Best effort: a failing pre-delete hook would block ``helm uninstall`` itself, so this always
exits 0 and logs what it could not do.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

log = logging.getLogger("coinfeed.operator.uninstall")


def release_on_uninstall(
    kube: Any,
    namespace: str,
    deployment: str,
    watched: Sequence[str] | None,
    timeout: float = 90.0,
    sleep: Callable[[float], None] = time.sleep,
) -> list[str]:
    """Scale ``deployment`` (in ``namespace``) to 0, wait for its pods, release every feed in the
    ``watched`` namespaces (None: all). Returns the feeds released, as ``namespace/name``."""
    from coinfeed.operator.handlers import namespace_probe, release_feeds

    try:
        selector = kube.scale_deployment_to_zero(namespace, deployment)
    except Exception:
        log.warning("could not scale %s/%s to 0", namespace, deployment, exc_info=True)
        selector = None
    if selector is not None:
        deadline = time.monotonic() + timeout
        while kube.count_pods(namespace, selector) and time.monotonic() < deadline:
            sleep(1.0)
        if kube.count_pods(namespace, selector):
            log.warning("operator pods still running after %.0f s; releasing anyway", timeout)
    released = release_feeds(
        kube,
        watched,
        namespace_probe(kube),
        "operator uninstalled: deleting this feed will keep its Kafka topics",
        leaving=True,
    )
    log.info("released CoinFeeds for uninstall", extra={"feeds": released})
    return released
