"""Status conditions: pure functions from observations to ``status.conditions``.

Conventions of Kubernetes API conditions: ``type``, ``status`` (True/False/Unknown), a CamelCase
``reason``, a ``message``, ``lastTransitionTime`` that changes only when ``status`` does, and the
``observedGeneration`` the condition describes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, Literal

TOPICS_READY: Final = "TopicsReady"
PRODUCERS_READY: Final = "ProducersReady"
# False (reason GeoBlocked) when a producer stopped because its source refuses this location.
SOURCE_AVAILABLE: Final = "SourceAvailable"
AGGREGATION_SCHEDULED: Final = "AggregationScheduled"
LAST_RUN_SUCCEEDED: Final = "LastRunSucceeded"
# True when another CoinFeed already follows this feed's coin: this one then owns nothing.
CONFLICT: Final = "Conflict"
READY: Final = "Ready"
ORDER: Final = (
    CONFLICT,
    TOPICS_READY,
    PRODUCERS_READY,
    SOURCE_AVAILABLE,
    AGGREGATION_SCHEDULED,
    LAST_RUN_SUCCEEDED,
    READY,
)

NOT_SUPPORTED: Final = "NotSupported"
COIN_CONFLICT: Final = "CoinConflict"
KAFKA_UNAVAILABLE: Final = "KafkaUnavailable"


@dataclass(frozen=True)
class Condition:
    type: str
    ok: bool
    reason: str
    message: str
    unknown: bool = False  # status Unknown (e.g. no run has finished yet): does not fail Ready

    @property
    def status(self) -> str:
        return "Unknown" if self.unknown else "True" if self.ok else "False"


def now_iso(now: datetime | None = None) -> str:
    return (now or datetime.now(UTC)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def ready_condition(parts: Sequence[Condition]) -> Condition:
    """Ready is True only when every other condition is; NotSupported wins as the reason."""
    failing = [c for c in parts if not c.ok and not c.unknown]
    if not failing:
        return Condition(
            READY, True, "AllReady", "topics, producers and aggregation are in place and healthy"
        )
    first = next((c for c in failing if c.reason == NOT_SUPPORTED), failing[0])
    return Condition(READY, False, first.reason, f"{first.type}: {first.message}")


def deployment_available(dep: Mapping[str, Any] | None) -> tuple[bool, str]:
    """Whether a producer Deployment has as many available replicas as it wants."""
    if dep is None:
        return False, "missing"
    spec = dep.get("spec") or {}
    status = dep.get("status") or {}
    want = int(spec.get("replicas", 1))
    gen = int((dep.get("metadata") or {}).get("generation", 0))
    if int(status.get("observedGeneration", 0)) < gen:
        return False, "rollout not yet observed"
    available = int(status.get("availableReplicas", 0) or 0)
    updated = int(status.get("updatedReplicas", 0) or 0)
    if want == 0:
        return True, "scaled to zero"
    if available >= want and updated >= want:
        return True, f"{available}/{want} available"
    return False, f"{available}/{want} available"


def producers_condition(
    deployments: Mapping[str, Mapping[str, Any] | None], suspended: bool
) -> Condition:
    """``deployments`` maps each desired Deployment name to what the API returned (or None)."""
    if suspended:
        return Condition(PRODUCERS_READY, False, "Suspended", "producers are scaled to zero")
    states = {name: deployment_available(dep) for name, dep in sorted(deployments.items())}
    bad = {n: why for n, (ok, why) in states.items() if not ok}
    if not bad:
        return Condition(
            PRODUCERS_READY, True, "ProducersAvailable", f"{len(states)} producer(s) available"
        )
    reason = "ProducerMissing" if "missing" in bad.values() else "ProducersUnavailable"
    return Condition(
        PRODUCERS_READY, False, reason, "; ".join(f"{n}: {why}" for n, why in bad.items())
    )


PRODUCER_CONTAINER: Final = "producer"  # desired.producer_deployment's container


def source_refusals(pods: Sequence[Mapping[str, Any]]) -> list[dict[str, str]]:
    """What producers that are not ready said when they stopped (``coinfeed.producer_status``
    termination messages), one per producer kind: e.g. GeoBlocked with the source's name."""
    from coinfeed.producer_status import parse_termination_message

    found: dict[str, tuple[str, dict[str, str]]] = {}
    for pod in pods:
        for cs in (pod.get("status") or {}).get("containerStatuses") or []:
            if cs.get("name") != PRODUCER_CONTAINER or cs.get("ready"):
                continue
            term = (cs.get("state") or {}).get("terminated") or (cs.get("lastState") or {}).get(
                "terminated"
            )
            said = parse_termination_message((term or {}).get("message"))
            if said is None:
                continue
            at = str((term or {}).get("finishedAt") or "")
            kind = said["producer"]
            if kind not in found or at > found[kind][0]:
                found[kind] = (at, said)
    return [found[k][1] for k in sorted(found)]


