"""Seeded generator of the shipped SYNTHETIC sample: ~48 h of 1-minute prices, X posts and
Bluesky posts per coin.

Prices are a random walk at realistic levels and volatility whose drift follows a hidden "mood"
process; posts on both platforms are drawn from the same mood about an hour earlier, so post
sentiment loosely leads price (the demo's correlation panels have something to find). Bluesky
posts look like what the Jetstream producer writes (``at://`` ids, ``did:plc`` authors,
``observed_at``, no engagement counts). Every record says ``source: "synthetic"``; every author is
``synthetic_user_NNN`` / ``synthetic-user-NNN.example``. Same seed and options -> byte-identical
files.

    python -m coinfeed.producers.samplegen --out samples
"""

from __future__ import annotations

import argparse
import gzip
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Final

from coinfeed.producers.batch import Record
from coinfeed.producers.replay import dump_line
from coinfeed.schemas import PriceTick, Tweet

SOURCE: Final = "synthetic"
DEFAULT_SEED: Final = 20240321
DEFAULT_START: Final = datetime(2025, 3, 3, tzinfo=UTC)
TWITTER_EPOCH_MS: Final = 1288834974657  # snowflake ids grow with time, as since_id relies on
BLUESKY_SHARE: Final = 0.4  # Bluesky posts per X post
TID_ALPHABET: Final = "234567abcdefghijklmnopqrstuvwxyz"  # atproto's base32-sortable


@dataclass(frozen=True)
class CoinProfile:
    symbol: str
    name: str
    start_price: float
    minute_vol: float  # std-dev of 1-minute log returns (~50-65 % annualised)
    volume: float  # typical base volume per minute
    tweets_per_minute: float


PROFILES: Final[dict[str, CoinProfile]] = {
    "btc": CoinProfile("btc", "Bitcoin", 87_400.0, 0.00070, 18.0, 2.5),
    "eth": CoinProfile("eth", "Ethereum", 2_210.0, 0.00090, 420.0, 2.0),
}

# Words the VADER lexicon scores clearly (the hourly job scores sentiment with VADER).
POSITIVE: Final = ("great", "amazing", "strong", "happy", "excited", "good")
NEGATIVE: Final = ("terrible", "weak", "scared", "ugly", "worried", "bad")
POSITIVE_NOUNS: Final = ("love", "profit", "win", "gains")
NEGATIVE_NOUNS: Final = ("panic", "fear", "crash", "dump", "loss")
TEMPLATES_EN: Final = (
    "{adj_cap} day for ${tag}, {name} looks {adj} right now {hashtags}",
    "${tag} at {price} and I feel {adj} about it {hashtags}",
    "Watching {name} closely. Momentum is {adj}. {hashtags}",
    "{name} {adj} vibes today, ${tag} {arrow} {hashtags}",
    "Not financial advice but ${tag} feels {adj} here {hashtags}",
    "Just checked ${tag}: {price}. {adj_cap}! {hashtags}",
    "So much {noun} on ${tag} today {hashtags}",
    "{name}: {noun} everywhere, ${tag} {arrow} {hashtags}",
)
NEUTRAL_EN: Final = (
    "${tag} trading around {price} {hashtags}",
    "What is everyone's take on {name} this week? ${tag} {hashtags}",
    "{name} volume update: ${tag} near {price} {hashtags}",
)
OTHER_LANGS: Final[dict[str, tuple[str, ...]]] = {
    "es": ("${tag} en {price}, {name} hoy {hashtags}", "Mirando {name} de cerca ${tag} {hashtags}"),
    "de": ("${tag} steht bei {price} {hashtags}", "{name} heute im Blick ${tag} {hashtags}"),
    "pt": ("${tag} a {price} agora {hashtags}", "De olho no {name} hoje ${tag} {hashtags}"),
    "ja": ("${tag} は {price} {hashtags}", "{name} 今日の動き ${tag} {hashtags}"),
    "fr": ("${tag} à {price} aujourd'hui {hashtags}", "{name} en ce moment ${tag} {hashtags}"),
}
LANG_WEIGHTS: Final = (
    ("en", 0.80),
    ("es", 0.07),
    ("de", 0.04),
    ("pt", 0.04),
    ("ja", 0.03),
    ("fr", 0.02),
)
HASHTAGS: Final[dict[str, tuple[str, ...]]] = {
    "btc": ("Bitcoin", "BTC", "crypto", "HODL", "BitcoinHalving", "Satoshi"),
    "eth": ("Ethereum", "ETH", "crypto", "DeFi", "Web3", "ETH2"),
}


