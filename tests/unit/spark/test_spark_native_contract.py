"""Contract: the Spark-native checks and the pydantic model agree on every record.

For each record of a generated corpus (hypothesis: valid records of both kinds in every wire form
pydantic accepts, and mutations of them along every rule the native checks implement: JSON types,
required and unknown fields, bounds, lengths, patterns, schema version, naive/offset timestamps,
coin vs topic, broken JSON and bytes) plus the quarantine corpus of the job's tests, the native
verdict equals pydantic's: a record the native checks accept is one pydantic accepts, with equal
typed values; one they judge and reject, pydantic rejects. Forms only pydantic's lax mode judges
(epoch timestamps, numbers as strings, ...) are left to pydantic by design; every record in the
producers' own wire form is judged natively.

Records in the exact wire form take the first, cheaper tier (parse, write back, compare bytes), so
a second corpus keeps that form while breaking one rule at a time: the first tier's own checks
(nulls, bounds, literals, patterns, coin, array elements, timestamp years) meet pydantic there.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyspark.sql import SparkSession
from pyspark.sql import functions as F  # noqa: N812 (PySpark convention)

from coinfeed.schemas import RECORD_MODELS, format_ts
from coinfeed.spark.native import field_rules, python_pattern, with_native
from coinfeed.spark.parse import check_record
from tests.integration.spark.test_spark_hourly_job import RECORDS as JOB_RECORDS
from tests.integration.spark.test_spark_hourly_job import TOPICS as JOB_TOPICS

COIN = "btc"
TOPIC = {"prices": f"coinfeed.{COIN}.prices", "tweets": f"coinfeed.{COIN}.tweets"}
Case = tuple[str, str, bytes | None]  # kind, topic, value

ascii_text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12)
instants = st.datetimes(
    min_value=datetime(1971, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
)


@st.composite
def timestamps(draw: st.DrawFn) -> Any:
    """A timestamp in one of the forms a JSON producer may send (valid or not)."""
    at: datetime = draw(instants)
    form = draw(
        st.sampled_from(["canonical", "offset", "micro", "space", "naive", "epoch", "junk"])
    )
    if form == "canonical":
        return format_ts(at)
    if form == "offset":
        minutes = draw(st.integers(-14 * 60, 14 * 60))
        return at.astimezone(timezone(timedelta(minutes=minutes))).isoformat()
    if form == "micro":
        return at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    if form == "space":
        return at.strftime("%Y-%m-%d %H:%M:%S+00:00")
    if form == "naive":
        return at.replace(tzinfo=None).isoformat()
    if form == "epoch":
        return int(at.timestamp())
    return draw(ascii_text)


def x_id() -> st.SearchStrategy[str]:
    return st.integers(0, 10**19).map(str)


@st.composite
def valid_price(draw: st.DrawFn) -> dict[str, Any]:
    rec: dict[str, Any] = {
        "coin": draw(st.sampled_from([COIN, COIN.upper(), " btc"])),
        "source": draw(st.text(min_size=1, max_size=64)),
        "pair": draw(st.text(min_size=3, max_size=32)),
        "ts": draw(timestamps()),
        "price": draw(st.floats(min_value=1e-9, max_value=1e12) | st.integers(1, 10**9)),
    }
    if draw(st.booleans()):
        rec["volume"] = draw(st.none() | st.floats(min_value=0, max_value=1e9))
    if draw(st.booleans()):
        rec["schema_version"] = 1
    return rec


@st.composite
def valid_tweet(draw: st.DrawFn) -> dict[str, Any]:
    platform = draw(st.sampled_from(["x", "bluesky", None]))
    if platform == "bluesky":
        did = "did:plc:" + draw(
            st.text("abcdefghijklmnopqrstuvwxyz234567", min_size=24, max_size=24)
        )
        rkey = draw(st.text("abcdefghijklmnopqrstuvwxyz234567", min_size=13, max_size=13))
        ids = {"id": f"at://{did}/app.bsky.feed.post/{rkey}", "author_id": did}
    else:
        ids = {"id": draw(x_id()), "author_id": draw(x_id())}
    rec: dict[str, Any] = {
        "coin": COIN,
        **ids,
        "created_at": draw(timestamps()),
        "text": draw(st.text(min_size=1, max_size=60)),
    }
    if platform is not None:
        rec["platform"] = platform
        rec["schema_version"] = 2
    elif draw(st.booleans()):
        rec["schema_version"] = 1
    optional = {
        "lang": st.none() | st.text(max_size=35),
        "author_username": st.none() | st.text(max_size=20),
        "author_followers": st.integers(0, 2**62),
        "like_count": st.integers(0, 10**6),
        "retweet_count": st.integers(0, 10**6),
        "hashtags": st.lists(st.text(max_size=10), max_size=4),
        "cashtags": st.lists(st.text(max_size=10), max_size=4),
        "source": st.text(min_size=1, max_size=64),
        "observed_at": st.none() | st.builds(format_ts, instants),
    }
    if rec.get("schema_version") == 1:
        del optional["observed_at"]  # version 1 has none
    for name, strategy in optional.items():
        if draw(st.booleans()):
            rec[name] = draw(strategy)
    return rec


ANY_JSON = st.sampled_from(
    [
        None,
        0,
        -1,
        1,
        2,
        3,
        0.0,
        -0.5,
        1.5,
        True,
        False,
        "",
        "1",
        "x" * 5000,
        [],
        ["a", 1],
        ["a", None],
        {"a": 1},
    ]
)


def _bounded(rule: Any) -> bool:
    return any(x is not None for x in (rule.gt, rule.ge, rule.max_length, rule.min_length))


@st.composite
def mutated(draw: st.DrawFn, kind: str, rec: dict[str, Any]) -> Any:
    """A record broken (or not) along one rule the native checks implement."""
    names = [r.name for r in field_rules(kind)]  # type: ignore[arg-type]
    how = draw(
        st.sampled_from(
            ["none", "none", "drop", "unknown", "retype", "bound", "coin", "text", "bytes"]
        )
    )
    rec = dict(rec)
    if how == "bound":
        # Just outside (or exactly on) one of the model's bounds: where an off-by-one would hide.
        rule = draw(st.sampled_from([r for r in field_rules(kind) if _bounded(r)]))  # type: ignore[arg-type]
        if rule.gt is not None:
            rec[rule.name] = draw(st.sampled_from([rule.gt, rule.gt - 1, -0.0]))
        elif rule.ge is not None:
            rec[rule.name] = draw(st.sampled_from([rule.ge, rule.ge - 1]))
        elif rule.max_length is not None:
            size = draw(st.sampled_from([rule.max_length, rule.max_length + 1]))
            rec[rule.name] = "7" * size
        else:
            rec[rule.name] = ""
    elif how == "drop":
        rec.pop(draw(st.sampled_from(sorted(rec))), None)
    elif how == "unknown":
        rec[draw(st.text(min_size=1, max_size=8).filter(lambda k: k not in names))] = 1
    elif how == "retype":
        rec[draw(st.sampled_from(names))] = draw(ANY_JSON | ascii_text)
    elif how == "coin":
        rec["coin"] = draw(st.sampled_from(["eth", "BTC ", "b", "btc.", 7]))
    raw = json.dumps(rec, ensure_ascii=draw(st.booleans())).encode()
    if how == "text":
        raw = draw(
            st.sampled_from(
                [raw + b" x", raw + b"}", raw[:-1], b"[" + raw + b"]", raw + b"\n", b" " + raw]
            )
        )
    elif how == "bytes":
        cut = draw(st.integers(0, len(raw)))
        raw = raw[:cut] + draw(st.binary(min_size=1, max_size=3)) + raw[cut:]
    return raw


def wire_form(rec: dict[str, Any]) -> bytes:
    """``rec`` as the producers write it (``to_json``: compact, raw UTF-8)."""
    return json.dumps(rec, separators=(",", ":"), ensure_ascii=False).encode()


WIRE_BREAKS = ["none", "none", "null", "bound", "literal", "retype", "coin", "pattern", "array"]
WIRE_BREAKS += ["year", "unknown"]


@st.composite
def wire_mutated(draw: st.DrawFn, kind: str, rec: dict[str, Any]) -> bytes:
    """A valid record in the wire form, broken (or not) along one rule, still in the wire form
    where the break allows (all fields, model order, compact): the first tier's checks."""
    rules = field_rules(kind)  # type: ignore[arg-type]
    rec = RECORD_MODELS[kind].model_validate(rec).to_dict()
    how = draw(st.sampled_from(WIRE_BREAKS))
    if how == "null":
        rec[draw(st.sampled_from([r.name for r in rules]))] = None
    elif how == "bound":
        rule = draw(st.sampled_from([r for r in rules if _bounded(r)]))
        edge = rule.gt if rule.gt is not None else rule.ge
        if edge is not None and rule.type == "double":
            values = [edge, edge - 1, -0.0, float("nan"), float("inf")]
            rec[rule.name] = float(draw(st.sampled_from(values)))
        elif edge is not None:
            rec[rule.name] = int(draw(st.sampled_from([edge, edge - 1])))
        else:
            size = draw(st.sampled_from([rule.min_length or 0, rule.max_length or 1]))
            rec[rule.name] = "7" * (size + draw(st.sampled_from([-1, 0, 1])))
    elif how == "literal":
        rule = draw(st.sampled_from([r for r in rules if r.literals]))
        rec[rule.name] = draw(st.sampled_from([*rule.literals, 0, 3, "y", ""]))
    elif how == "retype":
        rec[draw(st.sampled_from([r.name for r in rules]))] = draw(ANY_JSON)
    elif how == "coin":
        rec["coin"] = draw(st.sampled_from(["eth", "BTC", " btc", ""]))
    elif how == "pattern" and kind == "tweets":
        field = draw(st.sampled_from(["id", "author_id"]))
        rec[field] = draw(st.sampled_from(["abc", "1" * 21, "-1", "at://did:plc:a/b", "1\n"]))
    elif how == "array" and kind == "tweets":
        rec[draw(st.sampled_from(["hashtags", "cashtags"]))] = ["a", None]
    elif how == "year":
        field = "ts" if kind == "prices" else "created_at"
        rec[field] = draw(st.sampled_from(["1969-12-31T23:59:59.999Z", "3000-01-01T00:00:00.000Z"]))
    elif how == "unknown":
        rec["zz"] = 1
    return wire_form(rec)


