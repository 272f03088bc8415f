"""Contract: the producer Deployments the operator writes, run as local processes, publish to the
feed's topics (the producer is the real coinfeed.producers code)."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import yaml

from coinfeed.kafka import make_consumer
from coinfeed.producer_env import KAFKA_BOOTSTRAP, METRICS_PORT
from coinfeed.schemas import PriceTick, Tweet, decode_record
from coinfeed.versions import REPO_ROOT
from localnode.operator_harness import get_json, kubectl, wait_for
from tests.integration.operator.conftest import OperatorFactory
from tests.support.ports import free_port


def _replay_file(sample: str, coin: str, out: Path) -> Path:
    """A few sample records re-labelled with this test's coin."""
    with gzip.open(REPO_ROOT / "samples" / sample, "rt") as f:
        lines = [json.loads(next(f)) for _ in range(5)]
    out.write_text("".join(json.dumps({**rec, "coin": coin}) + "\n" for rec in lines))
    return out


def _run_container_locally(
    dep: dict[str, Any], bootstrap: str, log: Path
) -> subprocess.Popen[bytes]:
    (container,) = dep["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e.get("value", "") for e in container["env"]}
    env[KAFKA_BOOTSTRAP] = bootstrap  # the in-cluster Service name means nothing on this host
    env[METRICS_PORT] = str(free_port())  # the container port may be taken on this host
    path = f"{REPO_ROOT / '.venv' / 'bin'}:{os.environ.get('PATH', '')}"
    with log.open("wb") as out:
        return subprocess.Popen(
            container["command"],
            env={"PATH": path, "HOME": os.environ.get("HOME", "/tmp"), **env},
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def test_producer_deployments_publish_to_the_feed_topics(
    admin: Path,
    kube_namespace: str,
    kafka_cluster: Any,
    start_operator: OperatorFactory,
    coin: str,
    tmp_path: Path,
) -> None:
    ns = kube_namespace
    start_operator(ns, kafka_cluster.bootstrap)
    doc = yaml.safe_load((REPO_ROOT / "manifests" / "coinfeed-btc.yaml").read_text())
    doc["spec"]["coin"] = coin
    doc["spec"]["prices"] = {
        "source": "replay",
        "pair": "BTC/USDT",
        "replayFile": str(_replay_file("btc-prices.jsonl.gz", coin, tmp_path / "p.jsonl")),
    }
    doc["spec"]["tweets"] = {
        "enabled": True,
        "source": "replay",
        "replayFile": str(_replay_file("btc-tweets.jsonl.gz", coin, tmp_path / "t.jsonl")),
    }
    kubectl(admin, "apply", "-n", ns, "-f", "-", input=yaml.safe_dump(doc))
    deps = {
        kind: wait_for(
            f"{kind} Deployment", lambda k=kind: get_json(admin, "deployment", f"btc-{k}", "-n", ns)
        )
        for kind in ("prices", "tweets")
    }
    wait_for(
        "topics",
        lambda: (
            (f := get_json(admin, "cf", "btc", "-n", ns))
            and f.get("status", {}).get("topicSummary") == "2/2"
        ),
    )
    procs = [
        _run_container_locally(deps[k], kafka_cluster.bootstrap, tmp_path / f"{k}.log")
        for k in deps
    ]
    try:
        for kind in ("prices", "tweets"):
            topic = f"coinfeed.{coin}.{kind}"
            consumer = make_consumer(
                topic, bootstrap=kafka_cluster.bootstrap, group_id=None, consumer_timeout_ms=1000
            )
            try:
                records: list[Any] = []

                def poll(c: Any = consumer, r: list[Any] = records) -> bool:
                    for batch in c.poll(timeout_ms=1000).values():
                        r.extend(batch)
                    return len(r) >= 1

                wait_for(f"records on {topic}", poll, timeout=90)
            finally:
                consumer.close()
            model: type[PriceTick] | type[Tweet] = PriceTick if kind == "prices" else Tweet
            rec = decode_record(model, records[0].value)
            assert rec.coin == coin
    finally:
        for p in procs:
            p.terminate()
            p.wait(timeout=30)
        for k in deps:
            print(
                f"--- {k} producer ---\n{(tmp_path / f'{k}.log').read_text(errors='replace')[-3000:]}"
            )
