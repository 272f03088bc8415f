"""Prometheus metric names and labels: the contract between the components that export them and
the dashboards and alert rules that read them. Producers, the operator and the hourly job import
their names from here; a test checks that every dashboard and rule names only metrics listed here.

Labels: ``coin`` (lower-case symbol), ``kind`` (prices|tweets), ``source`` (binance, coingecko,
x-api, bluesky, replay, ...), ``platform`` (x|bluesky). Never a secret, never an unbounded value
such as a tweet id.
"""

from __future__ import annotations

from typing import Final

# --- producers (scraped from each producer's /metrics) ---------------------------------------
PRODUCER_RECORDS = (
    "coinfeed_producer_records_total"  # counter{coin,kind,source}: acknowledged by Kafka
)
PRODUCER_SEND_ERRORS = "coinfeed_producer_send_errors_total"  # counter{coin,kind,error}
PRODUCER_RECORDS_DROPPED = "coinfeed_producer_records_dropped_total"  # counter{coin,kind,reason}
PRODUCER_SOURCE_REQUESTS = (
    "coinfeed_producer_source_requests_total"  # counter{coin,kind,source,outcome}
)
PRODUCER_RECORDS_SKIPPED = (
    "coinfeed_producer_records_skipped_total"  # counter{coin,kind,source,reason}
)
PRODUCER_RATELIMIT_REMAINING = "coinfeed_producer_ratelimit_remaining"  # gauge{coin,kind,source}
PRODUCER_RATELIMIT_RESET = (
    "coinfeed_producer_ratelimit_reset_timestamp_seconds"  # gauge{coin,kind,source}
)
PRODUCER_NEWEST_RECORD = (
    "coinfeed_producer_newest_record_timestamp_seconds"  # gauge{coin,kind}: event time
)
PRODUCER_SEND_LATENCY = "coinfeed_producer_send_latency_seconds"  # histogram{coin,kind}
PRODUCER_UP = "coinfeed_producer_ready"  # gauge{coin,kind}: 1 when Kafka and the source answer
# Streaming sources (Bluesky Jetstream): every frame seen, what became of it, the connection.
PRODUCER_STREAM_EVENTS = (
    "coinfeed_producer_stream_events_total"  # counter{coin,kind,source,event}: frames seen
)
PRODUCER_POSTS_MATCHED = (
    "coinfeed_producer_posts_matched_total"  # counter{coin,kind,source}: passed our filter
)
PRODUCER_STREAM_DROPPED = (
    "coinfeed_producer_stream_dropped_total"  # counter{coin,kind,source,reason}: seen, not sent
)
PRODUCER_STREAM_RECONNECTS = (
    "coinfeed_producer_stream_reconnects_total"  # counter{coin,kind,source,reason}
)
PRODUCER_STREAM_LAG = (
    "coinfeed_producer_stream_lag_seconds"  # gauge{coin,kind,source}: now - newest event time
)
PRODUCER_STREAM_CONNECTED = "coinfeed_producer_stream_connected"  # gauge{coin,kind,source}: 1|0

# --- hourly Spark job (pushed to the Pushgateway, grouping key job="coinfeed_hourly", coin) ---
HOURLY_JOB_NAME: Final = "coinfeed_hourly"
HOURLY_ROWS_READ = "coinfeed_hourly_rows_read"  # gauge{coin,kind}: last run
HOURLY_ROWS_WRITTEN = "coinfeed_hourly_rows_written"  # gauge{coin,dataset}
HOURLY_ROWS_QUARANTINED = "coinfeed_hourly_rows_quarantined"  # gauge{coin}
HOURLY_DUPLICATES = "coinfeed_hourly_duplicates_dropped"  # gauge{coin,kind}
HOURLY_HOURS_PROCESSED = "coinfeed_hourly_hours_processed"  # gauge{coin}
HOURLY_HOURS_AMENDED = (
    "coinfeed_hourly_hours_amended"  # gauge{coin}: earlier hours late data changed
)
HOURLY_LATE_RECORDS = "coinfeed_hourly_late_records_merged"  # gauge{coin}: late but within bound
HOURLY_DURATION = "coinfeed_hourly_duration_seconds"  # gauge{coin}
HOURLY_LAST_SUCCESS = "coinfeed_hourly_last_success_timestamp_seconds"  # gauge{coin}
HOURLY_LAST_FAILURE = "coinfeed_hourly_last_failure_timestamp_seconds"  # gauge{coin}
HOURLY_NEWEST_HOUR = (
    "coinfeed_hourly_newest_hour_timestamp_seconds"  # gauge{coin}: start of newest complete hour
)
HOURLY_CLOSE_PRICE = "coinfeed_hourly_close_price"  # gauge{coin}: latest hour's close
HOURLY_LOG_RETURN = "coinfeed_hourly_log_return"  # gauge{coin}
HOURLY_VOLATILITY = "coinfeed_hourly_realized_volatility"  # gauge{coin}
HOURLY_TWEET_COUNT = "coinfeed_hourly_tweet_count"  # gauge{coin}
HOURLY_SENTIMENT_MEAN = "coinfeed_hourly_sentiment_mean"  # gauge{coin}
HOURLY_PLATFORM_POSTS = "coinfeed_hourly_platform_posts"  # gauge{coin,platform}: newest hour
HOURLY_PLATFORM_SENTIMENT = (
    "coinfeed_hourly_platform_sentiment_mean"  # gauge{coin,platform}: newest hour
)

# --- operator (scraped from the operator's /metrics) --------------------------------------------
OPERATOR_RECONCILES = (
    "coinfeed_operator_reconciles_total"  # counter{result}: ok|error|not_supported
)
OPERATOR_RECONCILE_ERRORS = "coinfeed_operator_reconcile_errors_total"  # counter{reason}
OPERATOR_RECONCILE_DURATION = "coinfeed_operator_reconcile_duration_seconds"  # histogram
OPERATOR_FEEDS = "coinfeed_operator_feeds"  # gauge{ready}: "true"|"false"
# gauge{namespace,feed}: 1 Ready, 0 not; the series goes when the feed is deleted
OPERATOR_FEED_READY = "coinfeed_operator_feed_ready"

ALL: Final[frozenset[str]] = frozenset(
    v
    for k, v in dict(globals()).items()
    if k.isupper() and isinstance(v, str) and v.startswith("coinfeed_")
)
