"""versions.env: the one source of pinned versions."""

from __future__ import annotations

import pytest

from coinfeed import paths, versions


def test_parse_skips_comments_and_blank_lines() -> None:
    text = "# pins\n\nKAFKA_VERSION=3.9.1\n  SPARK_VERSION = 4.2.0  \n"
    assert versions.parse_versions(text) == {"KAFKA_VERSION": "3.9.1", "SPARK_VERSION": "4.2.0"}


@pytest.mark.parametrize("line", ["KAFKA_VERSION", "=3.9.1"])
def test_parse_rejects_a_line_without_key_and_value(line: str) -> None:
    with pytest.raises(ValueError, match="line 2: expected KEY=value"):
        versions.parse_versions(f"# ok\n{line}\n")


def test_repository_pins() -> None:
    # 3.9 is the last Kafka line that runs with ZooKeeper; the cluster's ZooKeeper mode needs it.
    assert versions.get("KAFKA_VERSION").startswith("3.9.")
    assert versions.get("SCALA_BINARY_VERSION") == "2.13"
    with pytest.raises(KeyError, match="NOT_A_PIN is not pinned"):
        versions.get("NOT_A_PIN")


def test_jar_dirs_are_keyed_by_the_pins() -> None:
    assert paths.kafka_jars_dir().name == f"kafka_2.13-{versions.get('KAFKA_VERSION')}"


def test_shipped_pins_equal_versions_env() -> None:
    """The installed package reads coinfeed/pinned_versions.py (an image has no versions.env);
    it must say exactly what versions.env says."""
    from coinfeed import pinned_versions

    env = versions.parse_versions(versions.VERSIONS_FILE.read_text(encoding="utf-8"))
    assert env == pinned_versions.PINS
    assert versions.versions() == env
    assert versions.main(["--check"]) == 0, "run `python -m coinfeed.versions`"


def test_render_module_round_trips() -> None:
    source = versions.render_module('# c\nA_VERSION=1.2\nB="x"\n')
    namespace: dict[str, object] = {}
    exec(compile(source, "pinned_versions.py", "exec"), namespace)
    assert namespace["PINS"] == {"A_VERSION": "1.2", "B": '"x"'}
