"""Drift: does a live object still say everything its desired form says?

The API server adds defaults (``terminationMessagePath``, ``protocol`` ...) to what it stores, so the
comparison asks whether ``desired`` is contained in ``actual``, not whether they are equal.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# Fields the operator does not own, even inside its children.
_IGNORED_METADATA = {"resourceVersion", "uid", "creationTimestamp", "generation", "managedFields"}


def differences(desired: Any, actual: Any, path: str = "") -> list[str]:
    """Paths where ``actual`` does not contain ``desired``; empty means no drift."""
    if isinstance(desired, Mapping):
        if not isinstance(actual, Mapping):
            return [path or "."]
        out: list[str] = []
        for key, want in desired.items():
            if path == ".metadata" and key in _IGNORED_METADATA:
                continue
            out += differences(want, actual.get(key), f"{path}.{key}")
        return out
    if isinstance(desired, list):
        if not isinstance(actual, list) or len(actual) != len(desired):
            return [path]
        out = []
        for i, (want, have) in enumerate(zip(desired, actual, strict=True)):
            out += differences(want, have, f"{path}[{i}]")
        return out
    return [] if desired == actual else [path]


def spec_drift(desired: Mapping[str, Any], actual: Mapping[str, Any]) -> list[str]:
    """Drift in ``spec`` (a ConfigMap's ``data``), labels and owner references (what the
    operator owns)."""
    meta_want = desired.get("metadata") or {}
    meta_have = actual.get("metadata") or {}
    out = differences(desired.get("spec"), actual.get("spec"), ".spec")
    if "data" in desired:
        # Exactly the desired keys: an added key is drift too.
        out += differences(desired["data"], actual.get("data") or {}, ".data")
        out += [f".data.{k}" for k in sorted(set(actual.get("data") or {}) - set(desired["data"]))]
    out += differences(
        meta_want.get("labels", {}), meta_have.get("labels") or {}, ".metadata.labels"
    )
    out += differences(
        meta_want.get("ownerReferences", []),
        meta_have.get("ownerReferences") or [],
        ".metadata.ownerReferences",
    )
    return out
