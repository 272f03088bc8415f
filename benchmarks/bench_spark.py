"""Hourly Spark job on one busy hour: wall time, stages, sentiment throughput, single-machine peer.

Generates N tweets (default 1,000,000) and 3,600 price ticks for one hour, writes them once to a
real local 3-broker Kafka cluster, then measures, all in this run:

* the job (``coinfeed hourly`` as a subprocess, JVM start included) and its stage times;
* VADER inside Spark (the job's ``arrow_udf``, all cores) against a plain single-process VADER loop on the
  same texts: overhead per core = spark_seconds x cores / loop_seconds - 1 (goal <= 10 %),
  medians of ``--sentiment-reps`` timings each, after a first, cold Spark run (reported too);
* the single-machine peer on the same Kafka input: consume, validate with the same pydantic
  models, one VADER pass, aggregate with DuckDB; ratio = job wall time / peer wall time
  (goal < 1 at this volume);
* the small case (10,000 tweets), where JVM start dominates, against a bare baseline measured in
  the same run: a subprocess that starts the same Spark session, reads one empty Kafka hour and
  writes one empty Parquet dataset (goal: small job / bare <= 2), in ``--small-pairs``
  alternating pairs compared by medians (default 3); it runs with the driver JVM
  profile the job's own rule gives an empty hour (``quick``), and the job reports the profile
  it chose;
* how the job grows with input (``--sizes``, default 100k, 1M and 3M tweets): seconds per
  million tweets at each size, and the job/peer ratio at each.

Every figure is reported as a ratio to a baseline measured in the same run. Writes
``out/bench/spark.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from coinfeed.devcluster.procs import free_ports
from coinfeed.topics import TopicKind

HOUR = datetime(2024, 3, 1, 12, tzinfo=UTC)
NOW = HOUR + timedelta(hours=1, minutes=10)
POSITIVE = ["good", "great", "love", "bullish", "moon", "win", "happy", "strong", "amazing"]
NEGATIVE = ["bad", "terrible", "crash", "bearish", "scam", "sad", "weak", "fear", "dump"]
NEUTRAL = ["bitcoin", "price", "today", "market", "chart", "the", "is", "at", "volume", "trade"]
TAGS = ["btc", "BTC", "crypto", "bitcoin", "hodl", "moon", "trading", "defi", "eth", "news"]


def generate(
    coin: str, n_tweets: int, n_ticks: int, seed: int = 7
) -> tuple[list[tuple[bytes, int]], list[tuple[bytes, int]]]:
    """Deterministic records (JSON bytes, Kafka timestamp ms) for one hour, 1 % duplicate tweets."""
    from coinfeed.schemas import PriceTick, Tweet

    rng = random.Random(seed)
    start_ms = int(HOUR.timestamp() * 1000)
    ticks = []
    price = 60_000.0
    for i in range(n_ticks):
        price *= 1 + rng.gauss(0, 0.0005)
        ts = HOUR + timedelta(milliseconds=i * 3_600_000 // n_ticks)
        rec = PriceTick(coin=coin, source="replay", pair="BTC/USDT", ts=ts, price=round(price, 2))
        ticks.append((rec.to_json(), int(ts.timestamp() * 1000)))
    tweets = []
    base = Tweet(coin=coin, id="1", created_at=HOUR, text="x", author_id="1").to_dict()
    for i in range(n_tweets):
        words = rng.choices(NEUTRAL, k=rng.randint(4, 12))
        words += rng.choices(POSITIVE if rng.random() < 0.5 else NEGATIVE, k=rng.randint(0, 3))
        rng.shuffle(words)
        offset = i * 3_600_000 // n_tweets
        tid = i if rng.random() > 0.01 else max(0, i - 1)  # ~1 % duplicates
        trec = dict(base)
        trec.update(
            id=str(10**15 + tid),
            created_at=(HOUR + timedelta(milliseconds=offset)).strftime("%Y-%m-%dT%H:%M:%S.")
            + f"{offset % 1000:03d}Z",
            text=" ".join(words),
            author_id=str(rng.randint(1, n_tweets // 3 + 1)),
            like_count=rng.randint(0, 50),
            retweet_count=rng.randint(0, 10),
            hashtags=rng.sample(TAGS, k=rng.randint(0, 3)),
        )
        tweets.append((json.dumps(trec, separators=(",", ":")).encode(), start_ms + offset))
    return ticks, tweets


def produce(
    bootstrap: str, coin: str, ticks: list[tuple[bytes, int]], tweets: list[tuple[bytes, int]]
) -> None:
    from confluent_kafka import Producer
    from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

    from coinfeed.topics import feed_topics

    topics = feed_topics(coin)
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics(
        [
            NewTopic(t, num_partitions=3, replication_factor=3, config={"retention.ms": "-1"})
            for t in topics.values()
        ]
    )
    for f in futures.values():
        f.result(timeout=60)
    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "acks": "all",
            "enable.idempotence": True,
            "linger.ms": 50,
            "compression.type": "lz4",
            "queue.buffering.max.messages": 500_000,
        }
    )
    pairs: tuple[tuple[TopicKind, list[tuple[bytes, int]]], ...] = (
        ("prices", ticks),
        ("tweets", tweets),
    )
    for kind, records in pairs:
        for value, ts in records:
            while True:
                try:
                    producer.produce(topics[kind], value=value, timestamp=ts)
                    break
                except BufferError:
                    producer.poll(0.5)
            producer.poll(0)
    if producer.flush(300) != 0:
        raise RuntimeError("could not deliver every benchmark record")


def run_job(
    bootstrap: str, coin: str, lake: Path, cores: int, driver_memory: str = "4g"
) -> tuple[float, dict[str, Any], str]:
    """Wall time, summary and the driver JVM profile the job chose (``--jvm-profile auto``)."""
    cmd = [
        sys.executable,
        "-m",
        "coinfeed",
        "hourly",
        "--coin",
        coin,
        "--bootstrap",
        bootstrap,
        "--lake",
        str(lake),
        "--from",
        f"{HOUR:%Y-%m-%dT%H}",
        "--to",
        f"{HOUR:%Y-%m-%dT%H}",
        "--now",
        NOW.isoformat(),
        "--master",
        f"local[{cores}]",
        "--shuffle-partitions",
        str(cores * 2),
        "--driver-memory",
        driver_memory,
    ]
    t0 = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t0
    if done.returncode != 0:
        raise RuntimeError(f"hourly job failed: {done.stderr[-3000:]}")
    line = next(ln for ln in done.stdout.splitlines() if ln.startswith('{"'))
    logs = [json.loads(ln) for ln in done.stderr.splitlines() if ln.startswith('{"')]
    profile = next((r["profile"] for r in logs if r.get("msg") == "driver JVM profile"), "?")
    return wall, json.loads(line), profile


def bare_main(bootstrap: str, topic: str, out: str) -> None:
    """The bare baseline's body: session start, one read of an empty Kafka hour, one empty write.
    Its JVM profile follows the job's rule for the input it reads (none: quick)."""
    import os

    from coinfeed.spark.hourly import build_parser, job_conf
    from coinfeed.spark.jit import choose, profile_conf
    from coinfeed.spark.session import build_session

    args = build_parser().parse_args(["--coin", "x", "--lake", out, "--master", "local[2]"])
    conf = profile_conf(choose("auto", 0), job_conf(args, os.environ))
    spark = build_session("bench-bare", conf)
    empty = int((HOUR - timedelta(hours=5)).timestamp() * 1000)
    df = (
        spark.read.format("kafka")
        .option("kafka.bootstrap.servers", bootstrap)
        .option("subscribe", topic)
        .option("startingTimestamp", str(empty))
        .option("endingTimestamp", str(empty + 3_600_000))
        .option("startingOffsetsByTimestampStrategy", "latest")
        .load()
    )
    df.selectExpr("CAST(value AS STRING) AS v").write.mode("overwrite").parquet(out)
    spark.stop()


