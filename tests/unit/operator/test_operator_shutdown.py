"""What an operator that stops lets go of (pure): feeds being deleted, and every feed of a
namespace being deleted (pods go first there since Kubernetes 1.34's ordered namespace deletion)."""

from __future__ import annotations

import json
from typing import Any

from coinfeed.operator.handlers import FINALIZER, finalizers_to_release
from coinfeed.operator.kube_apply import namespace_terminating_refusal

OTHER = "example.com/keep-me"


def _feed(ns: str, name: str, finalizers: list[str], deleting: bool = False) -> dict[str, Any]:
    meta: dict[str, Any] = {"namespace": ns, "name": name, "finalizers": finalizers}
    if deleting:
        meta["deletionTimestamp"] = "2026-11-28T12:00:00Z"
    return {"metadata": meta}


def test_only_deleting_feeds_are_released_while_the_namespace_lives() -> None:
    asked: list[str] = []

    def terminating(ns: str) -> bool:
        asked.append(ns)
        return False

    feeds = [
        _feed("a", "btc", [FINALIZER], deleting=True),
        _feed("a", "eth", [FINALIZER, OTHER]),
        _feed("a", "sol", [OTHER], deleting=True),  # not ours: untouched
    ]
    assert finalizers_to_release(feeds, terminating) == [("a", "btc", [])]
    assert asked == ["a"]


def test_every_feed_of_a_terminating_namespace_is_released_keeping_other_finalizers() -> None:
    asked: list[str] = []

    def terminating(ns: str) -> bool:
        asked.append(ns)
        return ns == "gone"

    feeds = [
        _feed("gone", "btc", [FINALIZER]),
        _feed("gone", "eth", [OTHER, FINALIZER]),
        _feed("stays", "ada", [FINALIZER]),
        _feed("gone", "xrp", []),
    ]
    assert finalizers_to_release(feeds, terminating) == [
        ("gone", "btc", []),
        ("gone", "eth", [OTHER]),
    ]
    assert asked == ["gone", "stays"]  # once per namespace


def test_the_terminating_namespace_refusal_is_told_from_other_refusals() -> None:
    # As kube-apiserver 1.34 answers a create in a namespace being deleted.
    terminating = (
        '{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":'
        '"configmaps \\"p-\\" is forbidden: unable to create new content in namespace gone '
        'because it is being terminated","reason":"Forbidden","details":{"name":"p-","kind":'
        '"configmaps","causes":[{"reason":"NamespaceTerminating","message":"namespace gone is '
        'being terminated","field":"metadata.namespace"}]},"code":403}\n'
    )
    rbac = {"kind": "Status", "reason": "Forbidden", "code": 403, "details": {"kind": "events"}}
    assert namespace_terminating_refusal(terminating)
    assert not namespace_terminating_refusal(json.dumps(rbac))
    assert not namespace_terminating_refusal(b"not json")
    assert not namespace_terminating_refusal(None)


def test_every_feed_is_released_when_the_operators_own_namespace_is_deleted() -> None:
    asked: list[str] = []

    def terminating(ns: str) -> bool:
        asked.append(ns)
        return ns == "ops"

    feeds = [_feed("feeds", "btc", [FINALIZER]), _feed("other", "eth", [OTHER, FINALIZER])]
    assert finalizers_to_release(feeds, terminating, own_namespace="ops") == [
        ("feeds", "btc", []),
        ("other", "eth", [OTHER]),
    ]
    assert asked == ["ops"]
    # Its namespace lives: the feeds' namespaces decide, as before.
    assert finalizers_to_release(feeds, lambda ns: False, own_namespace="ops") == []