@st.composite
def wire_cases(draw: st.DrawFn) -> Case:
    kind = draw(st.sampled_from(["prices", "tweets"]))
    rec = draw(valid_price() if kind == "prices" else valid_tweet())
    at = {"prices": "ts", "tweets": "created_at"}[kind]
    # The valid forms of valid_* that pydantic maps to the wire form: a canonical coin and time.
    rec = {**rec, "coin": COIN, at: format_ts(draw(instants))}
    return kind, TOPIC[kind], draw(wire_mutated(kind, rec))


@st.composite
def cases(draw: st.DrawFn) -> Case:
    kind = draw(st.sampled_from(["prices", "tweets"]))
    rec = draw(valid_price() if kind == "prices" else valid_tweet())
    return kind, TOPIC[kind], draw(mutated(kind, rec))


Verdict = tuple[bool, dict[str, Any] | None, bool]  # judged natively, accepted record, wire tier


def native_verdicts(spark: SparkSession, corpus: list[Case]) -> list[Verdict]:
    """Per case: judged natively, the accepted record (JSON-ready dict) or None, and whether the
    wire-form tier accepted it."""
    out: list[Verdict] = [(False, None, False)] * len(corpus)
    ts_format = {"timestampFormat": "yyyy-MM-dd'T'HH:mm:ss.SSS'Z'", "ignoreNullFields": "false"}
    for kind in ("prices", "tweets"):
        idx = [i for i, c in enumerate(corpus) if c[0] == kind]
        if not idx:
            continue
        df = spark.createDataFrame(
            [(i, corpus[i][1], corpus[i][2]) for i in idx], "i int, topic string, value binary"
        )
        native = with_native(df, kind)  # type: ignore[arg-type]
        cols = ("i", "_native_judged", "_native_wire", F.to_json("_native", ts_format).alias("r"))
        for row in native.select(*cols).collect():
            got = None if row.r is None else json.loads(row.r)
            out[row.i] = (row._native_judged, got, row._native_wire)
    return out


