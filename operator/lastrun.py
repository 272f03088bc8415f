"""A feed's last hourly run, from the Jobs its shared CronJob started and their pods (pure).

The job writes a JSON summary as its container's termination message (``coinfeed.hourly_status``;
``FallbackToLogsOnError`` puts the log tail there when it could not), with one entry per coin.
The newest *finished* Job of the shared CronJob that ran the feed's coin decides the feed's
``LastRunSucceeded`` and ``status.lastRun`` from the coin's own entry: another coin's failure
(which fails the Job) never fails this feed. The newest hour the job wrote for the coin becomes
``status.lastHour``.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from coinfeed import hourly_status
from coinfeed.operator.conditions import LAST_RUN_SUCCEEDED, Condition, now_iso

CONTAINER: Final = "hourly"  # the CronJob's container (desired.hourly_cronjob)
JOB_NAME_LABEL: Final = "batch.kubernetes.io/job-name"  # set on a Job's pods by Kubernetes
_CAMEL = re.compile(r"^[A-Z][A-Za-z0-9]*$")
_MESSAGE_MAX = 1000
# A shared run of many failed coins may have had no room for this coin's error text.
_NO_ERROR_TEXT: Final = "no error message in the summary (the job's log has it)"


@dataclass(frozen=True)
class LastRun:
    job: str
    succeeded: bool
    finished_at: str  # RFC 3339, as the API wrote it
    reason: str  # CamelCase: Completed, or the Job's failure reason (BackoffLimitExceeded, ...)
    message: str  # what went wrong (or what was done), for people
    newest_hour: str | None  # newest hour written to `hourly`, from the summary

    def status(self) -> dict[str, Any]:
        """``status.lastRun`` (``finishedAt`` only when known: the CRD wants a date-time)."""
        out: dict[str, Any] = {
            "job": self.job,
            "result": "Succeeded" if self.succeeded else "Failed",
            "reason": self.reason,
            "message": self.message,
        }
        if self.finished_at:
            out["finishedAt"] = self.finished_at
        return out


def _finished(job: Mapping[str, Any]) -> tuple[str, Mapping[str, Any]] | None:
    """("Complete"|"Failed", that condition) when the Job has finished."""
    for c in (job.get("status") or {}).get("conditions") or []:
        if c.get("type") in ("Complete", "Failed") and c.get("status") == "True":
            return str(c["type"]), c
    return None


def _owned_by(obj: Mapping[str, Any], uid: str) -> bool:
    refs = (obj.get("metadata") or {}).get("ownerReferences") or []
    return any(r.get("uid") == uid for r in refs)


def job_coins(job: Mapping[str, Any]) -> set[str]:
    """The coins a Job runs: the ``--coin`` values (repeated or comma-separated) of its job
    container's command."""
    pod = (((job.get("spec") or {}).get("template") or {}).get("spec")) or {}
    out: set[str] = set()
    for c in pod.get("containers") or []:
        if c.get("name") != CONTAINER:
            continue
        args = [str(a) for a in (c.get("command") or []) + (c.get("args") or [])]
        for flag, value in itertools.pairwise(args):
            if flag == "--coin":
                out |= {p.strip().lower() for p in value.split(",") if p.strip()}
    return out


def newest_finished_job(
    jobs: Sequence[Mapping[str, Any]], cronjob_uid: str, coin: str | None = None
) -> Mapping[str, Any] | None:
    """The CronJob's Job (scheduled or ``kubectl create job --from=cronjob/...``) that finished
    last, among those that ran ``coin`` if given (a feed that joined a shared CronJob has no
    part in its earlier runs); Jobs still running do not count."""

    def finished_at(job: Mapping[str, Any]) -> tuple[str, str, str]:
        state = _finished(job)
        status = job.get("status") or {}
        meta = job.get("metadata") or {}
        when = (
            status.get("completionTime")
            if state and state[0] == "Complete" and status.get("completionTime")
            else (state[1].get("lastTransitionTime") if state else None)
        )
        return (
            str(when or meta.get("creationTimestamp", "")),
            str(meta.get("creationTimestamp", "")),
            str(meta.get("name", "")),
        )

    done = [
        j
        for j in jobs
        if _owned_by(j, cronjob_uid) and _finished(j) and (coin is None or coin in job_coins(j))
    ]
    return max(done, key=finished_at) if done else None