def source_condition(refusals: Sequence[Mapping[str, str]]) -> Condition:
    if not refusals:
        return Condition(
            SOURCE_AVAILABLE, True, "NotRefused", "no producer reported its source refusing it"
        )
    first = refusals[0]
    text = "; ".join(
        f"{r.get('producer')} source {r.get('source', '?')}: {r.get('message', '')}"
        for r in refusals
    )
    return Condition(SOURCE_AVAILABLE, False, first.get("reason", "SourceRefused"), text)


def aggregation_condition(
    cronjob: Mapping[str, Any] | None, schedule: str, suspended: bool = False
) -> Condition:
    """``cronjob``: the shared hourly CronJob that runs this feed's coin, if any."""
    if suspended:
        return Condition(
            AGGREGATION_SCHEDULED,
            False,
            "Suspended",
            "the feed is suspended: its coin is left out of the shared hourly job",
        )
    if cronjob is None:
        return Condition(
            AGGREGATION_SCHEDULED,
            False,
            "CronJobMissing",
            "no hourly CronJob runs this feed's coin yet",
        )
    if (cronjob.get("spec") or {}).get("suspend"):
        return Condition(
            AGGREGATION_SCHEDULED, False, "Suspended", "the hourly CronJob is suspended"
        )
    # Scheduled says only that runs will start; LastRunSucceeded says how the last one went.
    last = (cronjob.get("status") or {}).get("lastScheduleTime")
    started = f"; last started {last}" if last else "; not started yet"
    name = (cronjob.get("metadata") or {}).get("name", "")
    return Condition(
        AGGREGATION_SCHEDULED,
        True,
        "Scheduled",
        f"hourly aggregation runs at {schedule!r} (UTC) in shared CronJob {name}{started}",
    )


def merge_conditions(
    old: Sequence[Mapping[str, Any]] | None,
    new: Sequence[Condition],
    generation: int,
    now: datetime | None = None,
) -> list[dict[str, Any]]:
    """``status.conditions`` for ``new``, keeping ``lastTransitionTime`` where status is unchanged.

    Conditions of other types already present are kept (they are someone else's).
    """
    previous = {c.get("type"): c for c in (old or [])}
    stamp = now_iso(now)
    out: list[dict[str, Any]] = []
    seen = set()
    for cond in new:
        status = cond.status
        prev = previous.get(cond.type)
        changed = prev is None or prev.get("status") != status
        out.append(
            {
                "type": cond.type,
                "status": status,
                "reason": cond.reason,
                "message": cond.message,
                "lastTransitionTime": stamp if changed else prev["lastTransitionTime"],  # type: ignore[index]
                "observedGeneration": generation,
            }
        )
        seen.add(cond.type)
    out += [dict(c) for t, c in previous.items() if t not in seen]
    rank = {t: i for i, t in enumerate(ORDER)}
    out.sort(key=lambda c: (rank.get(c["type"], len(ORDER)), str(c["type"])))
    return out


def transitions(
    old: Sequence[Mapping[str, Any]] | None, new: Sequence[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """Conditions whose status or reason changed: each becomes one Event."""
    previous = {c.get("type"): c for c in (old or [])}
    return [
        dict(c)
        for c in new
        if (p := previous.get(c["type"])) is None
        or p.get("status") != c["status"]
        or p.get("reason") != c["reason"]
    ]


def transition_events(
    old: Sequence[Mapping[str, Any]] | None, new: Sequence[Mapping[str, Any]]
) -> list[tuple[Literal["Normal", "Warning"], str, str]]:
    """(type, reason, message) of the Events that changed conditions deserve: a Warning for each
    condition turning bad (False; for Conflict, True), Normal when the feed becomes Ready or takes
    over its coin. Unknown (nothing known yet) is not worth an Event."""
    previous = {c.get("type") for c in (old or [])}
    out: list[tuple[Literal["Normal", "Warning"], str, str]] = []
    for c in transitions(old, new):
        if c["type"] == READY:
            if c["status"] == "True":
                out.append(("Normal", "Ready", "feed is ready"))
        elif c["type"] == CONFLICT:
            if c["status"] == "True":
                out.append(("Warning", c["reason"], f"{c['type']}: {c['message']}"))
            elif c["type"] in previous:
                out.append(("Normal", c["reason"], c["message"]))
        elif c["status"] == "False":
            out.append(("Warning", c["reason"], f"{c['type']}: {c['message']}"))
    return out


def conflict_condition(owner: str | None, coin: str) -> Condition:
    """``Conflict``: True (reason CoinConflict) while ``owner`` (namespace/name of an older feed)
    follows the same coin; False once this feed owns it."""
    # Status True is the bad state here: this condition never feeds ready_condition.
    if owner:
        return Condition(
            CONFLICT,
            True,
            COIN_CONFLICT,
            f"coin {coin} is already followed by CoinFeed {owner} (created first); this feed owns "
            "nothing (no topics, producers or CronJob) until that one is deleted",
        )
    return Condition(CONFLICT, False, "CoinOwned", f"this feed owns coin {coin}")
