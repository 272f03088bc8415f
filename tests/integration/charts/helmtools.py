"""Helpers for the chart tests: the chart/values-file matrix and reading rendered objects. The
helm binary, its private copy of charts/ and rendering live in tests/support/helm.py (the
operator tests use them too); they are re-exported here for the chart tests."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from tests.support.helm import CHARTS as CHARTS
from tests.support.helm import REPO as REPO
from tests.support.helm import UMBRELLA as UMBRELLA
from tests.support.helm import Helm as Helm
from tests.support.helm import Obj as Obj


def chart_names() -> list[str]:
    """Every chart under charts/ (folders with a Chart.yaml)."""
    return sorted(p.parent.name for p in CHARTS.glob("*/Chart.yaml"))


def shipped_values(chart: str) -> list[str]:
    """The chart's shipped values files, relative to the chart: values-*.yaml and ci/*.yaml."""
    root = CHARTS / chart
    files = [*root.glob("values-*.yaml"), *root.glob("ci/*.yaml")]
    return sorted(str(f.relative_to(root)) for f in files)


def lint_matrix() -> list[tuple[str, str | None]]:
    """(chart, values file or None for the defaults) for every chart and shipped values file."""
    return [(c, v) for c in chart_names() for v in [None, *shipped_values(c)]]


def pod_spec(obj: Obj) -> Obj | None:
    """The pod spec of a Pod or of a workload's template (None for other kinds)."""
    kind = obj.get("kind")
    if kind == "Pod":
        return obj["spec"]  # type: ignore[no-any-return]
    if kind in ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"):
        return obj["spec"]["template"]["spec"]  # type: ignore[no-any-return]
    if kind == "CronJob":
        return obj["spec"]["jobTemplate"]["spec"]["template"]["spec"]  # type: ignore[no-any-return]
    return None


def by_kind(objs: Sequence[Obj], kind: str) -> Iterator[Obj]:
    return (o for o in objs if o.get("kind") == kind)


def find(objs: Sequence[Obj], kind: str, name: str) -> Obj:
    for o in objs:
        if o.get("kind") == kind and o["metadata"]["name"] == name:
            return o
    raise AssertionError(
        f"no {kind} {name!r} among {[(o.get('kind'), o['metadata']['name']) for o in objs]}"
    )
