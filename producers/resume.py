"""Resume point of the tweet producer: the newest tweet id already in the topic.

The producer sends each poll's tweets oldest first, so the last record of every partition is that
partition's newest; the largest of those is where the previous run stopped.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from coinfeed.kafka import make_consumer
from coinfeed.producers.tweets import max_id
from coinfeed.schemas import RecordError, Tweet, decode_record

log = logging.getLogger("coinfeed.producers.resume")


class TopicMissingError(RuntimeError):
    """The topic does not exist (yet): the operator creates it."""


def newest_tweet_id(topic: str, bootstrap: str | None = None, timeout: float = 30.0) -> str | None:
    """Largest tweet id among the last record of each partition; None for an empty topic."""
    from kafka import TopicPartition

    consumer: Any = make_consumer(
        bootstrap=bootstrap, group_id=None, consumer_timeout_ms=1000, request_timeout_ms=30_000
    )
    try:
        parts = consumer.partitions_for_topic(topic)
        if not parts:
            raise TopicMissingError(f"topic {topic} does not exist")
        tps = [TopicPartition(topic, p) for p in sorted(parts)]
        consumer.assign(tps)
        ends = consumer.end_offsets(tps)
        begins = consumer.beginning_offsets(tps)
        wanted = {tp: ends[tp] for tp in tps if ends[tp] > begins[tp]}
        for tp, end in wanted.items():
            consumer.seek(tp, end - 1)
        ids: list[str] = []
        deadline = time.monotonic() + timeout
        while wanted and time.monotonic() < deadline:
            for tp, msgs in consumer.poll(timeout_ms=500).items():
                for msg in msgs:
                    try:
                        ids.append(decode_record(Tweet, msg.value).id)
                    except RecordError as err:
                        log.warning(
                            "unreadable record while resuming",
                            extra={
                                "partition": tp.partition,
                                "offset": msg.offset,
                                "error": str(err),
                            },
                        )
                if consumer.position(tp) >= wanted.get(tp, 0):
                    wanted.pop(tp, None)
        if wanted:
            raise TimeoutError(
                f"could not read the last record of {len(wanted)} partition(s) of {topic}"
            )
        return max_id(ids)
    finally:
        consumer.close()
