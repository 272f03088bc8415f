"""Tweet sentiment with VADER, scored in a vectorised ``pandas_udf`` (Arrow batches).

The analyzer loads its lexicon once per Python worker process (module-level cache); Spark reuses
workers between tasks, so the cost is paid once per executor core, not per batch.
"""

from __future__ import annotations

from typing import Final

import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F  # noqa: N812 (PySpark convention)
from pyspark.sql.pandas.functions import pandas_udf
from pyspark.sql.types import DoubleType
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

# VADER's documented thresholds on the compound score.
POSITIVE_THRESHOLD: Final = 0.05
NEGATIVE_THRESHOLD: Final = -0.05

_analyzer: SentimentIntensityAnalyzer | None = None


def analyzer() -> SentimentIntensityAnalyzer:
    global _analyzer
    if _analyzer is None:
        _analyzer = SentimentIntensityAnalyzer()
    return _analyzer


def compound_scores(texts: pd.Series) -> pd.Series:
    """VADER compound score (-1..1, rounded to 4 decimals by VADER) of each text."""
    score = analyzer().polarity_scores
    return pd.Series(
        [float(score(t)["compound"]) for t in texts], index=texts.index, dtype="float64"
    )


compound_udf = pandas_udf(compound_scores, DoubleType())  # type: ignore[call-overload]


def with_sentiment(tweets: DataFrame) -> DataFrame:
    """Add ``sentiment`` (VADER compound) computed from ``text``."""
    return tweets.withColumn("sentiment", compound_udf(F.col("text")))