@dataclass(frozen=True)
class Author:
    id: str
    username: str
    followers: int


def _authors(rng: random.Random, n: int = 600) -> list[Author]:
    out = []
    for i in range(n):
        followers = int(min(5_000_000, rng.paretovariate(1.1) * 40))
        out.append(Author(str(10_000_000 + i * 7919), f"synthetic_user_{i:03d}", followers))
    return out


def _did(rng: random.Random) -> str:
    """A did:plc-shaped identifier (24 base32 characters), seeded: no real account."""
    return "did:plc:" + "".join(rng.choice("abcdefghijklmnopqrstuvwxyz234567") for _ in range(24))


def tid(micros: int, clock_id: int) -> str:
    """An atproto TID (record key): 53 bits of microseconds and 10 of clock id, base32-sortable."""
    n = (micros << 10) | (clock_id & 0x3FF)
    return "".join(TID_ALPHABET[(n >> (5 * i)) & 31] for i in reversed(range(13)))


def _mood(rng: random.Random, minutes: int) -> list[float]:
    """Mean-reverting (Ornstein-Uhlenbeck) market mood in about [-2, 2], half-life ~3 h."""
    theta, sigma, x = 1 / 260, 0.09, 0.0
    out = []
    for _ in range(minutes):
        x += -theta * x + sigma * rng.gauss(0, 1)
        out.append(x)
    return out


def _snowflake(ms: int, seq: int) -> str:
    return str(((ms - TWITTER_EPOCH_MS) << 22) | (seq & 0x3FFFFF))


def _weighted(rng: random.Random, pairs: Sequence[tuple[str, float]]) -> str:
    r, acc = rng.random(), 0.0
    for value, weight in pairs:
        acc += weight
        if r < acc:
            return value
    return pairs[-1][0]


def generate(
    coin: str,
    seed: int = DEFAULT_SEED,
    start: datetime = DEFAULT_START,
    hours: int = 48,
    lead_minutes: int = 60,
) -> tuple[list[PriceTick], list[Tweet]]:
    """One coin's prices (one per minute, at each minute's close) and X posts, in time order."""
    prices, tweets, _ = generate_all(coin, seed, start, hours, lead_minutes)
    return prices, tweets


def generate_all(
    coin: str,
    seed: int = DEFAULT_SEED,
    start: datetime = DEFAULT_START,
    hours: int = 48,
    lead_minutes: int = 60,
) -> tuple[list[PriceTick], list[Tweet], list[Tweet]]:
    """Prices, X posts and Bluesky posts of one coin, each in time order."""
    profile = PROFILES[coin]
    # One stream per coin so adding a coin never changes another coin's data.
    rng = random.Random(f"{seed}:{coin}")
    minutes = hours * 60
    mood = _mood(rng, minutes + lead_minutes)
    authors = _authors(rng)
    prices: list[PriceTick] = []
    tweets: list[Tweet] = []
    log_price = math.log(profile.start_price)
    seq = 0
    for m in range(minutes):
        # Price at minute m drifts with the mood of `lead_minutes` earlier: tweets lead price.
        drift = 0.1 * profile.minute_vol * mood[m]
        ret = drift + profile.minute_vol * rng.gauss(0, 1)
        log_price += ret
        price = round(math.exp(log_price), 2)
        ts = start + timedelta(minutes=m + 1)
        volume = round(profile.volume * rng.lognormvariate(0, 0.5) * (1 + 200 * abs(ret)), 4)
        prices.append(
            PriceTick(
                coin=coin,
                source=SOURCE,
                pair=f"{coin.upper()}/USDT",
                ts=ts,
                price=price,
                volume=volume,
            )
        )
        now_mood = mood[m + lead_minutes]
        rate = profile.tweets_per_minute * (1 + 0.4 * min(2.0, abs(now_mood)))
        for _ in range(_poisson(rng, rate)):
            seq += 1
            offset_ms = rng.randrange(60_000)
            created = start + timedelta(minutes=m, milliseconds=offset_ms)
            tweets.append(_tweet(rng, profile, authors, now_mood, price, created, seq))
    tweets.sort(key=lambda t: int(t.id))
    return prices, tweets, _bluesky(coin, seed, start, minutes, mood[lead_minutes:], prices)


