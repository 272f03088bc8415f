"""The alert rules: valid for promtool, and every alert unit-tested firing and not firing.

The mutation tests prove the promtool tests bite: an alert whose expression never fires, or always
fires, must make ``promtool test rules`` fail.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from coinfeed.demo import monitoring

PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"
TESTS_DIR = monitoring.RULES_DIR / "tests"
RULES = monitoring.RULES_DIR / "coinfeed-alerts.yaml"
TEST_FILE = TESTS_DIR / "coinfeed-alerts.test.yaml"
ALERTS = [r["alert"] for r in monitoring.alert_rules(RULES)]

pytestmark = pytest.mark.skipif(not Path(PROMTOOL).exists(), reason="promtool not installed")


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([PROMTOOL, *args], capture_output=True, text=True, timeout=120)


def test_rules_files_pass_promtool_check() -> None:
    files = [str(p) for p in monitoring.rule_files()]
    assert files, "no rules files under charts/coinfeed/rules"
    result = promtool("check", "rules", *files)
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_unit_tests_pass() -> None:
    result = promtool("test", "rules", str(TEST_FILE))
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_issue_s_alerts_exist() -> None:
    for name in (
        "CoinfeedProducerDown",
        "CoinfeedDataStale",
        "CoinfeedHourlyJobFailing",
        "CoinfeedHourlyJobMissed",
        "CoinfeedRateLimitExhausted",
        "CoinfeedKafkaUnderReplicatedPartitions",
    ):
        assert name in ALERTS


def test_every_alert_is_tested_firing_and_not_firing() -> None:
    doc = yaml.safe_load(TEST_FILE.read_text())
    firing: set[str] = set()
    silent: set[str] = set()
    for case in doc["tests"]:
        for check in case.get("alert_rule_test", []):
            (firing if check.get("exp_alerts") else silent).add(check["alertname"])
    missing = {
        a: [w for w, s in (("firing", firing), ("not firing", silent)) if a not in s]
        for a in ALERTS
    }
    assert not {a: m for a, m in missing.items() if m}, missing


def _mutated_rules(tmp_path: Path, alert: str, expr: str) -> Path:
    """A copy of the rules and their tests where ``alert`` has expression ``expr``."""
    doc = yaml.safe_load(RULES.read_text())
    for group in doc["groups"]:
        for rule in group["rules"]:
            if rule.get("alert") == alert:
                rule["expr"] = expr
    rules_dir = tmp_path / "rules"
    (rules_dir / "tests").mkdir(parents=True)
    (rules_dir / RULES.name).write_text(yaml.safe_dump(doc, sort_keys=False))
    shutil.copy(TEST_FILE, rules_dir / "tests" / TEST_FILE.name)
    return rules_dir / "tests" / TEST_FILE.name


@pytest.mark.parametrize("alert", ALERTS)
def test_an_alert_that_never_fires_fails_its_tests(alert: str, tmp_path: Path) -> None:
    result = promtool("test", "rules", str(_mutated_rules(tmp_path, alert, "vector(1) == 0")))
    assert result.returncode != 0, f"{alert}: its firing tests pass even when it never fires"


@pytest.mark.parametrize("alert", ALERTS)
def test_an_alert_that_always_fires_fails_its_tests(alert: str, tmp_path: Path) -> None:
    result = promtool("test", "rules", str(_mutated_rules(tmp_path, alert, "vector(1)")))
    assert result.returncode != 0, f"{alert}: its not-firing tests pass even when it always fires"
