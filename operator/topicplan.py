"""Decide what to do to Kafka: compare desired topics with what the cluster reports.

Pure: the Kafka applier observes, this module plans, the applier executes the plan.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from coinfeed.operator.desired import DesiredTopic


@dataclass(frozen=True)
class ObservedTopic:
    name: str
    partitions: int
    replication_factor: int
    config: Mapping[str, str] = field(default_factory=dict)


@dataclass
class TopicPlan:
    create: list[DesiredTopic] = field(default_factory=list)
    grow: dict[str, int] = field(default_factory=dict)  # topic -> new total partition count
    alter: dict[str, dict[str, str]] = field(default_factory=dict)  # topic -> keys to set
    unsupported: list[str] = field(default_factory=list)  # what Kafka cannot do, as messages

    @property
    def empty(self) -> bool:
        return not (self.create or self.grow or self.alter)

    def describe(self) -> list[str]:
        """One line per change, for Events and logs."""
        out = [
            f"create topic {t.name} ({t.partitions} partitions, RF {t.replication_factor})"
            for t in self.create
        ]
        out += [f"grow topic {n} to {p} partitions" for n, p in self.grow.items()]
        out += [
            f"set {', '.join(f'{k}={v}' for k, v in sorted(c.items()))} on topic {n}"
            for n, c in self.alter.items()
        ]
        return out


def plan_topics(
    desired: Sequence[DesiredTopic],
    observed: Mapping[str, ObservedTopic],
    live_brokers: int,
) -> TopicPlan:
    plan = TopicPlan()
    for want in desired:
        have = observed.get(want.name)
        if have is None:
            if want.replication_factor > live_brokers:
                plan.unsupported.append(
                    f"topic {want.name}: replication factor {want.replication_factor} exceeds "
                    f"the {live_brokers} live broker(s)"
                )
            else:
                plan.create.append(want)
            continue
        if have.replication_factor != want.replication_factor:
            plan.unsupported.append(
                f"topic {want.name}: replication factor is {have.replication_factor}, wanted "
                f"{want.replication_factor}; changing it needs a partition reassignment"
            )
        if have.partitions < want.partitions:
            plan.grow[want.name] = want.partitions
        elif have.partitions > want.partitions:
            plan.unsupported.append(
                f"topic {want.name}: has {have.partitions} partitions, wanted "
                f"{want.partitions}; Kafka cannot remove partitions"
            )
        changed = {k: v for k, v in want.config.items() if have.config.get(k) != v}
        if changed:
            plan.alter[want.name] = changed
    return plan


def topic_in_sync(want: DesiredTopic, have: ObservedTopic | None) -> bool:
    return (
        have is not None
        and have.partitions == want.partitions
        and have.replication_factor == want.replication_factor
        and all(have.config.get(k) == v for k, v in want.config.items())
    )
