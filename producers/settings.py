"""Command line and environment -> Settings. Flags override the environment the operator sets
(names in coinfeed.producer_env); secrets come only from the environment or a mounted file."""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from coinfeed import producer_env as env_names
from coinfeed.producers.retry import RetryPolicy
from coinfeed.topics import TopicKind, normalize_coin

COINGECKO_BASE_URL_ENV = env_names.COINGECKO_BASE_URL
EXCHANGE_API_URL_ENV = env_names.EXCHANGE_API_URL
TWEET_MODE_ENV = env_names.TWEET_MODE


@dataclass(frozen=True)
class Settings:
    kind: TopicKind
    coin: str
    source: str
    bootstrap: str | None
    metrics_port: int
    metrics_host: str
    log_level: str
    poll_interval: float
    policy: RetryPolicy
    max_buffered: int
    shutdown_timeout: float
    max_block_ms: int
    kafka_stall_seconds: float
    # replay
    replay_file: Path | None = None
    replay_speed: float = 1.0
    rebase: str = "none"
    kafka_timestamp: str = "send"
    at_end: str = "idle"
    # prices
    pair: str = ""
    mode: str = "ticker"
    exchange_api_url: str | None = None
    coingecko_base_url: str = "https://api.coingecko.com"
    coingecko_endpoint: str = "simple"
    coingecko_id: str | None = None
    # tweets
    keywords: list[str] = field(default_factory=list)
    cashtags: list[str] = field(default_factory=list)
    languages: list[str] = field(default_factory=list)
    x_api_base_url: str = "https://api.x.com"
    max_results: int = 100
    tweet_mode: str = "search"
    backfill_minutes: int | None = None
    bearer_token_file: Path | None = None
    lookback_minutes: float = 60.0
    max_pages: int = 10
    jetstream_urls: list[str] = field(default_factory=list)
    cursor_margin_seconds: float = 10.0
    stream_stall_seconds: float = 60.0
    # liveness: /healthz fails after this long without progress (None: from the poll interval)
    liveness_stall_seconds: float | None = None


REBASE_MODES = ("none", "start", "end", "hour")
KAFKA_TIMESTAMPS = ("send", "event")


def _env_choice(env: Mapping[str, str], name: str, choices: tuple[str, ...], default: str) -> str:
    """A choice from the environment, refused by name (argparse checks only command-line values)."""
    value = env.get(name) or default
    if value not in choices:
        raise SystemExit(
            f"coinfeed producer: ${name}={value!r}: expected one of {', '.join(choices)}"
        )
    return value


def _csv(value: str | None) -> list[str]:
    return [v.strip() for v in (value or "").split(",") if v.strip()]