def bare_baseline(bootstrap: str, topic: str, work: Path) -> float:
    """Wall time of :func:`bare_main` as a subprocess (JVM start included, like the job)."""
    code = (
        "import sys; from benchmarks.bench_spark import bare_main; "
        "bare_main(sys.argv[1], sys.argv[2], sys.argv[3])"
    )
    t0 = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", code, bootstrap, topic, str(work / "bare")],
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.perf_counter() - t0
    if done.returncode != 0:
        raise RuntimeError(f"bare baseline failed: {done.stderr[-3000:]}")
    return wall


def small_pairs(
    bootstrap: str,
    coin: str,
    work: Path,
    cores: int,
    driver_memory: str,
    first_job: float,
    pairs: int,
) -> dict[str, Any]:
    """The small job against the bare baseline in ``pairs`` alternating pairs (the first job run
    is ``first_job``; every job run with the same ``driver_memory``), compared by medians: one
    run of either varies by 10-20 % on a shared 2-core machine, as much as the ratio's distance
    from its goal."""
    jobs = [first_job]
    bares = [bare_baseline(bootstrap, f"coinfeed.{coin}.prices", work)]
    for _ in range(pairs - 1):
        lake = work / f"lake-small-{len(jobs)}"
        jobs.append(run_job(bootstrap, coin, lake, cores, driver_memory)[0])
        bares.append(bare_baseline(bootstrap, f"coinfeed.{coin}.prices", work))
    return pair_figures(jobs, bares)


