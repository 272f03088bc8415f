"""The Grafana dashboards and Prometheus alert rules shipped in the umbrella chart, read as data.

Pure functions: where the files are, every panel's queries (with Grafana variables resolved for a
plain Prometheus), and the metric names a PromQL expression reads. The dashboards' contract test
and the live-Prometheus test both use these, so they agree on what "a panel's query" is.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import yaml

REPO_ROOT: Final = Path(__file__).resolve().parents[2]
CHART_DIR: Final = REPO_ROOT / "charts" / "coinfeed"
DASHBOARDS_DIR: Final = CHART_DIR / "dashboards"
RULES_DIR: Final = CHART_DIR / "rules"

# What a plain Prometheus needs instead of Grafana's template variables.
DEFAULT_VARIABLES: Final[Mapping[str, str]] = {"coin": ".+"}

# Histogram/summary/counter series carry these suffixes on top of the metric's declared name.
_SERIES_SUFFIXES: Final = ("_bucket", "_sum", "_count", "_created")
_STRING_RE: Final = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_IDENT_RE: Final = re.compile(r"(?<![A-Za-z0-9_:])([A-Za-z_:][A-Za-z0-9_:]*)")
_VAR_RE: Final = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)")


@dataclass(frozen=True)
class PanelQuery:
    dashboard: str
    panel: str
    ref_id: str
    expr: str


def dashboard_files(directory: Path = DASHBOARDS_DIR) -> list[Path]:
    return sorted(directory.glob("*.json"))


def rule_files(directory: Path = RULES_DIR) -> list[Path]:
    return sorted(p for p in directory.glob("*.yaml") if not p.name.endswith(".test.yaml"))


def load_dashboard(path: Path) -> dict[str, Any]:
    data = json.loads(path.read_text())
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a dashboard must be a JSON object")
    return data


def panels(dashboard: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """Every non-row panel, including those nested in collapsed rows."""
    for p in dashboard.get("panels", []):
        if p.get("type") == "row":
            yield from (q for q in p.get("panels", []) if q.get("type") != "row")
        else:
            yield p


def panel_queries(dashboard: Mapping[str, Any]) -> Iterator[PanelQuery]:
    title = str(dashboard.get("title", "?"))
    for p in panels(dashboard):
        for t in p.get("targets", []):
            if t.get("expr"):
                yield PanelQuery(title, str(p.get("title", "")), str(t.get("refId", "")), t["expr"])


def resolve_variables(expr: str, values: Mapping[str, str] = DEFAULT_VARIABLES) -> str:
    """Replace ``$var`` / ``${var}`` with ``values``; an unknown variable is an error, not a guess."""

    def sub(m: re.Match[str]) -> str:
        name = m.group(1) or m.group(2)
        if name not in values:
            raise KeyError(f"no value for Grafana variable ${name} in {expr!r}")
        return values[name]

    return _VAR_RE.sub(sub, expr)


def empty_panels(query: Callable[[str], Sequence[Any]]) -> tuple[int, list[str]]:
    """Run every panel query of every shipped dashboard through ``query`` (a Prometheus
    instant query); returns how many were checked and the ones that returned no data."""
    empty = []
    checked = 0
    for path in dashboard_files():
        for q in panel_queries(load_dashboard(path)):
            checked += 1
            if not query(resolve_variables(q.expr)):
                empty.append(f"{q.dashboard} / {q.panel} ({q.ref_id}): {q.expr}")
    return checked, empty


def alert_rules(path: Path) -> list[dict[str, Any]]:
    """Every alerting rule (``alert`` + ``expr``) of a Prometheus rules file."""
    doc = yaml.safe_load(path.read_text()) or {}
    return [r for g in doc.get("groups", []) for r in g.get("rules", []) if "alert" in r]


def metric_names(expr: str, prefix: str = "coinfeed_") -> set[str]:
    """Metric names starting with ``prefix`` that a PromQL expression reads.

    String literals (label values such as ``job="coinfeed_hourly"``) are removed first, so only
    identifiers count; label names never start with the prefix by convention.
    """
    code = _STRING_RE.sub('""', expr)
    return {m for m in _IDENT_RE.findall(code) if m.startswith(prefix)}


def declared_name(series_name: str, declared: frozenset[str]) -> str | None:
    """The declared metric a series name belongs to (``x_bucket`` -> ``x``), or ``None``."""
    if series_name in declared:
        return series_name
    for suffix in _SERIES_SUFFIXES:
        if series_name.endswith(suffix) and series_name[: -len(suffix)] in declared:
            return series_name[: -len(suffix)]
    return None
