"""The retry buffer's decision: a record whose delivery failed is kept while there is room,
dropped (reason ``buffer_full``) beyond ``--max-buffered``. The whole path against a real
cluster that goes away is in tests/integration/producers/test_producer_buffer_overflow.py."""

from __future__ import annotations

import pytest

from coinfeed.producers.sink import keep_for_retry


@pytest.mark.parametrize(
    ("buffered", "max_buffered", "kept"),
    [
        (0, 3, True),
        (2, 3, True),  # the last free slot
        (3, 3, False),  # full: this one is dropped
        (4, 3, False),
        (0, 0, False),  # no buffer at all: every failed delivery is dropped
        (9_999, 10_000, True),  # the default size's last slot
        (10_000, 10_000, False),
    ],
)
def test_failed_record_kept_only_while_the_buffer_has_room(
    buffered: int, max_buffered: int, kept: bool
) -> None:
    assert keep_for_retry(buffered, max_buffered) is kept


def test_a_buffer_of_n_keeps_exactly_n_of_a_burst_of_failures() -> None:
    buffered = dropped = 0
    for _ in range(25):  # kafka-python expiring 25 in-flight records in one go
        if keep_for_retry(buffered, 7):
            buffered += 1
        else:
            dropped += 1
    assert (buffered, dropped) == (7, 18)
