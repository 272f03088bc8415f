"""Starting, locating and stopping the test API server."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from coinfeed import versions
from localnode.apiserver import (
    BinariesMissingError,
    KubeAPIServer,
    find_binaries,
)
from tests.support.apiserver import Kubectl


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def test_missing_binaries_name_the_fix(tmp_path: Path) -> None:
    (tmp_path / "etcd").write_text("#!/bin/sh\n")
    (tmp_path / "etcd").chmod(0o755)
    with pytest.raises(BinariesMissingError) as err:
        find_binaries({"KUBEBUILDER_ASSETS": str(tmp_path)})
    message = str(err.value)
    assert "kube-apiserver not found" in message
    assert str(tmp_path) in message
    assert "make envtest" in message and "KUBEBUILDER_ASSETS" in message


def test_start_serves_and_stop_ends_both_processes(
    kube_apiserver: KubeAPIServer, tmp_path: Path
) -> None:
    # A second, private server (the session one stays up for the other tests).
    server = KubeAPIServer(tmp_path / "run")
    with server:
        status, body = server.request("GET", "/version")
        assert status == 200
        assert '"gitVersion"' in body
        procs = [server._apiserver, server._etcd]
        ports = [server.layout.secure_port, server.layout.etcd_client_port]
        assert all(_listening(p) for p in ports)
    assert all(p is not None and p.poll() is not None for p in procs)
    assert not any(_listening(p) for p in ports)
    server.stop()  # a second stop is harmless


def test_server_and_kubectl_report_the_pinned_release(
    kube_apiserver: KubeAPIServer, kubectl: Kubectl
) -> None:
    # helm checks charts' kubeVersion against this: an unstamped build would say v0.0.0-master.
    pinned = "v" + versions.get("KUBERNETES_VERSION")
    reported = json.loads(kubectl("version", "-o", "json").stdout)
    assert reported["serverVersion"]["gitVersion"] == pinned
    if find_binaries().kubectl is None:
        pytest.skip("KUBEBUILDER_ASSETS has no kubectl of its own; PATH's kubectl is used")
    assert reported["clientVersion"]["gitVersion"] == pinned


def test_a_port_taken_before_startup_is_survived_on_new_ports(
    kube_apiserver: KubeAPIServer, tmp_path: Path
) -> None:
    server = KubeAPIServer(tmp_path / "run")
    taken = server.layout.secure_port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as squatter:
        squatter.bind(("127.0.0.1", taken))
        squatter.listen()
        with server:
            assert server.layout.secure_port != taken
            assert server.request("GET", "/readyz")[0] == 200
    first_try = (tmp_path / "run" / "kube-apiserver.attempt1.log").read_text()
    assert "address already in use" in first_try
