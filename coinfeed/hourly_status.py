"""The hourly job's last word to the operator: each coin's outcome, as its container's termination
message (pure, standard library only: the job writes it, the operator reads it back from the
pod's status; both images import it).

The kubelet keeps at most 4096 bytes of a termination message, and one shared run serves many
coins, so the per-coin part is a compact string rather than a JSON object per coin (format 2)::

    {"summary":"hourly","v":2,"ok":false,
     "coins":"btc:2026010112:3,eth::0,xrp!0:2026010112:5:1:7",
     "errors":["KafkaException: broker down"]}

One token per coin, ``<coin>[!<error>]:<newest hour>[:<hours>[:<amended>:<late>]]``:

- ``!`` marks a failed coin; the digits after it index ``errors`` (distinct texts, shortened: the
  job's log has each coin's full error and traceback). No digits: its text did not fit.
- the newest hour written to ``hourly`` as ``YYYYMMDDHH`` (UTC), empty when none;
- hours processed, then hours amended and late records merged (only when not both 0).

Coin symbols are ``[a-z0-9]`` (``coinfeed.topics``), so ``!``, ``:`` and ``,`` cannot occur in
them. When everything does not fit, the details go first (long error texts are shortened, then
the counts and the texts dropped); the *core* (each coin's name, ok-state and newest hour) always
fits for up to :data:`MAX_COINS` coins, which bounds the operator's coins per shared CronJob.

:func:`parse` also reads format 1 (a JSON object per coin, ``coins: {coin: {ok, hours,
newest_hour, error}}``, or ``newest_hours`` when truncated), which pods of the previous version
may still hold, and returns either as that shape.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from coinfeed.topics import COIN_MAX_LENGTH

# The kubelet keeps at most 4096 bytes of a container's termination message; the job writes a
# little less (margin for a runtime that counts a trailing newline or the like).
TERMINATION_MESSAGE_LIMIT: Final = 4096
MESSAGE_LIMIT: Final = TERMINATION_MESSAGE_LIMIT - 96
VERSION: Final = 2
HOUR_FORMAT: Final = "%Y%m%d%H"  # compact, in the message
STATUS_HOUR_FORMAT: Final = "%Y-%m-%dT%H:%M:%SZ"  # as the operator writes status.lastHour
_HOUR_LEN: Final = len(datetime(2000, 1, 1, tzinfo=UTC).strftime(HOUR_FORMAT))
_ERROR_WIDTHS: Final = (1000, 300, 100, 40)
_TOKEN: Final = re.compile(r"^([a-z0-9]+)(?:!(\d*))?:(\d{10})?(?::(\d+)(?::(\d+):(\d+))?)?$")


@dataclass(frozen=True)
class CoinOutcome:
    """What one run did for one coin, as far as the operator needs it."""

    ok: bool
    newest_hour: datetime | None = None  # newest hour written to `hourly` (a failed coin may
    # have written some before failing, e.g. in the metrics push)
    hours: int = 0  # hours processed
    amended: int = 0  # earlier hours recomputed for late records
    late: int = 0  # late records merged
    error: str = ""  # why it failed (full text: it is shortened here)


def _core_token(coin: str, o: CoinOutcome, error_index: int | None) -> str:
    mark = "" if o.ok else "!" + ("" if error_index is None else str(error_index))
    hour = o.newest_hour.astimezone(UTC).strftime(HOUR_FORMAT) if o.newest_hour else ""
    return f"{coin}{mark}:{hour}"


def _token(coin: str, o: CoinOutcome, error_index: int | None, detail: bool) -> str:
    token = _core_token(coin, o, error_index)
    if not detail:
        return token
    token += f":{o.hours}"
    return token + (f":{o.amended}:{o.late}" if o.amended or o.late else "")


# The longest core token (coin of the longest symbol, failed with an error index, an hour) with
# its separator. Error indexes appear only with texts, which go before the core has to shrink, so
# a core-only message has none.
CORE_TOKEN_MAX: Final = COIN_MAX_LENGTH + len("!:") + _HOUR_LEN + len(",")


def _shorten(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _dumps(data: Mapping[str, Any]) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"))


def _envelope(ok: bool, coins: str) -> dict[str, Any]:
    return {"summary": "hourly", "v": VERSION, "ok": ok, "coins": coins}


def max_coins(limit: int = MESSAGE_LIMIT) -> int:
    """How many coins' core always fits in ``limit`` bytes, whatever their outcome: what the
    core-only message of no coin takes, and :data:`CORE_TOKEN_MAX` per coin."""
    return (limit - len(_dumps(_envelope(False, "")).encode())) // CORE_TOKEN_MAX


MAX_COINS: Final = max_coins()


def _candidates(n_texts: int) -> Iterator[tuple[bool, int, int, int]]:
    """(counts?, error text width, distinct texts kept, fatal text width), best first."""
    for width in _ERROR_WIDTHS:
        yield True, width, n_texts, width
    for width in _ERROR_WIDTHS[-2:]:
        yield False, width, n_texts, width
    for keep in range(n_texts - 1, -1, -1):
        yield False, _ERROR_WIDTHS[-1], keep, _ERROR_WIDTHS[-1]
    yield False, 0, 0, 0  # the core alone


def encode(outcomes: Mapping[str, CoinOutcome], fatal: str = "", limit: int = MESSAGE_LIMIT) -> str:
    """The termination message of a run: at most ``limit`` bytes of JSON, ``ok`` only when no
    coin failed and the run did not fail as a whole (``fatal``: why it could not start)."""
    ok = not fatal and all(o.ok for o in outcomes.values())
    texts = list(dict.fromkeys(o.error for o in outcomes.values() if not o.ok and o.error))
    index = {text: i for i, text in enumerate(texts)}
    for detail, width, keep, fatal_width in _candidates(len(texts)):
        tokens = []
        for coin, o in outcomes.items():
            i = index.get(o.error) if not o.ok else None
            tokens.append(_token(coin, o, i if i is not None and i < keep else None, detail))
        data = _envelope(ok, ",".join(tokens))
        if keep:
            data["errors"] = [_shorten(t, width) for t in texts[:keep]]
        if fatal and fatal_width:
            data["error"] = _shorten(fatal, fatal_width)
        text = _dumps(data)
        if len(text.encode()) <= limit:
            return text
    # More than MAX_COINS coins: keep the verdict and as many coins' core as fit.
    tokens = [_core_token(coin, o, None) for coin, o in outcomes.items()]
    while True:
        text = _dumps(_envelope(ok, ",".join(tokens)) | {"truncated": True})
        if len(text.encode()) <= limit or not tokens:
            return text
        tokens = tokens[: len(tokens) // 2]


def _hour(compact: str | None) -> str | None:
    if not compact:
        return None
    when = datetime.strptime(compact, HOUR_FORMAT).replace(tzinfo=UTC)
    return when.strftime(STATUS_HOUR_FORMAT)


def _coin_entry(match: re.Match[str], errors: list[Any]) -> dict[str, Any]:
    # error_index: None for a coin that did not fail, "" for one whose text did not fit
    error_index, hour, hours, amended, late = match.groups()[1:]
    entry: dict[str, Any] = {"ok": error_index is None, "newest_hour": _hour(hour)}
    if hours is not None:
        entry["hours"] = int(hours)
    if amended is not None:
        entry |= {"amended": int(amended), "late": int(late)}
    if error_index and int(error_index) < len(errors):
        entry["error"] = str(errors[int(error_index)])
    return entry


def _from_v2(data: Mapping[str, Any]) -> dict[str, Any]:
    errors = data.get("errors") if isinstance(data.get("errors"), list) else []
    coins: dict[str, Any] = {}
    for token in str(data.get("coins") or "").split(","):
        match = _TOKEN.match(token)
        if match is None:
            continue  # not ours: skip it rather than lose every other coin
        try:
            coins[match.group(1)] = _coin_entry(match, errors or [])
        except ValueError:  # an impossible hour (2026139999): not ours either
            continue
    out: dict[str, Any] = {"summary": "hourly", "ok": data.get("ok") is True, "coins": coins}
    if data.get("error"):
        out["error"] = str(data["error"])
    if data.get("truncated"):
        out["truncated"] = True
    return out


def parse(message: str | None) -> dict[str, Any] | None:
    """The run's summary in format 1's shape (``ok``, ``coins: {coin: {ok, newest_hour
    (YYYY-MM-DDTHH:00:00Z or None), hours?, amended?, late?, error?}}``, ``error`` when the run
    could not start), from either format; None for anything else (e.g. the log tail the kubelet
    keeps after a crash)."""
    if not message:
        return None
    try:
        data = json.loads(message)
    except ValueError:
        return None
    if not isinstance(data, dict) or data.get("summary") != "hourly":
        return None
    if data.get("v") == VERSION and isinstance(data.get("coins"), str):
        return _from_v2(data)
    return data  # format 1 (the previous version's jobs)
