"""The Kubernetes Secrets a secured release needs (``charts/coinfeed/ci/sasl-ssl-values.yaml``):
a throw-away CA, the brokers' PKCS#12 key and trust stores, the SCRAM users, and one credentials
Secret per client (operator, hourly job, one producer per coin).

For trying the secured mode (kind, the local node, the node tests); production brings its own PKI
(e.g. cert-manager) and password store, under the same Secret names and keys. Pure: returns the
Secret objects; ``coinfeed kafka k8s-secrets`` writes them to a 0600 file for ``kubectl apply``.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

# The names charts/coinfeed/ci/sasl-ssl-values.yaml refers to (one place here, tested there).
TLS_SECRET = "kafka-client-tls"
JAAS_SECRET = "kafka-client-jaas"
USERS_SECRET = "coinfeed-kafka-users"
CA_SECRET = "coinfeed-kafka-ca"
OPERATOR_SECRET = "coinfeed-kafka-operator"
SPARK_SECRET = "coinfeed-kafka-spark"
OPERATOR_USER = "coinfeed-operator"
SPARK_USER = "coinfeed-spark"
BROKER_CN = "coinfeed-kafka-broker"  # the chart's default tls.brokerPrincipal is User:CN=<this>
SCRAM_JAAS = "org.apache.kafka.common.security.scram.ScramLoginModule required;"


def producer_user(coin: str) -> str:
    """The producer's SCRAM user: kafka-users.sh grants it exactly this coin's topics."""
    return f"coinfeed-producer-{coin}"


def producer_secret(coin: str) -> str:
    """The Secret a CoinFeed names in ``spec.kafka.credentialsSecretRef``."""
    return f"coinfeed-kafka-producer-{coin}"


def broker_names(fullname: str, namespace: str, cluster_domain: str) -> list[str]:
    """Every name a client may use for a broker: the bootstrap Service in its short and long
    forms, and each pod under the headless Service (the advertised listeners)."""
    svc = [fullname, f"{fullname}.{namespace}", f"{fullname}.{namespace}.svc"]
    svc.append(f"{fullname}.{namespace}.svc.{cluster_domain}")
    headless = f"{fullname}-headless.{namespace}.svc"
    return [*svc, f"*.{headless}", f"*.{headless}.{cluster_domain}"]


@dataclass(frozen=True)
class SecuredRelease:
    """What the Secrets hold, so a caller (a test) can also act as these users."""

    namespace: str
    coins: tuple[str, ...]
    ca_pem: bytes
    store_password: str
    passwords: dict[str, str] = field(repr=False)


def secret_object(name: str, namespace: str, data: dict[str, bytes]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {"app.kubernetes.io/part-of": "coinfeed"},
        },
        "type": "Opaque",
        "data": {k: base64.b64encode(v).decode() for k, v in sorted(data.items())},
    }


def broker_stores(
    ca_pem: bytes, ca_key_pem: bytes, names: Sequence[str], password: str
) -> tuple[bytes, bytes]:
    """(keystore.p12, truststore.p12) for the brokers: one key + certificate (server and client
    usages, since the internal listener is mutual TLS) with ``names`` as SANs, signed by the CA;
    and a Java truststore holding the CA as a trusted entry (a plain PKCS#12 certificate bag is
    not a trusted entry for Java)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.serialization import pkcs12

    from coinfeed.devcluster.pki import cert, new_key

    ca_cert = x509.load_pem_x509_certificate(ca_pem)
    ca_key = serialization.load_pem_private_key(ca_key_pem, password=None)
    key = new_key()
    broker = x509.load_pem_x509_certificate(
        cert(
            BROKER_CN,
            (),
            key,
            (ca_cert.subject, ca_key),
            server_names=names,
            client_and_server=True,
        )
    )
    encryption = serialization.BestAvailableEncryption(password.encode())
    keystore = pkcs12.serialize_key_and_certificates(b"broker", key, broker, [ca_cert], encryption)
    truststore = pkcs12.serialize_java_truststore(
        [pkcs12.PKCS12Certificate(ca_cert, b"coinfeed-ca")], encryption
    )
    return keystore, truststore


def secured_release(
    namespace: str,
    coins: Sequence[str],
    fullname: str = "coinfeed-kafka",
    cluster_domain: str = "cluster.local",
) -> tuple[SecuredRelease, dict[str, Any]]:
    """A new CA, stores and random passwords: (what they are, the ``v1 List`` of Secrets)."""
    from coinfeed.devcluster.kafka import new_ca

    if not coins:
        raise ValueError("name at least one coin: each producer gets its own Kafka user")
    ca_pem, ca_key_pem = new_ca()
    store_password = secrets.token_urlsafe(24)
    users = [OPERATOR_USER, SPARK_USER, *(producer_user(c) for c in coins)]
    passwords = {u: secrets.token_urlsafe(24) for u in users}
    keystore, truststore = broker_stores(
        ca_pem, ca_key_pem, broker_names(fullname, namespace, cluster_domain), store_password
    )

    def creds(user: str) -> dict[str, bytes]:
        return {"username": user.encode(), "password": passwords[user].encode()}

    items = [
        secret_object(
            TLS_SECRET,
            namespace,
            {
                "keystore.p12": keystore,
                "truststore.p12": truststore,
                "password": store_password.encode(),
            },
        ),
        secret_object(JAAS_SECRET, namespace, {"jaas-config": SCRAM_JAAS.encode()}),
        secret_object(USERS_SECRET, namespace, {u: p.encode() for u, p in passwords.items()}),
        secret_object(CA_SECRET, namespace, {"ca.crt": ca_pem}),
        secret_object(OPERATOR_SECRET, namespace, creds(OPERATOR_USER)),
        secret_object(SPARK_SECRET, namespace, creds(SPARK_USER)),
        *(secret_object(producer_secret(c), namespace, creds(producer_user(c))) for c in coins),
    ]
    release = SecuredRelease(namespace, tuple(coins), ca_pem, store_password, passwords)
    return release, {"apiVersion": "v1", "kind": "List", "items": items}
