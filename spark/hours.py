"""Which hours a run processes, and which Kafka timestamps it reads for them (pure functions).

An hour ``H`` is the half-open event-time interval ``[H, H+1h)``. A record belongs to the hour of
its event time (``ts`` / ``created_at``); it may arrive in Kafka up to ``grace`` after the hour ends
(the CronJob runs five past the hour), so hour ``H`` reads Kafka timestamps ``[H, H+1h+grace)`` and
is *closed* once ``now >= H+1h+grace``. Because each hour's result depends only on that fixed
window, processing an hour alone, with its neighbours, or again later gives the same rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

HOUR: Final = timedelta(hours=1)
DEFAULT_GRACE: Final = timedelta(minutes=5)
KAFKA_RETENTION: Final = timedelta(hours=24)


class HourRangeError(ValueError):
    """An hour range or hour string the job cannot use."""


def floor_hour(value: datetime) -> datetime:
    """Start of the UTC hour containing ``value`` (which must be timezone-aware)."""
    if value.tzinfo is None:
        raise HourRangeError(f"timestamp {value.isoformat()} has no timezone; use UTC")
    return value.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def parse_hour(text: str) -> datetime:
    """``2024-01-01T05`` (or any ISO-8601 time within that hour, UTC unless it says otherwise)."""
    raw = text.strip()
    try:
        if len(raw) == 13 and raw[10] in "T ":
            value = datetime.strptime(raw[:10] + "T" + raw[11:], "%Y-%m-%dT%H")
        else:
            value = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise HourRangeError(
            f"invalid hour {text!r}: expected UTC like 2024-01-01T05 or 2024-01-01T05:00:00Z"
        ) from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return floor_hour(value)


def parse_instant(text: str) -> datetime:
    """An ISO-8601 instant (UTC unless it says otherwise), e.g. for ``--now``."""
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise HourRangeError(
            f"invalid time {text!r}: expected ISO-8601, e.g. 2024-01-02T03:05Z"
        ) from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def is_closed(hour: datetime, now: datetime, grace: timedelta = DEFAULT_GRACE) -> bool:
    """True once every record of ``hour`` (including late ones within ``grace``) is in Kafka."""
    return hour + HOUR + grace <= now


def newest_closed_hour(now: datetime, grace: timedelta = DEFAULT_GRACE) -> datetime:
    return floor_hour(now - grace) - HOUR


def hour_range(first: datetime, last: datetime) -> list[datetime]:
    """Every hour from ``first`` to ``last``, both included."""
    first, last = floor_hour(first), floor_hour(last)
    if last < first:
        raise HourRangeError(
            f"--to {last:%Y-%m-%dT%H} is before --from {first:%Y-%m-%dT%H}: nothing to process"
        )
    count = int((last - first) / HOUR) + 1
    return [first + i * HOUR for i in range(count)]


def lookback_hours(now: datetime, n: int, grace: timedelta = DEFAULT_GRACE) -> list[datetime]:
    """The ``n`` most recent closed hours, oldest first."""
    if n < 1:
        raise HourRangeError(f"--lookback-hours must be at least 1, got {n}")
    newest = newest_closed_hour(now, grace)
    return hour_range(newest - (n - 1) * HOUR, newest)


def gap_hours(
    now: datetime,
    existing: Iterable[datetime],
    retention: timedelta = KAFKA_RETENTION,
    grace: timedelta = DEFAULT_GRACE,
) -> list[datetime]:
    """Closed hours still fully inside Kafka's retention that have no ``hourly`` partition yet.

    Only hours whose whole read window is younger than the retention are candidates: an older hour
    may have lost records to retention, and re-processing it would overwrite good lake data with a
    partial hour.
    """
    oldest = floor_hour(now - retention) + HOUR
    newest = newest_closed_hour(now, grace)
    if newest < oldest:
        return []
    have = {floor_hour(h) for h in existing}
    return [h for h in hour_range(oldest, newest) if h not in have]


def plan_hours(
    requested: Sequence[datetime], gaps: Iterable[datetime], now: datetime, grace: timedelta
) -> tuple[list[datetime], list[datetime]]:
    """(hours to process oldest first, requested hours skipped because they are not closed)."""
    todo = sorted(
        {floor_hour(h) for h in [*requested, *gaps] if is_closed(floor_hour(h), now, grace)}
    )
    skipped = sorted({floor_hour(h) for h in requested if not is_closed(floor_hour(h), now, grace)})
    return todo, skipped


def group_by_plan(
    plans: Mapping[str, Sequence[datetime]],
) -> list[tuple[list[datetime], list[str]]]:
    """``(hours, coins)`` for each distinct plan of ``plans`` (coin -> hours to process), in the
    order coins first appear: coins with the same hours can share one read, one pass, one write."""
    groups: dict[tuple[datetime, ...], list[str]] = {}
    for coin, hours in plans.items():
        groups.setdefault(tuple(sorted({floor_hour(h) for h in hours})), []).append(coin)
    return [(list(hours), coins) for hours, coins in groups.items()]


@dataclass(frozen=True)
class ReadWindow:
    """Kafka timestamps ``[start, end)`` to read: contiguous hours share one read."""

    start: datetime
    end: datetime

    @property
    def start_ms(self) -> int:
        return int(self.start.timestamp() * 1000)

    @property
    def end_ms(self) -> int:
        return int(self.end.timestamp() * 1000)


def lateness_bound(max_lateness: timedelta, retention: timedelta, grace: timedelta) -> timedelta:
    """How late (after its hour ends) a record may arrive and still count: ``--max-lateness-hours``,
    but never so late that its hour's first records may have left Kafka (retention less the hour
    itself), and never less than ``grace``."""
    return max(grace, min(max_lateness, retention - HOUR))


def oldest_retained_hour(now: datetime, retention: timedelta = KAFKA_RETENTION) -> datetime:
    """The oldest hour whose whole read window is still inside Kafka's retention."""
    return floor_hour(now - retention) + HOUR


def read_windows(
    hours: Sequence[datetime],
    grace: timedelta = DEFAULT_GRACE,
    lateness: timedelta | None = None,
    now: datetime | None = None,
) -> list[ReadWindow]:
    """Merge each hour's window ``[H, H+1h+max(grace, lateness))`` with its neighbours' where they
    overlap; with late data the window ends at ``now`` at most (nothing newer exists)."""
    windows: list[ReadWindow] = []
    for h in sorted({floor_hour(h) for h in hours}):
        start, end = h, h + HOUR + max(grace, lateness or grace)
        if now is not None:
            end = max(min(end, now), h + HOUR + grace)
        if windows and start <= windows[-1].end:
            windows[-1] = ReadWindow(windows[-1].start, max(end, windows[-1].end))
        else:
            windows.append(ReadWindow(start, end))
    return windows


def subtract_windows(windows: Sequence[ReadWindow], have: Sequence[ReadWindow]) -> list[ReadWindow]:
    """The parts of ``windows`` not covered by ``have``: what an extra read must still fetch."""
    out: list[ReadWindow] = []
    for w in windows:
        pieces = [(w.start, w.end)]
        for h in have:
            pieces = [
                part
                for start, end in pieces
                for part in ((start, min(end, h.start)), (max(start, h.end), end))
                if part[0] < part[1]
            ]
        out += [ReadWindow(start, end) for start, end in pieces]
    return out


def hour_label(hour: datetime) -> tuple[str, int]:
    """The ``date`` and ``hour`` partition values of an hour start."""
    h = floor_hour(hour)
    return h.strftime("%Y-%m-%d"), h.hour
