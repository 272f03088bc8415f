"""The chart's pre-delete hook: stop the operator first, then let go of every feed (topics kept);
never fail (a failing pre-delete hook would block `helm uninstall`)."""

from __future__ import annotations

from typing import Any

import pytest

from coinfeed.operator.handlers import FINALIZER
from coinfeed.operator.uninstall import release_on_uninstall

OTHER = "example.com/keep-me"


class FakeKube:
    def __init__(self, feeds: dict[str | None, list[dict[str, Any]]], pods_left: int = 2) -> None:
        self.feeds = feeds
        self.pods_left = pods_left
        self.calls: list[tuple[Any, ...]] = []
        self.fail_scale = False
        self.fail_patch: set[str] = set()

    def scale_deployment_to_zero(self, namespace: str, name: str) -> str:
        self.calls.append(("scale", namespace, name))
        if self.fail_scale:
            raise RuntimeError("forbidden")
        return "app=op"

    def count_pods(self, namespace: str, selector: str) -> int:
        self.calls.append(("count", namespace, selector))
        return self.pods_left

    def namespace_terminating(self, namespace: str) -> bool:
        return False  # an uninstall, not a namespace deletion: Events go in

    def list_feeds(self, namespace: str | None) -> list[dict[str, Any]]:
        return self.feeds[namespace]

    def set_feed_finalizers(self, namespace: str, name: str, finalizers: list[str]) -> None:
        if name in self.fail_patch:
            raise RuntimeError("conflict")
        self.calls.append(("patch", namespace, name, finalizers))

    def post_event(self, feed: Any, type_: str, reason: str, message: str) -> None:
        self.calls.append(("event", feed["metadata"]["name"], reason))


def _feed(ns: str, name: str, finalizers: list[str]) -> dict[str, Any]:
    return {"metadata": {"namespace": ns, "name": name, "finalizers": finalizers}}


def test_operator_is_stopped_before_any_feed_is_released() -> None:
    kube = FakeKube({"a": [_feed("a", "btc", [FINALIZER, OTHER]), _feed("a", "eth", [OTHER])]})
    slept: list[float] = []

    def sleep(s: float) -> None:
        slept.append(s)
        kube.pods_left -= 1  # the operator pod goes away after a while

    released = release_on_uninstall(kube, "ops", "op", ["a"], timeout=60, sleep=sleep)
    assert released == ["a/btc"]
    kinds = [c[0] for c in kube.calls]
    assert kinds[0] == "scale" and kinds.index("patch") > max(
        i for i, k in enumerate(kinds) if k == "count"
    )
    assert ("patch", "a", "btc", [OTHER]) in kube.calls
    assert ("event", "btc", "TopicsKept") in kube.calls
    assert slept  # it waited for the pods


@pytest.mark.parametrize("fail_scale", [True, False])
def test_it_never_raises_and_releases_what_it_can(fail_scale: bool) -> None:
    kube = FakeKube(
        {None: [_feed("a", "btc", [FINALIZER]), _feed("b", "eth", [FINALIZER])]}, pods_left=0
    )
    kube.fail_scale = fail_scale
    kube.fail_patch = {"btc"}
    assert release_on_uninstall(kube, "ops", "op", None, timeout=0, sleep=lambda _s: None) == [
        "b/eth"
    ]