def termination_message(pods: Sequence[Mapping[str, Any]]) -> str | None:
    """The job container's termination message of the pod that ended last (a Job retries in new
    pods), or None when no pod has one."""
    found: list[tuple[str, str]] = []
    for pod in pods:
        statuses = (pod.get("status") or {}).get("containerStatuses") or []
        for cs in statuses:
            if cs.get("name") != CONTAINER:
                continue
            term = (cs.get("state") or {}).get("terminated") or (cs.get("lastState") or {}).get(
                "terminated"
            )
            if term and term.get("message"):
                found.append((str(term.get("finishedAt") or ""), str(term["message"])))
    return max(found)[1] if found else None


def parse_summary(message: str | None) -> dict[str, Any] | None:
    """The job's summary (either format, in the shape of the previous one; see
    ``coinfeed.hourly_status``), or None for anything else (e.g. a log tail after a crash)."""
    return hourly_status.parse(message)


def _newest_hour(summary: Mapping[str, Any] | None, coin: str) -> str | None:
    """The summary's newest hour for ``coin``, as ``YYYY-MM-DDTHH:00:00Z`` (None if absent/bad)."""
    if not summary:
        return None
    entry = (summary.get("coins") or {}).get(coin) or {}
    hour = entry.get("newest_hour") or (summary.get("newest_hours") or {}).get(coin)
    if not hour:
        return None
    try:
        when = datetime.fromisoformat(str(hour).replace("Z", "+00:00"))
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return now_iso(when.replace(minute=0, second=0, microsecond=0))


def _error_text(summary: Mapping[str, Any] | None, coin: str, raw: str | None) -> str:
    if summary is not None:
        entry = (summary.get("coins") or {}).get(coin) or {}
        text = entry.get("error") or summary.get("error") or ""
        return str(text)
    # No summary: the kubelet's fallback (the log's last lines), if any.
    return " ".join((raw or "").split()[-60:])


def _shorten(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _MESSAGE_MAX else text[: _MESSAGE_MAX - 1] + "…"


def _coin_entry(summary: Mapping[str, Any] | None, coin: str) -> Mapping[str, Any] | None:
    entry = ((summary or {}).get("coins") or {}).get(coin)
    return entry if isinstance(entry, Mapping) else None


def last_run(
    job: Mapping[str, Any] | None, pods: Sequence[Mapping[str, Any]], coin: str
) -> LastRun | None:
    """What the newest finished Job says about ``coin``'s part of the run (None when no run has
    finished). The coin's own summary entry decides; without one (the run could not start, or
    died before writing a summary) the Job's outcome is every coin's outcome."""
    if job is None:
        return None
    state = _finished(job)
    if state is None:
        return None
    kind, c = state
    name = str((job.get("metadata") or {}).get("name", ""))
    status = job.get("status") or {}
    raw = termination_message(pods)
    summary = parse_summary(raw)
    entry = _coin_entry(summary, coin)
    hour = _newest_hour(summary, coin)
    if kind == "Complete":
        when = str(status.get("completionTime") or c.get("lastTransitionTime") or "")
        reason = "Completed"
    else:
        when = str(c.get("lastTransitionTime") or "")
        reason = str(c.get("reason") or "")
        reason = reason if _CAMEL.match(reason) else "JobFailed"
    coin_ok = entry.get("ok") is not False if entry is not None else kind == "Complete"
    if coin_ok:
        if summary is None:
            done = "no summary in the termination message"
        elif entry is not None:
            done = f"newest hour written {hour or 'none'}"
            if "hours" in entry:  # a summary of very many coins may leave the counts out
                done = f"{entry['hours']} hour(s) processed, {done}"
        else:
            done = f"the summary does not mention coin {coin}"
        if kind != "Complete":
            done += f" (the shared run failed ({reason}) for other coins)"
        return LastRun(name, True, when, "Completed", _shorten(f"job {name}: {done}"), hour)
    if kind == "Complete":
        reason = "CoinFailed"  # the Job succeeded, this coin did not (a job that exits 0 anyway)
    error = _error_text(summary, coin, raw) or str(c.get("message") or "")
    message = f"job {name} failed ({reason}) for coin {coin}: {error or _NO_ERROR_TEXT}"
    # A run that failed after writing some hours still wrote them.
    return LastRun(name, False, when, reason, _shorten(message), hour)


def last_run_condition(run: LastRun | None) -> Condition:
    if run is None:
        return Condition(
            LAST_RUN_SUCCEEDED,
            False,
            "NoRunYet",
            "no run of the hourly job has finished yet",
            unknown=True,
        )
    return Condition(LAST_RUN_SUCCEEDED, run.succeeded, run.reason, run.message)


def newer_hour(previous: str | None, run: LastRun | None) -> str | None:
    """``status.lastHour``: the newest hour ever written (a backfill may write older ones)."""
    candidates = [h for h in (previous, run.newest_hour if run else None) if h]
    return max(candidates) if candidates else None