def pair_figures(jobs: list[float], bares: list[float]) -> dict[str, Any]:
    """Alternating job and bare timings -> medians, their ratio and each pair's ratio."""
    if not jobs or len(jobs) != len(bares):
        raise ValueError(f"need as many job as bare timings, got {len(jobs)} and {len(bares)}")
    job, bare = statistics.median(jobs), statistics.median(bares)
    return {
        "job_seconds_all": jobs,
        "bare_seconds_all": bares,
        "job_median_seconds": job,
        "bare_baseline_seconds": bare,
        "job_over_bare": job / bare,
        "pair_ratios": [j / b for j, b in zip(jobs, bares, strict=True)],
    }


def peer(bootstrap: str, coin: str) -> tuple[float, dict[str, float]]:
    """Single process: consume, validate (pydantic), dedup, VADER, aggregate with DuckDB."""
    import duckdb
    import pandas as pd
    from confluent_kafka import Consumer, TopicPartition

    from coinfeed.schemas import PriceTick, RecordError, Tweet, decode_record
    from coinfeed.spark.sentiment import analyzer
    from coinfeed.topics import feed_topics

    stages: dict[str, float] = {}
    t0 = time.perf_counter()
    topics = feed_topics(coin)
    rows: dict[str, list[dict[str, Any]]] = {"prices": [], "tweets": []}
    models: tuple[tuple[TopicKind, type[PriceTick] | type[Tweet]], ...] = (
        ("prices", PriceTick),
        ("tweets", Tweet),
    )
    for kind, model in models:
        consumer = Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": f"bench-{time.time()}",
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
            }
        )
        meta = consumer.list_topics(topics[kind], timeout=30).topics[topics[kind]]
        parts = [TopicPartition(topics[kind], p, 0) for p in meta.partitions]
        ends = {p.partition: consumer.get_watermark_offsets(p, timeout=30)[1] for p in parts}
        consumer.assign(parts)
        remaining = sum(ends.values())
        while remaining > 0:
            for msg in consumer.consume(min(10_000, remaining), timeout=5):
                if msg.error():
                    continue
                remaining -= 1
                with contextlib.suppress(RecordError):  # the job quarantines these
                    rows[kind].append(decode_record(model, msg.value()).model_dump())  # type: ignore[arg-type]
        consumer.close()
    stages["consume_validate"] = time.perf_counter() - t0
    t1 = time.perf_counter()
    tweets = pd.DataFrame(rows["tweets"]).drop_duplicates("id", keep="last")
    prices = pd.DataFrame(rows["prices"]).drop_duplicates(["source", "ts"], keep="last")
    score = analyzer().polarity_scores
    tweets["sentiment"] = [score(t)["compound"] for t in tweets["text"]]
    stages["dedup_vader"] = time.perf_counter() - t1
    t2 = time.perf_counter()
    con = duckdb.connect()
    con.register(
        "tweets",
        tweets[["id", "author_id", "sentiment", "like_count", "retweet_count", "created_at"]],
    )
    con.register("prices", prices[["ts", "source", "price"]])
    con.execute(
        """
        WITH p AS (SELECT date_trunc('hour', ts) AS h, price,
                          ln(price / lag(price) OVER (PARTITION BY date_trunc('hour', ts) ORDER BY ts, source)) AS r
                   FROM prices)
        SELECT h, first(price), max(price), min(price), last(price), avg(price), count(*), sqrt(sum(r*r))
        FROM (SELECT * FROM p ORDER BY h) GROUP BY h
        """
    ).fetchall()
    con.execute(
        """
        SELECT date_trunc('hour', created_at) AS h, count(*), count(DISTINCT author_id),
               avg(sentiment), avg((sentiment >= 0.05)::INT), avg((sentiment <= -0.05)::INT),
               sum((1 + like_count + retweet_count) * sentiment) / sum(1 + like_count + retweet_count),
               sum(like_count), sum(retweet_count)
        FROM tweets GROUP BY h
        """
    ).fetchall()
    stages["duckdb_aggregate"] = time.perf_counter() - t2
    return time.perf_counter() - t0, stages