def assert_contract(spark: SparkSession, corpus: list[Case]) -> dict[str, int]:
    """Assert the contract on every case; returns how many were accepted/rejected/left (and, of
    the accepted, how many by the wire-form tier)."""
    seen = {"accepted": 0, "rejected": 0, "left_to_pydantic": 0, "wire": 0}
    for (kind, topic, value), (judged, got, wire) in zip(
        corpus, native_verdicts(spark, corpus), strict=True
    ):
        canonical, reason = check_record(kind, topic, value)  # type: ignore[arg-type]
        assert not wire or got is not None, value
        if got is not None:
            assert reason is None, (value, reason)
            assert canonical is not None and got == json.loads(canonical), value
            seen["accepted"] += 1
            seen["wire"] += wire
        elif judged:
            assert reason is not None, (value, "rejected natively, accepted by pydantic")
            seen["rejected"] += 1
        else:
            seen["left_to_pydantic"] += 1
    return seen


def test_python_patterns_keep_pythons_end_of_string_rule() -> None:
    assert python_pattern(r"^[0-9]{1,20}$") == r"^[0-9]{1,20}(?=\n?\z)"


def test_field_rules_come_from_the_model() -> None:
    rules = {r.name: r for r in field_rules("tweets")}
    assert set(rules) == set(RECORD_MODELS["tweets"].model_fields)
    assert (rules["text"].min_length, rules["text"].max_length) == (1, 4000)
    assert rules["like_count"].ge == 0 and rules["schema_version"].literals == (1, 2)
    price = {r.name: r for r in field_rules("prices")}["price"]
    assert (price.gt, price.finite, price.required) == (0, True, True)


