"""Do (Kafka): observe the feed's topics, then execute a :class:`TopicPlan`.

One admin client per operator process, used under a lock (kafka-python clients are not meant to
be shared between threads without one); it is rebuilt after a connection failure.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Any, TypeVar

from coinfeed.kafka import make_admin
from coinfeed.kafka_security import KafkaSecurity
from coinfeed.operator.desired import DesiredTopic
from coinfeed.operator.topicplan import ObservedTopic, TopicPlan, plan_topics

log = logging.getLogger(__name__)
T = TypeVar("T")


def call_with_deadline(fn: Callable[[], T], seconds: float) -> T:
    """Run ``fn`` on a daemon thread and wait at most ``seconds``: a Kafka client waiting on dead
    brokers must not hold the reconcile (and its lock) forever."""
    fut: Future[T] = Future()

    def target() -> None:
        try:
            fut.set_result(fn())
        except BaseException as exc:
            fut.set_exception(exc)

    threading.Thread(target=target, name="kafka-call", daemon=True).start()
    try:
        return fut.result(timeout=seconds)
    except FutureTimeout:
        raise TimeoutError(f"no answer from Kafka within {seconds:.0f}s") from None


class KafkaUnavailableError(RuntimeError):
    """Kafka could not be reached or answered with an error; the message says which."""


@dataclass
class Observation:
    live_brokers: int
    topics: dict[str, ObservedTopic]


def parse_topic_metadata(topics: Iterable[Mapping[str, Any]]) -> dict[str, ObservedTopic]:
    """``describe_topics`` output -> observed partitions and RF (unknown topics are left out)."""
    out: dict[str, ObservedTopic] = {}
    for t in topics:
        if t.get("error_code", 0) != 0:
            continue  # UNKNOWN_TOPIC_OR_PARTITION (3) and friends: the topic does not exist
        parts = t.get("partitions") or []
        rf = max((len(p.get("replica_nodes") or []) for p in parts), default=0)
        out[str(t["name"])] = ObservedTopic(str(t["name"]), len(parts), rf, {})
    return out


class KafkaTopics:
    def __init__(
        self,
        bootstrap: str,
        timeout_seconds: float = 10.0,
        security: KafkaSecurity | None = None,
    ) -> None:
        self.bootstrap = bootstrap
        self.security = security  # None: from the COINFEED_KAFKA_* variables
        self.timeout_ms = int(timeout_seconds * 1000)
        self.deadline = 2 * timeout_seconds
        self.settle_seconds = timeout_seconds / 2
        self._lock = threading.Lock()
        self._admin: Any = None

    def _client(self) -> Any:
        if self._admin is None:
            self._admin = make_admin(
                self.bootstrap,
                security=self.security,
                request_timeout_ms=self.timeout_ms,
                bootstrap_timeout_ms=self.timeout_ms,
                reconnect_backoff_max_ms=2000,
                client_id="coinfeed-operator",
            )
        return self._admin

    def _reset(self) -> None:
        admin, self._admin = self._admin, None
        if admin is not None:
            # Closing a client stuck on dead brokers can block too: do it on the side.
            threading.Thread(target=self._close_quietly, args=(admin,), daemon=True).start()

    @staticmethod
    def _close_quietly(admin: Any) -> None:
        try:
            admin.close()
        except Exception:  # closing a broken client must not hide the first error
            log.debug("closing the Kafka admin client failed", exc_info=True)

    def close(self) -> None:
        with self._lock:
            self._reset()

    def _observe(self, names: Sequence[str]) -> Observation:
        from kafka.admin import ConfigResource, ConfigResourceType

        admin = self._client()
        brokers = len(admin.describe_cluster().get("brokers") or [])
        topics = parse_topic_metadata(admin.describe_topics(list(names)))
        if topics:
            resources = [ConfigResource(ConfigResourceType.TOPIC, n) for n in topics]
            described = admin.describe_configs(resources, config_filter="all").get("topic", {})
            for name, cfg in described.items():
                if name in topics:
                    values = {
                        k: str(v.get("value")) for k, v in cfg.items() if v.get("value") is not None
                    }
                    old = topics[name]
                    topics[name] = ObservedTopic(
                        name, old.partitions, old.replication_factor, values
                    )
        return Observation(brokers, topics)

    def _execute(self, plan: TopicPlan) -> None:
        from kafka.admin import ConfigResource, ConfigResourceType
        from kafka.errors import TopicAlreadyExistsError

        admin = self._client()
        if plan.create:
            new = {
                t.name: {
                    "num_partitions": t.partitions,
                    "replication_factor": t.replication_factor,
                    "configs": dict(t.config),
                }
                for t in plan.create
            }
            # Created meanwhile (another reconcile, a restart): that is success.
            with contextlib.suppress(TopicAlreadyExistsError):
                admin.create_topics(new, timeout_ms=self.timeout_ms)
        if plan.grow:
            admin.create_partitions(dict(plan.grow), timeout_ms=self.timeout_ms)
        if plan.alter:
            admin.alter_configs(
                [ConfigResource(ConfigResourceType.TOPIC, n, c) for n, c in plan.alter.items()],
                incremental=True,
            )

    def _observe_settled(
        self, desired: Sequence[DesiredTopic], names: Sequence[str]
    ) -> Observation:
        """Observe after a change, waiting briefly until the brokers' metadata shows it.

        Metadata propagates to every broker asynchronously: read at once after create_partitions
        it may still show the old count, and the status would say "not ready" until the next
        drift check. Bounded by ``settle_seconds``; what is still pending after that is reported.
        """
        deadline = time.monotonic() + self.settle_seconds
        while True:
            after = call_with_deadline(lambda: self._observe(names), self.deadline)
            if plan_topics(desired, after.topics, after.live_brokers).empty:
                return after
            if time.monotonic() >= deadline:
                return after
            time.sleep(0.25)

    def reconcile(self, desired: Sequence[DesiredTopic]) -> tuple[TopicPlan, Observation]:
        """Plan and apply; returns the plan and the observation after applying it."""
        names = [t.name for t in desired]
        with self._lock:
            try:
                before = call_with_deadline(lambda: self._observe(names), self.deadline)
                plan = plan_topics(desired, before.topics, before.live_brokers)
                if plan.empty:
                    return plan, before
                call_with_deadline(lambda: self._execute(plan), self.deadline)
                return plan, self._observe_settled(desired, names)
            except Exception as exc:
                self._reset()
                raise KafkaUnavailableError(f"{type(exc).__name__}: {exc}") from exc

    def delete(self, names: Sequence[str]) -> list[str]:
        """Delete the topics that exist; returns those deleted."""
        with self._lock:
            try:
                existing = list(
                    call_with_deadline(lambda: self._observe(names), self.deadline).topics
                )
                if existing:
                    call_with_deadline(
                        lambda: self._client().delete_topics(existing, timeout_ms=self.timeout_ms),
                        self.deadline,
                    )
                return existing
            except Exception as exc:
                self._reset()
                raise KafkaUnavailableError(f"{type(exc).__name__}: {exc}") from exc
