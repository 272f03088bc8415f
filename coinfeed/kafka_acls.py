"""Which Kafka ACLs each coinfeed client needs, and nothing more (pure), plus one thin applier.

A producer writes (and, to resume, reads) its own coin's two topics only, so a producer that is
compromised or misconfigured cannot write another coin's records. The Spark reader reads every
coinfeed topic; the operator manages them. The brokers run with ``allow.everyone.if.no.acl.found
=false``, so anything not granted here is refused.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

from coinfeed.topics import TOPIC_KINDS, TOPIC_PREFIX, topic_name

ResourceKind = Literal["TOPIC", "GROUP", "CLUSTER"]
Pattern = Literal["LITERAL", "PREFIXED"]

# spark-sql-kafka names its consumer groups "spark-kafka-relation-<uuid>-..." for batch reads.
SPARK_GROUP_PREFIX: Final = "spark-kafka-"


@dataclass(frozen=True)
class Grant:
    resource: ResourceKind
    name: str
    pattern: Pattern
    operations: tuple[str, ...]


def producer_grants(coin: str) -> list[Grant]:
    """WRITE its own coin's topics; READ them too, because a producer resumes from the last
    record it stored. (Idempotent producing needs no cluster grant since Kafka 3.0: WRITE on a
    topic allows InitProducerId.)"""
    return [
        Grant("TOPIC", topic_name(coin, kind), "LITERAL", ("WRITE", "READ", "DESCRIBE"))
        for kind in TOPIC_KINDS
    ]


def reader_grants() -> list[Grant]:
    """The hourly job: read every coinfeed topic, under its own generated consumer groups."""
    return [
        Grant("TOPIC", f"{TOPIC_PREFIX}.", "PREFIXED", ("READ", "DESCRIBE")),
        Grant("GROUP", SPARK_GROUP_PREFIX, "PREFIXED", ("READ",)),
    ]


def operator_grants() -> list[Grant]:
    """The operator: create, configure, grow and (with deletionPolicy Delete) delete topics."""
    ops = ("CREATE", "ALTER", "ALTER_CONFIGS", "DESCRIBE", "DESCRIBE_CONFIGS", "DELETE")
    return [
        Grant("TOPIC", f"{TOPIC_PREFIX}.", "PREFIXED", ops),
        Grant("CLUSTER", "kafka-cluster", "LITERAL", ("DESCRIBE",)),
    ]


def to_acls(user: str, grants: Iterable[Grant]) -> list[Any]:
    """kafka-python ``ACL`` objects, one per operation, allowing ``User:<user>`` from any host."""
    from kafka.admin import (
        ACL,
        ACLOperation,
        ACLPermissionType,
        ACLResourcePatternType,
        ResourcePattern,
        ResourceType,
    )

    out = []
    for g in grants:
        pattern = ResourcePattern(
            ResourceType[g.resource], g.name, ACLResourcePatternType[g.pattern]
        )
        for op in g.operations:
            out.append(ACL(f"User:{user}", "*", ACLOperation[op], ACLPermissionType.ALLOW, pattern))
    return out


def apply_acls(admin: Any, user: str, grants: Sequence[Grant]) -> None:
    """Create the ACLs (creating an existing one is a no-op in Kafka); raise on any failure."""
    result = admin.create_acls(to_acls(user, grants))
    failed = result.get("failed") or []
    if failed:
        raise RuntimeError(f"creating ACLs for {user} failed: {failed}")