def _bluesky(
    coin: str,
    seed: int,
    start: datetime,
    minutes: int,
    mood: list[float],
    prices: list[PriceTick],
) -> list[Tweet]:
    """Bluesky posts from the same mood, with their own random stream (the X posts and prices
    stay as they were)."""
    profile = PROFILES[coin]
    rng = random.Random(f"{seed}:{coin}:bluesky")
    authors = [(_did(rng), f"synthetic-user-{i:03d}.example") for i in range(300)]
    posts: list[Tweet] = []
    for m in range(minutes):
        rate = BLUESKY_SHARE * profile.tweets_per_minute * (1 + 0.4 * min(2.0, abs(mood[m])))
        for _ in range(_poisson(rng, rate)):
            created = start + timedelta(minutes=m, milliseconds=rng.randrange(60_000))
            did, handle = authors[min(len(authors) - 1, int(rng.paretovariate(1.2)) - 1)]
            text, lang, tags = _text(rng, profile, mood[m], prices[m].price)
            micros = int(created.timestamp() * 1_000_000)
            posts.append(
                Tweet(
                    platform="bluesky",
                    coin=coin,
                    id=f"at://{did}/app.bsky.feed.post/{tid(micros, rng.randrange(1024))}",
                    created_at=created,
                    text=text,
                    lang=lang,
                    author_id=did,
                    author_username=handle,
                    hashtags=tags,
                    cashtags=[profile.symbol.upper()],
                    source=SOURCE,
                    # Jetstream sees a post a fraction of a second to a few seconds later
                    observed_at=created + timedelta(milliseconds=rng.randrange(200, 3000)),
                )
            )
    posts.sort(key=lambda p: (p.created_at, p.id))
    return posts


def _text(
    rng: random.Random, profile: CoinProfile, mood: float, price: float
) -> tuple[str, str, list[str]]:
    """Text, language and hashtags of one post, worded after the mood."""
    lang = _weighted(rng, LANG_WEIGHTS)
    tags = rng.sample(HASHTAGS[profile.symbol], k=rng.randint(0, 3))
    fields = {
        "tag": profile.symbol.upper(),
        "name": profile.name,
        "price": f"${price:,.2f}",
        "hashtags": " ".join(f"#{t}" for t in tags),
    }
    positive = rng.random() < 1 / (1 + math.exp(-1.6 * mood))
    if lang != "en":
        text = rng.choice(OTHER_LANGS[lang]).format(**fields)
    elif rng.random() < 0.25:
        text = rng.choice(NEUTRAL_EN).format(**fields)
    else:
        adj = rng.choice(POSITIVE if positive else NEGATIVE)
        noun = rng.choice(POSITIVE_NOUNS if positive else NEGATIVE_NOUNS)
        text = rng.choice(TEMPLATES_EN).format(
            adj=adj,
            adj_cap=adj.capitalize(),
            noun=noun,
            arrow="up" if positive else "down",
            **fields,
        )
    return text.strip(), lang, tags


def _poisson(rng: random.Random, lam: float) -> int:
    limit, k, p = math.exp(-lam), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


