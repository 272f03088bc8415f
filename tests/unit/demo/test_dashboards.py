"""Dashboards and alert rules against the metric-name contract, and the dashboards' JSON shape."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from coinfeed import metric_names
from coinfeed.demo import monitoring

DASHBOARDS = {p.name: monitoring.load_dashboard(p) for p in monitoring.dashboard_files()}
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"


def all_expressions() -> list[tuple[str, str]]:
    """(where, expr) for every dashboard query, variable query and alert expression."""
    found = [
        (f"{q.dashboard} / {q.panel} / {q.ref_id}", q.expr)
        for d in DASHBOARDS.values()
        for q in monitoring.panel_queries(d)
    ]
    for name, d in DASHBOARDS.items():
        for var in d["templating"]["list"]:
            if var.get("type") == "query":
                found.append((f"{name} variable ${var['name']}", str(var["definition"])))
    for path in monitoring.rule_files():
        found += [(f"{path.name} / {r['alert']}", r["expr"]) for r in monitoring.alert_rules(path)]
    return found


def test_both_dashboards_exist() -> None:
    assert set(DASHBOARDS) == {"pipeline-health.json", "market-sentiment.json"}


@pytest.mark.parametrize("name", sorted(DASHBOARDS))
def test_every_panel_has_a_title_and_a_query(name: str) -> None:
    panels = list(monitoring.panels(DASHBOARDS[name]))
    assert panels
    for p in panels:
        assert p.get("title", "").strip(), f"panel {p.get('id')} has no title"
        exprs = [t.get("expr", "").strip() for t in p.get("targets", [])]
        assert exprs and all(exprs), f"panel {p['title']!r} has a target without a query"


@pytest.mark.parametrize("name", sorted(DASHBOARDS))
def test_dashboard_shape(name: str) -> None:
    d = DASHBOARDS[name]
    assert d["uid"] and d["title"] and isinstance(d["schemaVersion"], int)
    ids = [p["id"] for p in d["panels"]]
    assert len(ids) == len(set(ids)), "panel ids repeat"
    variables = {v["name"]: v for v in d["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    coin = variables["coin"]
    assert coin["type"] == "query" and coin["includeAll"] and coin["allValue"] == ".+"
    assert coin["definition"].startswith("label_values(") and coin["definition"].endswith(", coin)")
    for p in monitoring.panels(d):
        assert p["datasource"]["uid"] == "${datasource}", p["title"]
        grid = p["gridPos"]
        assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24, p["title"]


def test_market_dashboard_filters_every_panel_by_coin() -> None:
    for q in monitoring.panel_queries(DASHBOARDS["market-sentiment.json"]):
        assert 'coin=~"$coin"' in q.expr, q.panel


def test_market_dashboard_shows_the_hourly_figures() -> None:
    used = set().union(
        *(
            monitoring.metric_names(q.expr)
            for q in monitoring.panel_queries(DASHBOARDS["market-sentiment.json"])
        )
    )
    for name in (
        metric_names.HOURLY_CLOSE_PRICE,
        metric_names.HOURLY_LOG_RETURN,
        metric_names.HOURLY_VOLATILITY,
        metric_names.HOURLY_TWEET_COUNT,
        metric_names.HOURLY_SENTIMENT_MEAN,
    ):
        assert name in used


def test_every_metric_name_used_is_in_the_contract() -> None:
    exprs = all_expressions()
    assert len(exprs) > 20
    unknown = {
        where: sorted(
            n
            for n in monitoring.metric_names(expr)
            if monitoring.declared_name(n, metric_names.ALL) is None
        )
        for where, expr in exprs
    }
    unknown = {k: v for k, v in unknown.items() if v}
    assert not unknown, f"metric names not in coinfeed/metric_names.py: {unknown}"
    # The scan must actually find names (a broken regex finding nothing would pass the check above).
    used = {n for _, e in exprs for n in monitoring.metric_names(e)}
    assert metric_names.PRODUCER_RECORDS in used and metric_names.OPERATOR_RECONCILES in used


def test_metric_name_scan() -> None:
    expr = (
        'histogram_quantile(0.9, sum by (le) (rate(coinfeed_a_seconds_bucket{job="coinfeed_b",x=~"coinfeed_c"}[5m])))'
        " / on(coin) coinfeed_d:ratio + up"
    )
    assert monitoring.metric_names(expr) == {"coinfeed_a_seconds_bucket", "coinfeed_d:ratio"}
    declared = frozenset({"coinfeed_a_seconds"})
    assert monitoring.declared_name("coinfeed_a_seconds_bucket", declared) == "coinfeed_a_seconds"
    assert monitoring.declared_name("coinfeed_a_seconds", declared) == "coinfeed_a_seconds"
    assert monitoring.declared_name("coinfeed_a_secondz", declared) is None


def test_unknown_grafana_variable_is_an_error() -> None:
    assert monitoring.resolve_variables('x{coin=~"$coin"}') == 'x{coin=~".+"}'
    assert monitoring.resolve_variables('x{coin=~"${coin}"}', {"coin": "btc"}) == 'x{coin=~"btc"}'
    with pytest.raises(KeyError, match=r"\$pair"):
        monitoring.resolve_variables('x{pair="$pair"}')


@pytest.mark.skipif(not Path(PROMTOOL).exists(), reason="promtool not installed")
def test_every_dashboard_query_is_valid_promql(tmp_path: Path) -> None:
    # promtool parses recording-rule expressions: one rule per panel query.
    queries = [q for d in DASHBOARDS.values() for q in monitoring.panel_queries(d)]
    rules = [
        {"record": f"coinfeed_dashboard_query_{i}", "expr": monitoring.resolve_variables(q.expr)}
        for i, q in enumerate(queries)
    ]
    path = tmp_path / "queries.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}))
    result = subprocess.run(
        [PROMTOOL, "check", "rules", str(path)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
