"""`coinfeed kafka k8s-secrets`: the Secrets the secured charts name, with stores Java can read."""

from __future__ import annotations

import base64
import json
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID

from coinfeed.devcluster import cli as kafka_cli
from coinfeed.devcluster import k8s_secrets as ks
from coinfeed.devcluster.kafka import find_java

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[3]


def _data(manifest: dict[str, Any]) -> dict[str, dict[str, bytes]]:
    return {
        s["metadata"]["name"]: {k: base64.b64decode(v) for k, v in s["data"].items()}
        for s in manifest["items"]
    }


@pytest.fixture(scope="module")
def made() -> tuple[ks.SecuredRelease, dict[str, dict[str, bytes]]]:
    release, manifest = ks.secured_release("sec", ["btc", "eth"])
    assert {s["metadata"]["namespace"] for s in manifest["items"]} == {"sec"}
    return release, _data(manifest)


def test_every_secret_the_secured_values_name_is_made(
    made: tuple[ks.SecuredRelease, dict[str, dict[str, bytes]]],
) -> None:
    _, secrets = made
    values = yaml.safe_load((REPO / "charts/coinfeed/ci/sasl-ssl-values.yaml").read_text())
    named = {
        values["kafka"]["sasl"]["existingSecret"]: {"jaas-config"},
        values["kafka"]["sasl"]["usersSecret"]: {
            "coinfeed-operator",
            "coinfeed-spark",
            "coinfeed-producer-btc",
            "coinfeed-producer-eth",
        },
        values["kafka"]["tls"]["existingSecret"]: {"keystore.p12", "truststore.p12", "password"},
        values["operator"]["kafka"]["caSecret"]: {"ca.crt"},
        values["operator"]["kafka"]["operatorCredentialsSecret"]: {"username", "password"},
        values["operator"]["kafka"]["hourlyCredentialsSecret"]: {"username", "password"},
        "coinfeed-kafka-producer-btc": {"username", "password"},
        "coinfeed-kafka-producer-eth": {"username", "password"},
    }
    assert {name: set(keys) for name, keys in secrets.items()} == named


def test_each_client_logs_in_as_its_own_user_with_the_password_the_brokers_store(
    made: tuple[ks.SecuredRelease, dict[str, dict[str, bytes]]],
) -> None:
    release, secrets = made
    users = secrets[ks.USERS_SECRET]
    for secret, user in (
        (ks.OPERATOR_SECRET, "coinfeed-operator"),
        (ks.SPARK_SECRET, "coinfeed-spark"),
        (ks.producer_secret("btc"), "coinfeed-producer-btc"),
        (ks.producer_secret("eth"), "coinfeed-producer-eth"),
    ):
        assert secrets[secret]["username"] == user.encode()
        assert secrets[secret]["password"] == users[user] == release.passwords[user].encode()
    assert len(set(users.values())) == len(users)  # no two users share a password
    assert b"password" not in secrets[ks.JAAS_SECRET]["jaas-config"]  # users live in Kafka


def test_the_broker_store_has_the_names_and_usages_of_both_listeners(
    made: tuple[ks.SecuredRelease, dict[str, dict[str, bytes]]],
) -> None:
    release, secrets = made
    tls = secrets[ks.TLS_SECRET]
    assert tls["password"] == release.store_password.encode()
    store = pkcs12.load_pkcs12(tls["keystore.p12"], tls["password"])
    assert store.key is not None and store.cert is not None
    cert = store.cert.certificate
    assert cert.subject.rfc4514_string() == "CN=coinfeed-kafka-broker"  # tls.brokerPrincipal
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    names = set(sans.get_values_for_type(x509.DNSName))
    assert {"coinfeed-kafka", "*.coinfeed-kafka-headless.sec.svc.cluster.local"} <= names
    usages = set(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)
    assert {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH} <= usages
    ca = x509.load_pem_x509_certificate(release.ca_pem)
    assert cert.issuer == ca.subject
    with pytest.raises(ValueError):
        pkcs12.load_pkcs12(tls["keystore.p12"], b"not-the-password")


def test_java_reads_the_truststore_as_a_trusted_ca(
    made: tuple[ks.SecuredRelease, dict[str, dict[str, bytes]]], tmp_path: Path
) -> None:
    release, secrets = made
    tls = secrets[ks.TLS_SECRET]
    path = tmp_path / "truststore.p12"
    path.write_bytes(tls["truststore.p12"])
    keytool = str(Path(find_java()).with_name("keytool"))
    out = subprocess.run(
        [keytool, "-list", "-storetype", "PKCS12", "-keystore", str(path), "-storepass",
         release.store_password],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert "trustedCertEntry" in out and "PrivateKeyEntry" not in out, out


def test_the_cli_writes_a_private_file_and_prints_no_secret(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "secrets.json"
    args = ["k8s-secrets", "-n", "sec", "--coin", "btc,eth", "--coin", "sol", "-o", str(out)]
    assert kafka_cli.main(args) == 0
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    secrets = _data(json.loads(out.read_text()))
    assert {"coinfeed-kafka-producer-sol", "coinfeed-kafka-producer-eth"} <= set(secrets)
    printed = capsys.readouterr()
    for password in secrets[ks.USERS_SECRET].values():
        assert password.decode() not in printed.out + printed.err
    assert "wrote 9 Secrets" in printed.out


def test_no_coin_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one coin"):
        ks.secured_release("sec", [])
