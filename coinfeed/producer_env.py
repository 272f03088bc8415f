"""The producer process's environment: the contract between the operator (which writes it into a
Deployment) and the producer (which reads it). Flags on the command line override these.

Secrets are never values here: the bearer token comes from ``COINFEED_X_BEARER_TOKEN`` (set from a
Secret with ``valueFrom.secretKeyRef``) or from a file mounted from a Secret
(``COINFEED_X_BEARER_TOKEN_FILE``); exchange keys likewise.
"""

from __future__ import annotations

from typing import Final

COIN: Final = "COINFEED_COIN"  # btc
KAFKA_BOOTSTRAP: Final = "COINFEED_KAFKA_BOOTSTRAP"  # host:port[,host:port]
METRICS_PORT: Final = "COINFEED_METRICS_PORT"  # /metrics, /healthz, /readyz
LOG_LEVEL: Final = "COINFEED_LOG_LEVEL"

# prices
PRICE_SOURCE: Final = "COINFEED_PRICE_SOURCE"  # binance|coingecko|<any ccxt exchange id>|replay
PRICE_PAIR: Final = "COINFEED_PRICE_PAIR"  # BTC/USDT
PRICE_MODE: Final = "COINFEED_PRICE_MODE"  # ticker|ohlcv
POLL_INTERVAL_SECONDS: Final = "COINFEED_POLL_INTERVAL_SECONDS"
EXCHANGE_API_KEY: Final = "COINFEED_EXCHANGE_API_KEY"  # optional, from a Secret
EXCHANGE_API_SECRET: Final = "COINFEED_EXCHANGE_API_SECRET"  # optional, from a Secret
EXCHANGE_API_URL: Final = "COINFEED_EXCHANGE_API_URL"  # override ccxt's API base (proxies, tests)
COINGECKO_BASE_URL: Final = "COINFEED_COINGECKO_BASE_URL"  # default https://api.coingecko.com

# tweets
TWEET_SOURCE: Final = "COINFEED_TWEET_SOURCE"  # x-api|bluesky|replay
TWEET_KEYWORDS: Final = "COINFEED_TWEET_KEYWORDS"  # comma-separated
TWEET_MODE: Final = (
    "COINFEED_TWEET_MODE"  # search (recent search, any tier)|stream (filtered stream)
)
TWEET_LANGUAGES: Final = "COINFEED_TWEET_LANGUAGES"  # comma-separated, e.g. en,es
X_BEARER_TOKEN: Final = "COINFEED_X_BEARER_TOKEN"
X_BEARER_TOKEN_FILE: Final = "COINFEED_X_BEARER_TOKEN_FILE"
X_API_BASE_URL: Final = (
    "COINFEED_X_API_BASE_URL"  # default https://api.x.com; tests point it at a local server
)
X_MAX_PAGES: Final = "COINFEED_X_MAX_PAGES"  # recent-search pages per poll (default 10)
# When the topic holds no post of the source yet: start this far back (X start_time, Bluesky
# cursor), never the whole X week and never silently "now". Default 60.
SOCIAL_LOOKBACK_MINUTES: Final = "COINFEED_SOCIAL_LOOKBACK_MINUTES"
# Bluesky: comma-separated Jetstream endpoints (wss://host), rotated on reconnect; default the
# four public instances.
JETSTREAM_URLS: Final = "COINFEED_JETSTREAM_URLS"

# replay (both kinds)
REPLAY_FILE: Final = "COINFEED_REPLAY_FILE"
REPLAY_SPEED: Final = "COINFEED_REPLAY_SPEED"  # 1 = real time, 0 = as fast as possible
REPLAY_REBASE: Final = "COINFEED_REPLAY_REBASE"  # none|start|end|hour (whole hours, see replay.py)
KAFKA_TIMESTAMP: Final = "COINFEED_KAFKA_TIMESTAMP"  # send|event: the Kafka record timestamp

DEFAULT_METRICS_PORT: Final = 9400
