"""The Dockerfiles cannot be built here (no Docker engine); check what can be checked without one:
multi-stage, pinned bases, non-root, and every COPY source present and not excluded by the
repository's .dockerignore (the build context is the repository root)."""

from __future__ import annotations

import fnmatch
import re

import pytest

from coinfeed import versions

REPO = versions.REPO_ROOT
IMAGES = ["producer", "operator", "spark"]


def instructions(image: str) -> list[tuple[str, str]]:
    text = (REPO / "images" / image / "Dockerfile").read_text()
    text = re.sub(r"\\\n", " ", text)
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def resolve_args(image: str, value: str) -> str:
    args = {}
    for word, rest in instructions(image):
        if word == "ARG" and "=" in rest:
            k, _, v = rest.partition("=")
            args[k] = v
    for _ in range(3):
        value = re.sub(r"\$\{(\w+)\}", lambda m: args.get(m.group(1), m.group(0)), value)
    return value


def dockerignore_allows(path: str) -> bool:
    """Docker's rule: the last matching pattern wins; `!` re-includes."""
    allowed = True
    for raw in (REPO / ".dockerignore").read_text().splitlines():
        pattern = raw.strip()
        if not pattern or pattern.startswith("#"):
            continue
        negate = pattern.startswith("!")
        pattern = pattern.lstrip("!").rstrip("/")
        if pattern == "**" or fnmatch.fnmatch(path, pattern) or path.startswith(pattern + "/"):
            allowed = negate
    return allowed


@pytest.mark.parametrize("image", IMAGES)
def test_multi_stage_pinned_non_root(image: str) -> None:
    steps = instructions(image)
    bases = [resolve_args(image, rest.split()[0]) for word, rest in steps if word == "FROM"]
    assert len(bases) >= 2, f"{image}: not multi-stage"
    for base in bases:
        if base in {
            rest.split()[-1] for w, rest in steps if w == "FROM" and " AS " in rest.upper()
        }:
            continue  # a previous stage
        assert ":" in base and not base.endswith(":latest"), f"{image}: base {base} not pinned"
    users = [rest for word, rest in steps if word == "USER"]
    assert users, f"{image}: no USER"
    assert users[-1].split(":")[0] not in ("root", "0"), f"{image}: runs as root"


@pytest.mark.parametrize("image", IMAGES)
def test_copy_sources_exist_and_reach_the_build_context(image: str) -> None:
    for word, rest in instructions(image):
        if word != "COPY" or rest.startswith("--from"):
            continue
        *sources, _dest = rest.split()
        for src in sources:
            src = src.rstrip("/")
            # A wildcard source (samples/*.jsonl.gz) must match files, each in the context.
            paths = sorted(REPO.glob(src)) if "*" in src else [REPO / src]
            assert paths and all(p.exists() for p in paths), f"{image}: COPY {src} does not exist"
            for path in paths:
                rel = str(path.relative_to(REPO))
                assert dockerignore_allows(rel), f"{image}: COPY {rel} is excluded by .dockerignore"


def test_spark_image_bakes_the_kafka_connector_for_the_pinned_spark() -> None:
    text = (REPO / "images" / "spark" / "Dockerfile").read_text()
    assert f"ARG SPARK_VERSION={versions.get('SPARK_VERSION')}" in text
    assert f"ARG SCALA_BINARY_VERSION={versions.get('SCALA_BINARY_VERSION')}" in text
    assert "scripts/jvm/spark-kafka-pom.xml" in text
    # Where coinfeed.paths.spark_kafka_jars() looks when COINFEED_CACHE=/opt/coinfeed/cache.
    assert "COINFEED_CACHE=/opt/coinfeed/cache" in text
    assert (
        "/opt/coinfeed/cache/jars/spark-sql-kafka-0-10_${SCALA_BINARY_VERSION}-${SPARK_VERSION}/"
        in text
    )


def test_dockerignore_keeps_the_context_small() -> None:
    for excluded in (".venv", ".git", "tests", "run", "charts"):
        assert not dockerignore_allows(excluded), f"{excluded} would be sent to the Docker daemon"
