"""The demo pipeline (replay producers -> Kafka -> hourly Spark job) with KAFKA_SECURITY=sasl_ssl:
every client on TLS + its own SCRAM user and ACLs, and the hourly table exactly as in plaintext.

Slow (two Kafka clusters + two Spark runs, one after the other): one pair of runs serves all.
"""

from __future__ import annotations

import csv
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from coinfeed.demo.monitoring import REPO_ROOT
from coinfeed.devcluster import LocalKafkaCluster

HOURS = 2


@dataclass(frozen=True)
class Run:
    run_dir: Path
    out_dir: Path
    output: str


def _demo(base: Path, security: str) -> Run:
    run_dir, out_dir = base / "run", base / "out"
    argv = [
        sys.executable, "-m", "coinfeed", "demo", "run",
        "--run-dir", str(run_dir), "--out", str(out_dir),
        "--hours", str(HOURS), "--speed", "0", "--free-ports", "--kafka-security", security,
    ]  # fmt: skip
    try:
        result = subprocess.run(argv, capture_output=True, text=True, timeout=900, cwd=REPO_ROOT)
    finally:
        subprocess.run(
            [sys.executable, "-m", "coinfeed", "demo", "down", "--run-dir", str(run_dir)],
            capture_output=True, timeout=300, cwd=REPO_ROOT,
        )  # fmt: skip
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    return Run(run_dir, out_dir, result.stdout + result.stderr)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Run]]:
    # One after the other: the machine is small, and each run shifts the sample to "now".
    yield {s: _demo(tmp_path_factory.mktemp(f"demo-{s}"), s) for s in ("plaintext", "sasl_ssl")}


def _rows(run: Run) -> list[dict[str, str]]:
    with (run.out_dir / "hourly.csv").open() as fh:
        return sorted(csv.DictReader(fh), key=lambda r: (r["coin"], r["hour_start"]))


def test_secured_run_used_tls_and_scram(runs: dict[str, Run]) -> None:
    cluster = LocalKafkaCluster.load(runs["sasl_ssl"].run_dir / "kafka")
    assert cluster is not None and cluster.spec.security == "sasl_ssl"
    users = {p.stem for p in (cluster.spec.run_dir / "secrets").glob("*.password")}
    # one user per client: no client used the brokers' own super user
    assert users == {
        "admin",
        "coinfeed-operator",
        "coinfeed-spark",
        "coinfeed-producer-btc",
        "coinfeed-producer-eth",
    }
    props = cluster.spec.config_path("broker-1").read_text(encoding="utf-8")
    assert "listeners=SASL_SSL://" in props and "PLAINTEXT://" not in props.replace("SASL_", "")


def test_hourly_table_is_the_same_as_plaintext(runs: dict[str, Run]) -> None:
    plain, secured = _rows(runs["plaintext"]), _rows(runs["sasl_ssl"])
    assert len(plain) == len(secured) == 2 * HOURS
    # Each run replays the sample as the latest hours: if an hour boundary passed between the
    # runs, every hour moves by the same whole hours, and nothing else may differ.
    first = {r["coin"]: r["hour_start"] for r in plain[::HOURS]}
    shift = datetime.fromisoformat(secured[0]["hour_start"]) - datetime.fromisoformat(
        first[secured[0]["coin"]]
    )
    assert shift % timedelta(hours=1) == timedelta(0)
    for p, s in zip(plain, secured, strict=True):
        assert (
            datetime.fromisoformat(s["hour_start"]) - datetime.fromisoformat(p["hour_start"])
            == shift
        )
        assert {k: v for k, v in p.items() if k != "hour_start"} == {
            k: v for k, v in s.items() if k != "hour_start"
        }


def test_no_password_in_logs_output_or_report(runs: dict[str, Run]) -> None:
    run = runs["sasl_ssl"]
    secrets = [
        p.read_text(encoding="utf-8").strip()
        for p in (run.run_dir / "kafka" / "secrets").glob("*.password")
    ]
    assert len(secrets) == 5 and all(secrets)
    files = [
        p
        for d in (run.run_dir / "logs", run.run_dir / "kafka" / "logs", run.out_dir)
        for p in d.rglob("*")
        if p.is_file()
    ]
    assert any(p.name.startswith("producer-") for p in files)  # the producers' logs were read
    for secret in secrets:
        assert secret not in run.output
        for p in files:
            assert secret.encode() not in p.read_bytes(), f"a password is in {p}"
