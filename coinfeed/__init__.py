"""coinfeed: crypto prices and tweets into Kafka, hourly market and sentiment analytics with Spark."""

__version__ = "0.1.0"