def _common(p: argparse.ArgumentParser, env: Mapping[str, str], kind: TopicKind) -> None:
    g = p.add_argument_group("common (flags override environment variables)")
    g.add_argument(
        "--coin", default=env.get(env_names.COIN), help=f"coin symbol, e.g. btc [${env_names.COIN}]"
    )
    g.add_argument(
        "--bootstrap",
        default=env.get(env_names.KAFKA_BOOTSTRAP),
        help=f"Kafka bootstrap servers host:port[,..] [${env_names.KAFKA_BOOTSTRAP}]",
    )
    g.add_argument(
        "--metrics-port",
        type=int,
        default=int(env.get(env_names.METRICS_PORT, env_names.DEFAULT_METRICS_PORT)),
        help=f"port of /metrics, /healthz, /readyz (0 = any free port) [${env_names.METRICS_PORT}]",
    )
    g.add_argument("--metrics-host", default="0.0.0.0", help="address to serve metrics on")
    g.add_argument(
        "--log-level",
        default=env.get(env_names.LOG_LEVEL, "INFO"),
        help=f"[${env_names.LOG_LEVEL}]",
    )
    g.add_argument(
        "--poll-interval",
        type=float,
        default=float(env.get(env_names.POLL_INTERVAL_SECONDS, 60 if kind == "tweets" else 10)),
        help=f"seconds between source polls [${env_names.POLL_INTERVAL_SECONDS}]",
    )
    g.add_argument(
        "--backoff-base", type=float, default=1.0, help="first retry backoff ceiling, seconds"
    )
    g.add_argument(
        "--backoff-cap", type=float, default=60.0, help="largest retry backoff ceiling, seconds"
    )
    g.add_argument(
        "--max-wait",
        type=float,
        default=900.0,
        help="longest single wait (rate-limit reset, backoff), seconds",
    )
    g.add_argument("--max-attempts", type=int, default=8, help="attempts per source request")
    g.add_argument(
        "--max-buffered",
        type=int,
        default=10_000,
        help="records kept for re-sending while Kafka fails; beyond that they are dropped (counted)",
    )
    g.add_argument(
        "--shutdown-timeout",
        type=float,
        default=25.0,
        help="seconds to flush on SIGTERM before unsent records are dropped (counted)",
    )
    g.add_argument(
        "--max-block-ms",
        type=int,
        default=60_000,
        help="how long one Kafka send may block on a full buffer or missing metadata",
    )
    g.add_argument(
        "--liveness-stall-seconds",
        type=float,
        default=None,
        help="/healthz answers 503 once the work loop made no progress for this long beyond a "
        "planned wait (default: 3 poll intervals, at least 60 s)",
    )
    g.add_argument(
        "--kafka-stall-seconds",
        type=float,
        default=15.0,
        help="not ready once records wait this long for Kafka's acknowledgement",
    )
    r = p.add_argument_group("replay")
    r.add_argument(
        "--replay-file",
        type=Path,
        default=env.get(env_names.REPLAY_FILE),
        help=f"JSON lines (.gz ok) [${env_names.REPLAY_FILE}]",
    )
    r.add_argument(
        "--replay-speed",
        type=float,
        default=float(env.get(env_names.REPLAY_SPEED, 1)),
        help=f"1 = real time, 60 = a minute per second, 0 = as fast as possible [${env_names.REPLAY_SPEED}]",
    )
    r.add_argument(
        "--rebase",
        choices=REBASE_MODES,
        default=_env_choice(env, env_names.REPLAY_REBASE, REBASE_MODES, "none"),
        help="shift event times so the first (start) or last (end) record is now, or by whole "
        f"hours so the last record is in the newest closed hour (hour) [${env_names.REPLAY_REBASE}]",
    )
    r.add_argument(
        "--kafka-timestamp",
        choices=KAFKA_TIMESTAMPS,
        default=_env_choice(env, env_names.KAFKA_TIMESTAMP, KAFKA_TIMESTAMPS, "send"),
        help="Kafka record timestamp: send time, or the record's event time "
        f"[${env_names.KAFKA_TIMESTAMP}]",
    )
    r.add_argument(
        "--at-end",
        choices=["idle", "exit"],
        default="idle",
        help="when the replay file is done: keep serving metrics (idle, for Deployments) or exit",
    )


