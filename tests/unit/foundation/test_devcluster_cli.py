"""`coinfeed kafka` and `coinfeed` usage, and the errors that stop `up` before any JVM starts."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from coinfeed import cli
from coinfeed.devcluster import cli as kafka_cli
from tests.support.ports import free_ports


def test_coinfeed_usage_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--help"]) == 0
    out = capsys.readouterr().out
    for name in ("producer", "operator", "hourly", "kafka", "demo"):
        assert f"  {name}" in out


def test_unknown_command_is_an_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["kafak"]) == 2
    assert "unknown command 'kafak'" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["kafka", "--help"], ["kafka", "up", "--help"]])
def test_kafka_help(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        cli.main(argv)
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    if argv[-2] == "up":
        assert "--mode {zookeeper,kraft}" in out and "--broker-ports" in out
        assert "--run-dir" in out
    else:
        assert "{up,down,status,k8s-secrets}" in out and "KAFKA_MODE=kraft" in out


def test_mode_defaults_to_kafka_mode_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_MODE", "kraft")
    assert kafka_cli.build_parser().parse_args(["up"]).mode == "kraft"
    monkeypatch.delenv("KAFKA_MODE")
    assert kafka_cli.build_parser().parse_args(["up"]).mode == "zookeeper"


def test_security_defaults_to_kafka_security_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_SECURITY", "sasl_ssl")
    assert kafka_cli.build_parser().parse_args(["up"]).security == "sasl_ssl"
    monkeypatch.delenv("KAFKA_SECURITY")
    assert kafka_cli.build_parser().parse_args(["up"]).security == "plaintext"


def test_sasl_ssl_with_kraft_is_refused_before_any_jvm(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["up", "--mode", "kraft", "--security", "sasl_ssl", "--run-dir", str(tmp_path)]
    assert kafka_cli.main(argv) == 1
    assert "KAFKA_SECURITY=sasl_ssl needs KAFKA_MODE=zookeeper" in capsys.readouterr().err


@pytest.mark.parametrize("ports", ["9092,9093", "a,b,c", "1,2,3,4"])
def test_bad_port_lists_rejected(ports: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        kafka_cli.main(["up", "--broker-ports", ports])
    assert exit_.value.code == 2
    assert "--broker-ports" in capsys.readouterr().err


def test_port_in_use_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    b1, b2, b3, zk = free_ports(4)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", b2))
        busy.listen()
        rc = kafka_cli.main(
            [
                "up",
                "--run-dir",
                str(tmp_path),
                "--broker-ports",
                f"{b1},{b2},{b3}",
                "--zookeeper-port",
                str(zk),
            ]
        )
    assert rc == 1
    err = capsys.readouterr().err
    assert f"port {b2} (broker-2) on 127.0.0.1 is already in use" in err
    assert not list((tmp_path / "pids").glob("*.pid"))  # nothing was started


def test_missing_jars_say_run_make_setup(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("COINFEED_CACHE", str(tmp_path / "empty-cache"))
    b1, b2, b3, zk = free_ports(4)
    rc = kafka_cli.main(
        [
            "up",
            "--run-dir",
            str(tmp_path / "run"),
            "--broker-ports",
            f"{b1},{b2},{b3}",
            "--zookeeper-port",
            str(zk),
        ]
    )
    assert rc == 1
    err = capsys.readouterr().err
    assert "jars not found" in err and "run `make setup`" in err
    assert str(tmp_path / "empty-cache") in err


def test_non_loopback_host_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert kafka_cli.main(["up", "--run-dir", str(tmp_path), "--host", "192.0.2.1"]) == 1
    assert "not a loopback address" in capsys.readouterr().err


def test_up_refuses_a_run_dir_of_the_other_mode(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from coinfeed.devcluster import ClusterSpec

    spec = ClusterSpec(run_dir=tmp_path, mode="zookeeper")
    tmp_path.joinpath("cluster.json").write_text(spec.to_json())
    (tmp_path / "data").mkdir()
    b1, b2, b3, c1, c2, c3 = free_ports(6)
    rc = kafka_cli.main(
        [
            "up",
            "--run-dir",
            str(tmp_path),
            "--mode",
            "kraft",
            "--broker-ports",
            f"{b1},{b2},{b3}",
            "--controller-ports",
            f"{c1},{c2},{c3}",
        ]
    )
    assert rc == 1
    assert "holds a zookeeper cluster" in capsys.readouterr().err