def _tweet(
    rng: random.Random,
    profile: CoinProfile,
    authors: list[Author],
    mood: float,
    price: float,
    created: datetime,
    seq: int,
) -> Tweet:
    author = authors[min(len(authors) - 1, int(rng.paretovariate(1.3)) - 1)]
    author = author if rng.random() < 0.3 else rng.choice(authors)
    lang = _weighted(rng, LANG_WEIGHTS)
    p_pos = 1 / (1 + math.exp(-1.6 * mood))
    tags = rng.sample(HASHTAGS[profile.symbol], k=rng.randint(0, 3))
    fields = {
        "tag": profile.symbol.upper(),
        "name": profile.name,
        "price": f"${price:,.2f}",
        "hashtags": " ".join(f"#{t}" for t in tags),
    }
    positive = rng.random() < p_pos
    if lang != "en":
        text = rng.choice(OTHER_LANGS[lang]).format(**fields)
    elif rng.random() < 0.25:
        text = rng.choice(NEUTRAL_EN).format(**fields)
    else:
        adj = rng.choice(POSITIVE if positive else NEGATIVE)
        noun = rng.choice(POSITIVE_NOUNS if positive else NEGATIVE_NOUNS)
        text = rng.choice(TEMPLATES_EN).format(
            adj=adj,
            adj_cap=adj.capitalize(),
            noun=noun,
            arrow="up" if positive else "down",
            **fields,
        )
    reach = math.sqrt(author.followers + 1)
    likes = int(rng.expovariate(1.0) * reach * (0.3 + 0.4 * positive))
    ms = int(created.timestamp() * 1000)
    return Tweet(
        coin=profile.symbol,
        id=_snowflake(ms, seq),
        created_at=created,
        text=text.strip(),
        lang=lang,
        author_id=author.id,
        author_username=author.username,
        author_followers=author.followers,
        like_count=likes,
        retweet_count=int(likes * rng.uniform(0.05, 0.3)),
        reply_count=int(likes * rng.uniform(0.01, 0.1)),
        quote_count=int(likes * rng.uniform(0.0, 0.05)),
        hashtags=tags,
        cashtags=[profile.symbol.upper()],
        source=SOURCE,
    )


def write_jsonl_gz(path: Path, records: Sequence[Record]) -> None:
    """Deterministic gzip: no file name and a zero mtime in the header."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz:
        for record in records:
            gz.write(dump_line(record))


# File name of each stream, per coin (the demo finds them by these names).
SAMPLE_FILES: Final = {
    "prices": "{coin}-prices.jsonl.gz",
    "x": "{coin}-tweets.jsonl.gz",
    "bluesky": "{coin}-bluesky-posts.jsonl.gz",
}


def sample_paths(out: Path, coin: str) -> dict[str, Path]:
    """``prices``, ``x`` and ``bluesky`` -> the coin's file of that stream."""
    return {key: out / name.format(coin=coin) for key, name in SAMPLE_FILES.items()}


def write_sample(
    out: Path, coins: Sequence[str], seed: int = DEFAULT_SEED, hours: int = 48
) -> list[Path]:
    written = []
    for coin in coins:
        prices, x_posts, bluesky_posts = generate_all(coin, seed=seed, hours=hours)
        streams: dict[str, Sequence[Record]] = {
            "prices": prices,
            "x": x_posts,
            "bluesky": bluesky_posts,
        }
        paths = sample_paths(out, coin)
        for key, path in paths.items():
            write_jsonl_gz(path, streams[key])
            written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m coinfeed.producers.samplegen",
        description="Write the SYNTHETIC sample (<coin>-prices.jsonl.gz, <coin>-tweets.jsonl.gz "
        "with X posts, <coin>-bluesky-posts.jsonl.gz with Bluesky posts).",
    )
    parser.add_argument("--out", type=Path, default=Path("samples"), help="output folder")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--hours", type=int, default=48)
    parser.add_argument(
        "--coins", default=",".join(PROFILES), help=f"comma-separated, from {sorted(PROFILES)}"
    )
    args = parser.parse_args(argv)
    coins = [c.strip().lower() for c in args.coins.split(",") if c.strip()]
    unknown = [c for c in coins if c not in PROFILES]
    if unknown:
        parser.error(f"no profile for {unknown}: known coins are {sorted(PROFILES)}")
    for path in write_sample(args.out, coins, args.seed, args.hours):
        print(f"{path}  {path.stat().st_size / 1e6:.2f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