def _score_all(texts: list[str]) -> int:
    from coinfeed.spark.sentiment import analyzer

    score = analyzer().polarity_scores
    for t in texts:
        score(t)
    return len(texts)


def _process_cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of process ``pid`` so far (Linux ``/proc``; None elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def sentiment_throughput(texts: list[str], cores: int, work: Path, reps: int = 3) -> dict[str, Any]:
    """VADER three ways on the same texts: a plain loop in one process; the same loop split over
    ``cores`` processes (what this shared machine really gives in parallel); the job's Arrow UDF
    on ``cores`` Spark cores, timed on input already cached in Spark.

    Each way is timed ``reps`` times and compared by its median: on a shared 2-core machine one
    timing of the loop alone varies by about 10 %, as much as the overhead measured. Spark's
    timed runs follow a first, cold run over the same texts (reported too), after which every
    Python worker has loaded VADER and the JVM has compiled its Arrow path, as the job's
    validation UDF has done by the time the job scores sentiment. ``jvm_cpu_share``: the
    JVM's own CPU during the timed runs as a share of ``cores`` x wall time, i.e. the part of
    the overhead Spark's side (cache scan, Arrow conversion) takes from the Python workers."""
    import multiprocessing

    import pyarrow as pa
    import pyarrow.parquet as pq

    from coinfeed.spark.sentiment import with_sentiment
    from coinfeed.spark.session import build_session, spark_conf

    def timed(run: Any) -> float:
        t0 = time.perf_counter()
        run()
        return time.perf_counter() - t0

    loops = [timed(lambda: _score_all(texts)) for _ in range(reps)]
    chunks = [texts[i::cores] for i in range(cores)]
    with multiprocessing.get_context("spawn").Pool(cores) as pool:
        pool.map(_score_all, [texts[:cores] for _ in range(cores)])  # warm up: import, lexicon
        parallels = [timed(lambda: pool.map(_score_all, chunks)) for _ in range(reps)]
    path = work / "texts.parquet"
    pq.write_table(pa.table({"text": texts}), path)
    spark = build_session(
        "bench-sentiment", spark_conf(master=f"local[{cores}]", jars=[], driver_memory="1g")
    )
    try:
        df = spark.read.parquet(str(path)).repartition(cores * 4).cache()
        df.count()

        def score() -> None:
            with_sentiment(df).write.format("noop").mode("overwrite").save()

        # The first run also warms up: every Python worker loads VADER, the JVM compiles its path.
        cold = timed(score)
        jvm = int(spark.sparkContext._jvm.java.lang.ProcessHandle.current().pid())
        cpu0 = _process_cpu_seconds(jvm)
        in_sparks = [timed(score) for _ in range(reps)]
        cpu1 = _process_cpu_seconds(jvm)
    finally:
        spark.stop()
    loop = statistics.median(loops)
    parallel = statistics.median(parallels)
    in_spark = statistics.median(in_sparks)
    jvm_share = (
        (cpu1 - cpu0) / (sum(in_sparks) * cores) if cpu0 is not None and cpu1 is not None else None
    )
    return {
        "texts": len(texts),
        "reps": reps,
        "loop_seconds": loop,
        "loop_seconds_all": loops,
        "parallel_loop_seconds": parallel,
        "parallel_loop_seconds_all": parallels,
        "spark_seconds": in_spark,
        "spark_seconds_all": in_sparks,
        "spark_cold_seconds": cold,
        "overhead_per_core_cold": cold * cores / loop - 1,
        "jvm_cpu_share": jvm_share,
        "cores": cores,
        "overhead_per_core": in_spark * cores / loop - 1,
        "overhead_per_core_worst": max(in_sparks) * cores / loop - 1,
        "speedup_vs_loop": loop / in_spark,
        "parallel_loop_speedup": loop / parallel,
        "spark_over_parallel_loop": in_spark / parallel,
    }


def cds_java_archive() -> str | None:
    """The class-data archive the job's (and the bare run's) driver JVM maps, if any."""
    from coinfeed.spark import cds

    path = cds.archive_path(os.environ)
    return str(path) if path is not None and path.is_file() else None


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="bench_spark",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--quick", action="store_true", help="one busy size of 50,000 tweets instead of --sizes"
    )
    p.add_argument(
        "--sizes",
        default="100000,1000000,3000000",
        help="tweets in the busy hours, comma-separated (default 100000,1000000,3000000)",
    )
    p.add_argument("--tweets", type=int, default=None, help="one busy size instead of --sizes")
    p.add_argument(
        "--small", type=int, default=10_000, help="tweets in the small case (default 10,000)"
    )
    p.add_argument(
        "--small-pairs",
        type=int,
        default=3,
        help="alternating job/bare runs of the small case; job/bare compares medians (default 3)",
    )
    p.add_argument("--ticks", type=int, default=3_600)
    p.add_argument(
        "--sentiment-reps",
        type=int,
        default=3,
        help="timings of each sentiment way; ratios compare medians (default 3)",
    )
    p.add_argument("--cores", type=int, default=2, help="Spark local[N] (default 2)")
    p.add_argument(
        "--driver-memory",
        default="4g",
        help="the job's driver heap (default 4g; a 3M-tweet hour also fits 1500m, see spark/README)",
    )
    p.add_argument("--out", type=Path, default=Path("out/bench/spark.json"))
    args = p.parse_args(argv)
    if args.sentiment_reps < 1:
        p.error(f"--sentiment-reps must be at least 1, got {args.sentiment_reps}")
    if args.small_pairs < 1:
        p.error(f"--small-pairs must be at least 1, got {args.small_pairs}")
    if args.tweets:
        sizes = [args.tweets]
    elif args.quick:
        sizes = [50_000]
    else:
        sizes = [int(x) for x in args.sizes.split(",") if x.strip()]
    n_big = max(sizes)

    from coinfeed.devcluster import ClusterSpec, LocalKafkaCluster

    results: dict[str, Any] = {
        "tweets": n_big,
        "sizes": sizes,
        "ticks": args.ticks,
        "small_tweets": args.small,
        "cores": args.cores,
        "driver_memory": args.driver_memory,
        # The job and the bare run start from the same class-data archive, if any (spark.cds;
        # COINFEED_CDS_ARCHIVE=off measures both without it).
        "cds_archive": cds_java_archive(),
    }
    with tempfile.TemporaryDirectory(prefix="bench-spark-") as tmp:
        work = Path(tmp)
        ports = free_ports(7)
        spec = ClusterSpec(
            run_dir=work / "kafka",
            mode="zookeeper",
            broker_ports=tuple(ports[:3]),
            zookeeper_port=ports[3],
            controller_ports=tuple(ports[4:7]),
        )
        cluster = LocalKafkaCluster(spec, tie_to_parent=True)
        cluster.up(timeout=240)
        try:
            bootstrap = cluster.bootstrap
            cases = [("small", "benchsmall", args.small)]
            cases += [
                ("busy" if n == n_big else f"busy_{n}", f"benchbusy{i}", n)
                for i, n in enumerate(sizes)
            ]
            for case, coin, n in cases:
                t0 = time.perf_counter()
                ticks, tweets = generate(coin, n, args.ticks)
                produce(bootstrap, coin, ticks, tweets)
                gen = time.perf_counter() - t0
                job_wall, summary, profile = run_job(
                    bootstrap, coin, work / f"lake-{case}", args.cores, args.driver_memory
                )
                peer_wall, peer_stages = peer(bootstrap, coin)
                results[case] = {
                    "tweets": n,
                    "generate_and_produce_seconds": gen,
                    "job_wall_seconds": job_wall,
                    "job_jvm_profile": profile,
                    "job_stage_seconds": summary.get("stage_seconds", {}),
                    "job_rows_read": summary["rows_read"],
                    "job_duplicates": summary["duplicates"],
                    "peer_wall_seconds": peer_wall,
                    "peer_stage_seconds": peer_stages,
                    "job_over_peer": job_wall / peer_wall,
                    "job_seconds_per_million_tweets": job_wall / n * 1e6,
                }
                if case == "small":
                    results["small"].update(
                        small_pairs(
                            bootstrap,
                            coin,
                            work,
                            args.cores,
                            args.driver_memory,
                            job_wall,
                            args.small_pairs,
                        )
                    )
                    sm = results["small"]
                    print(
                        f"small: job {sm['job_median_seconds']:.1f}s vs bare Spark baseline "
                        f"{sm['bare_baseline_seconds']:.1f}s (session + empty Kafka hour + empty "
                        f"Parquet write; medians of {args.small_pairs} alternating pairs) -> "
                        f"job/bare = {sm['job_over_bare']:.2f} (goal <= 2; pairs "
                        f"{min(sm['pair_ratios']):.2f}-{max(sm['pair_ratios']):.2f})",
                        flush=True,
                    )
                print(
                    f"{case}: {n} tweets: job {job_wall:.1f}s (JVM start included, {profile} JVM "
                    f"profile), peer "
                    f"{peer_wall:.1f}s -> job/peer = {job_wall / peer_wall:.2f} "
                    f"(goal < 1 for the busy hour)",
                    flush=True,
                )
                print(f"  job stages: {json.dumps(summary.get('stage_seconds', {}))}", flush=True)
                print(
                    f"  peer stages: {json.dumps({k: round(v, 2) for k, v in peer_stages.items()})}",
                    flush=True,
                )
                if case == "busy":
                    texts = [json.loads(v)["text"] for v, _ in tweets]
                    results["sentiment"] = sentiment_throughput(
                        texts, args.cores, work, args.sentiment_reps
                    )
                    s = results["sentiment"]
                    print(
                        f"sentiment: loop {s['texts'] / s['loop_seconds']:.0f} texts/s on 1 core; "
                        f"arrow_udf on {s['cores']} cores: speedup x{s['speedup_vs_loop']:.2f}, "
                        f"overhead per core {s['overhead_per_core']:+.1%} (goal <= +10%); "
                        f"{s['cores']} plain processes: x{s['parallel_loop_speedup']:.2f}; "
                        f"arrow_udf / {s['cores']} processes = {s['spark_over_parallel_loop']:.2f} "
                        f"(medians of {s['reps']}; worst {s['overhead_per_core_worst']:+.1%}, cold run "
                        f"{s['overhead_per_core_cold']:+.1%}; "
                        f"JVM CPU share {s['jvm_cpu_share'] or 0:.1%})",
                        flush=True,
                    )
        finally:
            cluster.down()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2, sort_keys=True))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
