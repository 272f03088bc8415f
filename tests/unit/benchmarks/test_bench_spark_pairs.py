"""The small case's job/bare figure: medians of alternating pairs, not one noisy run each."""

from __future__ import annotations

import pytest

from benchmarks.bench_spark import pair_figures


def test_medians_of_pairs_make_the_ratio() -> None:
    # One slow job run and one slow bare run must not move the ratio: medians 20 and 10.
    out = pair_figures([20.0, 31.0, 19.0], [10.0, 9.0, 14.0])
    assert out["job_median_seconds"] == 20.0
    assert out["bare_baseline_seconds"] == 10.0
    assert out["job_over_bare"] == 2.0
    assert out["pair_ratios"] == [2.0, 31.0 / 9.0, 19.0 / 14.0]
    assert out["job_seconds_all"] == [20.0, 31.0, 19.0]


def test_one_pair_is_its_own_ratio() -> None:
    assert pair_figures([15.0], [6.0])["job_over_bare"] == 2.5


@pytest.mark.parametrize(("jobs", "bares"), [([], []), ([1.0, 2.0], [1.0])])
def test_unmatched_timings_are_refused(jobs: list[float], bares: list[float]) -> None:
    with pytest.raises(ValueError, match="as many job as bare"):
        pair_figures(jobs, bares)
