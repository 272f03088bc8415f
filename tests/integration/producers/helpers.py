"""Run a producer as the operator would (a separate process, configured by env), and read topics."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from coinfeed.kafka import make_admin, make_consumer
from tests.support.ports import free_port

ROOT = Path(__file__).resolve().parents[3]


def create_topics(bootstrap: str, *topics: str, partitions: int = 3) -> None:
    from kafka.admin import NewTopic

    admin: Any = make_admin(bootstrap)
    try:
        admin.create_topics(
            [
                NewTopic(
                    t,
                    num_partitions=partitions,
                    replication_factor=3,
                    topic_configs={"min.insync.replicas": "2"},
                )
                for t in topics
            ]
        )
    finally:
        admin.close()


@dataclass
class Message:
    partition: int
    offset: int
    key: bytes
    value: bytes
    headers: dict[str, bytes]


def read_topic(bootstrap: str, topic: str, timeout: float = 60.0) -> list[Message]:
    """Every record now in ``topic`` (up to the end offsets at the time of the call)."""
    from kafka import TopicPartition

    consumer: Any = make_consumer(bootstrap=bootstrap, group_id=None)
    try:
        parts = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(parts)]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        ends = consumer.end_offsets(tps)
        out: list[Message] = []
        deadline = time.monotonic() + timeout
        while any(consumer.position(tp) < ends[tp] for tp in tps):
            assert time.monotonic() < deadline, f"timed out reading {topic}"
            for tp, msgs in consumer.poll(timeout_ms=500).items():
                out += [
                    Message(tp.partition, m.offset, m.key, m.value, dict(m.headers or []))
                    for m in msgs
                ]
        return out
    finally:
        consumer.close()


def wait_for(
    cond: Callable[[], bool], timeout: float, what: str, proc: ProducerProcess | None = None
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        if proc is not None and proc.proc.poll() is not None:
            raise AssertionError(
                f"producer exited ({proc.proc.returncode}) while waiting for {what}:\n{proc.log_text()[-3000:]}"
            )
        time.sleep(0.2)
    tail = proc.log_text()[-3000:] if proc else ""
    raise AssertionError(f"timed out waiting for {what}\n{tail}")


class ProducerProcess:
    """``python -m coinfeed producer <kind>`` with only the given environment (plus PATH etc.)."""

    def __init__(
        self, kind: str, env: dict[str, str], log_path: Path, args: list[str] | None = None
    ) -> None:
        self.port = free_port()
        self.log_path = log_path
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("COINFEED_")}
        full_env.update(env)
        full_env["COINFEED_METRICS_PORT"] = str(self.port)
        full_env["PYTHONPATH"] = str(ROOT)
        self._log = log_path.open("wb")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "coinfeed",
                "producer",
                kind,
                "--metrics-host",
                "127.0.0.1",
                *(args or []),
            ],
            env=full_env,
            cwd=ROOT,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def get(self, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=5) as resp:
                return resp.status, resp.read().decode()
        except urllib.error.HTTPError as err:
            return err.code, err.read().decode()
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return 0, ""

    def metric(self, name: str, **labels: str) -> float:
        status, text = self.get("/metrics")
        if status != 200:
            return 0.0
        total = 0.0
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                    total += s.value
        return total

    def stop(self, timeout: float = 60.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        finally:
            self._log.close()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self._log.close()

    def log_text(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors="replace")

    def log_records(self) -> list[dict[str, Any]]:
        out = []
        for line in self.log_text().splitlines():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                out.append({"msg": line, "unparsed": True})
        return out
