"""The CRD (one source, one generated copy) and the operator chart's static contracts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from coinfeed.operator import crdsync

ROOT = Path(__file__).resolve().parents[3]
CHART = ROOT / "charts" / "coinfeed-operator"


def _crd() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(crdsync.SOURCE.read_text())
    return data


def test_manifests_copy_matches_chart_crd(tmp_path: Path) -> None:
    assert crdsync.main(["--check"]) == 0, "run: python -m coinfeed.operator.crdsync"
    stale = tmp_path / "crd.yaml"
    stale.write_text(crdsync.COPY.read_text().replace("maximum: 64", "maximum: 65"))
    assert crdsync.main(["--check", "--copy", str(stale)]) == 1
    assert yaml.safe_load(crdsync.COPY.read_text()) == _crd()


def _walk(schema: dict[str, Any], path: str = "") -> list[tuple[str, dict[str, Any]]]:
    out = [(path, schema)]
    for key, sub in (schema.get("properties") or {}).items():
        out += _walk(sub, f"{path}.{key}")
    if "items" in schema:
        out += _walk(schema["items"], f"{path}[]")
    return out


def test_every_spec_and_status_field_has_a_description() -> None:
    root = _crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    missing = [
        p
        for p, s in _walk(root)
        if p.startswith((".spec", ".status")) and not p.endswith("[]") and not s.get("description")
    ]
    assert missing == []


def test_crd_has_cel_partitions_rule_status_subresource_and_printer_columns() -> None:
    version = _crd()["spec"]["versions"][0]
    topics = version["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["topics"]
    rules = [r["rule"] for r in topics["properties"]["partitions"]["x-kubernetes-validations"]]
    assert "self >= oldSelf" in rules
    assert version["subresources"] == {"status": {}}
    assert [c["name"] for c in version["additionalPrinterColumns"]] == [
        "Coin",
        "Ready",
        "Topics",
        "Last Hour",
        "Last Run",
        "Age",
    ]
    paths = {c["name"]: c["jsonPath"] for c in version["additionalPrinterColumns"]}
    # What the job reported writing and how its last run ended, not a guess from the schedule.
    assert paths["Last Hour"] == ".status.lastHour"
    assert paths["Last Run"] == ".status.lastRun.result"
    status = version["schema"]["openAPIV3Schema"]["properties"]["status"]["properties"]
    assert {"lastHour", "lastRun"} <= set(status) and "lastCompletedHour" not in status
    assert _crd()["spec"]["names"]["shortNames"] == ["cf"]


def test_rbac_rules_file_is_least_privilege() -> None:
    rules = yaml.safe_load((CHART / "files" / "rbac-rules.yaml").read_text())
    flat = [
        (g, r, v)
        for rule in rules["namespaced"]
        for g in rule["apiGroups"]
        for r in rule["resources"]
        for v in rule["verbs"]
    ]
    assert ("", "secrets", "get") not in flat and all(r != "secrets" for _, r, _ in flat)
    assert all("*" not in (g, r, v) for g, r, v in flat)
    assert ("coinfeed.io", "coinfeeds/status", "patch") in flat
    # The hourly runs are only read: watched Jobs, and pods for their termination messages.
    assert {v for g, r, v in flat if (g, r) == ("batch", "jobs")} == {"list", "watch"}
    assert {v for g, r, v in flat if (g, r) == ("", "pods")} == {"list"}


def test_values_schema_rejects_unknown_keys_everywhere() -> None:
    schema = json.loads((CHART / "values.schema.json").read_text())

    def objects(s: dict[str, Any], path: str = "") -> list[tuple[str, dict[str, Any]]]:
        out = [(path, s)] if s.get("properties") else []
        for k, sub in (s.get("properties") or {}).items():
            out += objects(sub, f"{path}.{k}")
        return out

    assert [p for p, s in objects(schema) if s.get("additionalProperties") is not False] == []
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert set(values) <= set(schema["properties"])