def build_parser(env: Mapping[str, str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="coinfeed producer",
        description="Publish one coin's prices or tweets to Kafka (live source or replay file).",
    )
    sub = parser.add_subparsers(dest="kind", required=True, metavar="{prices,tweets}")
    p = sub.add_parser("prices", help="price ticks: ccxt exchange, CoinGecko or replay")
    _common(p, env, "prices")
    g = p.add_argument_group("prices")
    g.add_argument(
        "--source",
        default=env.get(env_names.PRICE_SOURCE, "binance"),
        help=f"binance | coingecko | any ccxt exchange id | replay [${env_names.PRICE_SOURCE}]",
    )
    g.add_argument(
        "--pair",
        default=env.get(env_names.PRICE_PAIR),
        help=f"default <COIN>/USDT [${env_names.PRICE_PAIR}]",
    )
    g.add_argument(
        "--mode",
        choices=["ticker", "ohlcv"],
        default=env.get(env_names.PRICE_MODE, "ticker"),
        help=f"ticker or closed 1-minute candles [${env_names.PRICE_MODE}]",
    )
    g.add_argument(
        "--exchange-api-url",
        default=env.get(EXCHANGE_API_URL_ENV),
        help=f"send ccxt's API requests to this base URL (tests, proxies) [${EXCHANGE_API_URL_ENV}]",
    )
    g.add_argument(
        "--coingecko-base-url",
        default=env.get(COINGECKO_BASE_URL_ENV, "https://api.coingecko.com"),
        help=f"[${COINGECKO_BASE_URL_ENV}]",
    )
    g.add_argument("--coingecko-endpoint", choices=["simple", "market_chart"], default="simple")
    g.add_argument(
        "--coingecko-id", help="CoinGecko coin id (default: known ids, e.g. btc -> bitcoin)"
    )

    t = sub.add_parser(
        "tweets", help="social posts: X API v2 recent search, Bluesky Jetstream, or replay"
    )
    _common(t, env, "tweets")
    g = t.add_argument_group("tweets")
    g.add_argument(
        "--source",
        default=env.get(env_names.TWEET_SOURCE, "x-api"),
        choices=["x-api", "bluesky", "replay"],
        help=f"[${env_names.TWEET_SOURCE}]",
    )
    g.add_argument(
        "--lookback-minutes",
        type=float,
        default=float(env.get(env_names.SOCIAL_LOOKBACK_MINUTES, 60)),
        help="when the topic holds no post of this source yet, start this far back (X: the "
        f"first search's start_time; Bluesky: the cursor) [${env_names.SOCIAL_LOOKBACK_MINUTES}]",
    )
    g.add_argument(
        "--max-pages",
        type=int,
        default=int(env.get(env_names.X_MAX_PAGES, 10)),
        help="X recent search: pages per poll; a longer result continues at the next poll "
        f"[${env_names.X_MAX_PAGES}]",
    )
    g.add_argument(
        "--jetstream-url",
        default=env.get(env_names.JETSTREAM_URLS),
        help="Bluesky: comma-separated Jetstream endpoints wss://host, rotated on reconnect "
        f"(default: Bluesky's four public instances) [${env_names.JETSTREAM_URLS}]",
    )
    g.add_argument(
        "--cursor-margin-seconds",
        type=float,
        default=10.0,
        help="Bluesky: resume this far before the newest post seen (repeats are dropped by id)",
    )
    g.add_argument(
        "--stream-stall-seconds",
        type=float,
        default=60.0,
        help="Bluesky: reconnect when the stream delivers nothing for this long",
    )
    g.add_argument(
        "--keywords",
        default=env.get(env_names.TWEET_KEYWORDS),
        help=f"comma-separated search terms (default: the coin) [${env_names.TWEET_KEYWORDS}]",
    )
    g.add_argument("--cashtags", default=None, help="comma-separated cashtags (default: the coin)")
    g.add_argument(
        "--languages",
        default=env.get(env_names.TWEET_LANGUAGES),
        help=f"comma-separated languages, e.g. en,es [${env_names.TWEET_LANGUAGES}]",
    )
    g.add_argument(
        "--x-api-base-url",
        default=env.get(env_names.X_API_BASE_URL, "https://api.x.com"),
        help=f"[${env_names.X_API_BASE_URL}]",
    )
    g.add_argument(
        "--tweet-mode",
        choices=["search", "stream"],
        default=env.get(TWEET_MODE_ENV, "search"),
        help="recent-search polling with since_id (Basic tier, resumes after restarts) or the "
        f"filtered stream (Pro tier) [${TWEET_MODE_ENV}]",
    )
    g.add_argument(
        "--backfill-minutes",
        type=int,
        help="stream only: recover up to 5 minutes after a reconnect",
    )
    g.add_argument("--max-results", type=int, default=100, help="tweets per page (10-100)")
    g.add_argument(
        "--bearer-token-file",
        type=Path,
        default=env.get(env_names.X_BEARER_TOKEN_FILE),
        help=f"file holding the bearer token (a mounted Secret); or set ${env_names.X_BEARER_TOKEN} "
        "(never a flag: command lines are visible to every process)",
    )
    return parser


class SettingsError(ValueError):
    pass


def parse(argv: list[str], env: Mapping[str, str] | None = None) -> Settings:
    env = os.environ if env is None else env
    args = build_parser(env).parse_args(argv)
    if not args.coin:
        raise SettingsError(f"no coin: pass --coin or set {env_names.COIN}")
    coin = normalize_coin(args.coin)
    source = args.source
    if source == "replay" and not args.replay_file:
        raise SettingsError(f"replay needs --replay-file or {env_names.REPLAY_FILE}")
    if args.replay_speed < 0:
        raise SettingsError("--replay-speed must be >= 0")
    if args.kind == "tweets" and (args.lookback_minutes <= 0 or args.max_pages < 1):
        raise SettingsError("--lookback-minutes must be > 0 and --max-pages >= 1")
    common = dict(
        kind=args.kind,
        coin=coin,
        source=source,
        bootstrap=args.bootstrap,
        metrics_port=args.metrics_port,
        metrics_host=args.metrics_host,
        log_level=args.log_level,
        poll_interval=args.poll_interval,
        policy=RetryPolicy(args.backoff_base, args.backoff_cap, args.max_wait, args.max_attempts),
        max_buffered=args.max_buffered,
        shutdown_timeout=args.shutdown_timeout,
        max_block_ms=args.max_block_ms,
        kafka_stall_seconds=args.kafka_stall_seconds,
        liveness_stall_seconds=args.liveness_stall_seconds,
        replay_file=Path(args.replay_file) if args.replay_file else None,
        replay_speed=args.replay_speed,
        rebase=args.rebase,
        kafka_timestamp=args.kafka_timestamp,
        at_end=args.at_end,
    )
    if args.kind == "prices":
        return Settings(
            **common,
            pair=args.pair or f"{coin.upper()}/USDT",
            mode=args.mode,
            exchange_api_url=args.exchange_api_url,
            coingecko_base_url=args.coingecko_base_url,
            coingecko_endpoint=args.coingecko_endpoint,
            coingecko_id=args.coingecko_id,
        )
    return Settings(
        **common,
        keywords=_csv(args.keywords) or [coin],
        cashtags=_csv(args.cashtags) if args.cashtags is not None else [coin.upper()],
        languages=_csv(args.languages),
        x_api_base_url=args.x_api_base_url,
        max_results=args.max_results,
        tweet_mode=args.tweet_mode,
        backfill_minutes=args.backfill_minutes,
        bearer_token_file=Path(args.bearer_token_file) if args.bearer_token_file else None,
        lookback_minutes=args.lookback_minutes,
        max_pages=args.max_pages,
        jetstream_urls=_csv(args.jetstream_url),
        cursor_margin_seconds=args.cursor_margin_seconds,
        stream_stall_seconds=args.stream_stall_seconds,
    )


def bearer_token(settings: Settings, env: Mapping[str, str] | None = None) -> str:
    """The X bearer token from the mounted file or the environment; an error names only the source."""
    env = os.environ if env is None else env
    if settings.bearer_token_file is not None:
        try:
            token = settings.bearer_token_file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise SettingsError(
                f"cannot read the bearer token file {settings.bearer_token_file}: {exc.strerror}"
            ) from None
        if not token:
            raise SettingsError(f"the bearer token file {settings.bearer_token_file} is empty")
        return token
    token = env.get(env_names.X_BEARER_TOKEN, "").strip()
    if not token:
        raise SettingsError(
            f"no X bearer token: set {env_names.X_BEARER_TOKEN} or {env_names.X_BEARER_TOKEN_FILE}"
        )
    return token


def exchange_keys(env: Mapping[str, str] | None = None) -> tuple[str | None, str | None]:
    env = os.environ if env is None else env
    return env.get(env_names.EXCHANGE_API_KEY) or None, env.get(
        env_names.EXCHANGE_API_SECRET
    ) or None