def test_quarantine_corpus_agrees(spark: SparkSession) -> None:
    corpus: list[Case] = [(k, JOB_TOPICS[k], v) for k, v, _ in JOB_RECORDS]
    corpus += [("prices", TOPIC["prices"], None), ("tweets", TOPIC["tweets"], b"{}")]
    seen = assert_contract(spark, corpus)
    # The good records are accepted natively; the bad ones are all worded by pydantic.
    assert {k: v for k, v in seen.items() if k != "wire"} == {
        "accepted": 13,
        "rejected": 2,
        "left_to_pydantic": 4,
    }, seen


@settings(
    max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.lists(
        st.sampled_from(["prices", "tweets"]).flatmap(
            lambda k: (valid_price() if k == "prices" else valid_tweet()).map(
                lambda r: (
                    k,
                    RECORD_MODELS[k].model_validate(
                        {**r, "coin": COIN, "ts": format_ts(datetime(2024, 1, 1, tzinfo=UTC))}
                        if k == "prices"
                        else {**r, "created_at": "2024-01-01T00:00:00Z"}
                    ),
                )
            )
        ),
        min_size=10,
        max_size=30,
    )
)
def test_every_record_in_the_producers_wire_form_is_accepted_natively(
    spark: SparkSession, records: list[Any]
) -> None:
    corpus: list[Case] = [(k, TOPIC[k], r.to_json()) for k, r in records]
    # Posts (the volume) take the wire-form tier, but for two spellings where Spark's JSON writer
    # differs from pydantic's, which go through the full checks instead: a control character's
    # escape (\u001F against \u001f) and, in prices, some doubles (1.0E-5 against 1e-05).
    wire = [c for c in corpus if c[0] == "tweets" and b"\\u00" not in (c[2] or b"")]
    rest = [c for c in corpus if c not in wire]
    seen = assert_contract(spark, wire)
    assert seen["accepted"] == seen["wire"] == len(wire), seen
    seen = assert_contract(spark, rest)
    assert seen["accepted"] == len(rest), seen


# Corpora of 30-80 records, each one Spark job: few examples, no deadline.
CORPUS_SETTINGS = settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.large_base_example,
        HealthCheck.data_too_large,
    ],
)


@CORPUS_SETTINGS
@given(corpus=st.lists(cases(), min_size=30, max_size=80))
def test_generated_corpus_agrees(spark: SparkSession, corpus: list[Case]) -> None:
    assert_contract(spark, corpus)


@CORPUS_SETTINGS
@given(corpus=st.lists(wire_cases(), min_size=30, max_size=80))
def test_wire_form_corpus_agrees(spark: SparkSession, corpus: list[Case]) -> None:
    assert_contract(spark, corpus)


def boundary_corpus() -> list[Case]:
    """Each bounded field of each model on, and just past, its bound (from the model's rules)."""
    bases = {
        "prices": {
            "coin": COIN,
            "source": "s",
            "pair": "BTC/USDT",
            "ts": "2024-01-01T00:00:00Z",
            "price": 1.0,
        },
        "tweets": {"coin": COIN, "id": "1", "created_at": "2024-01-01T00:00:00Z", "text": "t"},
    }
    tweet_defaults = {"author_id": "1"}
    corpus: list[Case] = []
    for kind, base in bases.items():
        base = {**base, **(tweet_defaults if kind == "tweets" else {})}
        for rule in field_rules(kind):  # type: ignore[arg-type]
            values: list[Any] = []
            if rule.gt is not None:
                values = [rule.gt, rule.gt + 1, -0.0]
            elif rule.ge is not None:
                values = [rule.ge, rule.ge - 1]
            if rule.max_length is not None:
                values += ["7" * rule.max_length, "7" * (rule.max_length + 1)]
            if rule.min_length is not None:
                values += ["7" * max(rule.min_length - 1, 0), "7" * rule.min_length]
            corpus += [
                (kind, TOPIC[kind], json.dumps({**base, rule.name: v}).encode()) for v in values
            ]
    return corpus


def test_boundary_corpus_agrees(spark: SparkSession) -> None:
    seen = assert_contract(spark, boundary_corpus())
    assert seen["accepted"] > 0 and seen["rejected"] > 0, seen
