"""Replay files: JSON lines (optionally gzip) of schema records, and the pure pacing arithmetic."""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO, Final, Literal

from coinfeed.producers.batch import (
    WRONG_COIN,
    Batch,
    BodyError,
    Record,
    Skip,
    decode_json_body,
    skip_for,
)
from coinfeed.schemas import RECORD_MODELS, RecordError, validate_record
from coinfeed.topics import TopicKind

Rebase = Literal["none", "start", "end", "hour"]


def open_lines(path: Path) -> IO[bytes]:
    """Binary line reader; gzip when the name ends in .gz (decoding stays per line)."""
    if path.suffix == ".gz":
        return gzip.open(path, "rb")  # type: ignore[return-value]
    return path.open("rb")


def iter_lines(path: Path) -> Iterator[tuple[int, bytes]]:
    with open_lines(path) as fh:
        for lineno, line in enumerate(fh, start=1):
            if line.strip():
                yield lineno, line


def event_time(record: Record) -> datetime:
    return record.ts if record.kind == "prices" else record.created_at  # type: ignore[union-attr]


def with_event_time(record: Record, when: datetime) -> Record:
    name = "ts" if record.kind == "prices" else "created_at"
    return record.model_copy(update={name: when})


def parse_line(kind: TopicKind, coin: str, lineno: int, line: bytes) -> Batch:
    """One replay line -> a record, or a skip naming the line and the problem."""
    model = RECORD_MODELS[kind]
    try:
        data = decode_json_body(line)
    except BodyError as err:
        return Batch(skips=[Skip(err.skip.reason, f"line {lineno}: {err.skip.detail}")])
    try:
        record = validate_record(model, data)
    except RecordError as err:
        return Batch(skips=[skip_for(err, f"line {lineno}")])
    if record.coin != coin:  # type: ignore[attr-defined]
        return Batch(
            skips=[Skip(WRONG_COIN, f"line {lineno}: coin {record.coin!r}, feed is {coin!r}")]  # type: ignore[attr-defined]
        )
    return Batch(records=[record])  # type: ignore[list-item]


def scan_span(kind: TopicKind, coin: str, path: Path) -> tuple[datetime, datetime] | None:
    """First and last event time in file order (the span the replay covers), or None if empty."""
    first: datetime | None = None
    last: datetime | None = None
    for lineno, line in iter_lines(path):
        batch = parse_line(kind, coin, lineno, line)
        for rec in batch.records:
            t = event_time(rec)
            first = first or t
            last = t
    return (first, last) if first is not None and last is not None else None


HOUR: Final = timedelta(hours=1)


def _floor_hour(t: datetime) -> datetime:
    return t.replace(minute=0, second=0, microsecond=0)


def rebase_shift(mode: Rebase, span: tuple[datetime, datetime] | None, now: datetime) -> timedelta:
    """How far to move every event time: ``start`` puts the first record at now, ``end`` the last;
    ``hour`` moves by whole hours so the file's hours end with the hour before now's (the newest
    closed hour). Whole hours keep every record in the same minute of its hour, so each replayed
    hour aggregates exactly like the file's hour: what a replay feed on a cluster relies on.

    ``hour`` counts from the file's first hour: the span is rounded up to whole hours, so files
    covering the same hours move together even if one has a record on the closing boundary (a
    price tick stamped 00:00 that closes the last minute) and another does not.
    """
    if mode == "none" or span is None:
        return timedelta(0)
    if mode == "hour":
        first_hour = _floor_hour(span[0])
        hours = -((first_hour - span[1]) // HOUR)  # ceil((last - first_hour) / 1 h)
        return _floor_hour(now) - max(hours, 1) * HOUR - first_hour
    anchor = span[0] if mode == "start" else span[1]
    return now - anchor


def due_offset(first_event: datetime, event: datetime, speed: float) -> float:
    """Seconds after the replay start at which a record is due; speed 0 means at once."""
    if speed <= 0:
        return 0.0
    return max(0.0, (event - first_event).total_seconds() / speed)


def dump_line(record: Record) -> bytes:
    """The replay file format is exactly the wire format, one record per line."""
    return record.to_json() + b"\n"
