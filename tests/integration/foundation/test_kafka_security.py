"""KAFKA_SECURITY=sasl_ssl on real brokers: SCRAM-SHA-512 over TLS for clients and brokers,
ACLs per producer, and every kind of refusal named in the error, with nothing written."""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import os
import stat
from pathlib import Path
from typing import Any

import pytest
from kafka import TopicPartition
from kafka.errors import KafkaError, KafkaTimeoutError, TopicAuthorizationFailedError

from coinfeed.devcluster import LocalKafkaCluster
from coinfeed.devcluster.config import ADMIN_USER, BROKER_IDS, broker_name
from coinfeed.devcluster.kafka import (
    NodeFailedError,
    broker_keystore,
    new_ca,
    write_private,
)
from coinfeed.kafka import make_consumer, make_producer
from coinfeed.kafka_acls import producer_grants, reader_grants
from coinfeed.kafka_security import KafkaSecurity
from coinfeed.topics import topic_name
from tests.support.kafka import KafkaClusterFactory

BTC = topic_name("btc", "prices")
ETH = topic_name("eth", "prices")
QUICK: dict[str, Any] = {"bootstrap_timeout_ms": 5_000, "max_block_ms": 5_000}


@pytest.fixture(scope="module")
def secured(kafka_cluster_factory: KafkaClusterFactory) -> LocalKafkaCluster:
    cluster = kafka_cluster_factory("zookeeper", security="sasl_ssl")
    cluster.admin().create_topics(
        {t: {"num_partitions": 3, "replication_factor": 3} for t in (BTC, ETH)},
        wait_for_metadata=True,
    )
    for t in (BTC, ETH):
        cluster.wait_in_sync(t, timeout=60)
    return cluster


@pytest.fixture(scope="module")
def btc_producer(secured: LocalKafkaCluster) -> KafkaSecurity:
    return secured.add_user("producer-btc", producer_grants("btc"))


def end_offsets(cluster: LocalKafkaCluster, topic: str) -> int:
    """Total records in ``topic``, read as the super user."""
    consumer = make_consumer(bootstrap=cluster.bootstrap, security=cluster.admin_security())
    try:
        tps = [TopicPartition(topic, p) for p in range(3)]
        return sum(consumer.end_offsets(tps).values())
    finally:
        consumer.close()


def test_only_authenticated_tls_listeners(secured: LocalKafkaCluster) -> None:
    for b in BROKER_IDS:
        path = secured.spec.config_path(broker_name(b))
        props = dict(
            line.split("=", 1) for line in path.read_text(encoding="utf-8").splitlines() if line
        )
        assert props["listeners"].startswith("SASL_SSL://"), props["listeners"]
        assert "PLAINTEXT://" not in props["listeners"].replace("SASL_", "")
        assert props["security.inter.broker.protocol"] == "SASL_SSL"
        assert props["allow.everyone.if.no.acl.found"] == "false"
        assert props["authorizer.class.name"].endswith("AclAuthorizer")
        # The file holds the brokers' own password: owner only.
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    password = secured.password(ADMIN_USER)
    for node in secured.spec.node_names():
        pid = secured.pid(node)
        assert pid is not None
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        assert password.encode() not in cmdline, f"{node}'s argv holds the admin password"


def test_producer_writes_its_own_coin_only(
    secured: LocalKafkaCluster, btc_producer: KafkaSecurity
) -> None:
    before_eth = end_offsets(secured, ETH)
    producer = make_producer(secured.bootstrap, security=btc_producer, **QUICK)
    try:
        producer.send(BTC, b"{}", key=b"k").get(30)
        with pytest.raises(TopicAuthorizationFailedError) as err:
            producer.send(ETH, b"{}", key=b"k").get(30)
        assert ETH in str(err.value)
    finally:
        producer.close(timeout=5)
    assert end_offsets(secured, ETH) == before_eth
    assert end_offsets(secured, BTC) >= 1


def test_reader_reads_but_cannot_write(secured: LocalKafkaCluster) -> None:
    reader = secured.add_user("spark-reader", reader_grants())
    consumer = make_consumer(bootstrap=secured.bootstrap, security=reader)
    try:
        assert consumer.partitions_for_topic(BTC) == {0, 1, 2}
    finally:
        consumer.close()
    before = end_offsets(secured, BTC)
    producer = make_producer(secured.bootstrap, security=reader, **QUICK)
    try:
        # Refused at InitProducerId (no WRITE anywhere) or at the write itself.
        with pytest.raises(KafkaError, match="AuthorizationFailed"):
            producer.send(BTC, b"{}").get(30)
    finally:
        producer.close(timeout=5)
    assert end_offsets(secured, BTC) == before


def refused(cluster: LocalKafkaCluster, security: KafkaSecurity) -> str:
    """The error message of a producer that cannot connect, after checking nothing was written."""
    before = end_offsets(cluster, BTC)
    with pytest.raises(KafkaTimeoutError) as err:
        producer = make_producer(cluster.bootstrap, security=security, **QUICK)
        producer.send(BTC, b"{}").get(10)  # not reached: the constructor refuses
    assert end_offsets(cluster, BTC) == before
    return str(err.value)


def test_wrong_password_is_refused_and_named(
    secured: LocalKafkaCluster, btc_producer: KafkaSecurity, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = "not-the-password-" + os.urandom(4).hex()
    message = refused(secured, dataclasses.replace(btc_producer, password=wrong))
    assert "wrong user name or password for user 'producer-btc'" in message
    assert wrong not in message
    assert wrong not in caplog.text
    assert btc_producer.password is not None and btc_producer.password not in caplog.text


def test_unknown_user_is_refused_and_named(
    secured: LocalKafkaCluster, btc_producer: KafkaSecurity
) -> None:
    message = refused(secured, dataclasses.replace(btc_producer, username="nobody"))
    assert "wrong user name or password for user 'nobody'" in message


def test_wrong_ca_is_refused_and_named(
    secured: LocalKafkaCluster, btc_producer: KafkaSecurity, tmp_path: Path
) -> None:
    other_ca = tmp_path / "other-ca.pem"
    other_ca.write_bytes(new_ca()[0])
    message = refused(secured, dataclasses.replace(btc_producer, cafile=str(other_ca)))
    assert "not signed by a trusted CA" in message, message


def test_plaintext_against_tls_port_is_refused_and_named(secured: LocalKafkaCluster) -> None:
    message = refused(secured, KafkaSecurity())
    assert "the broker port expects TLS" in message, message


def test_expired_broker_certificate_is_refused_and_named(secured: LocalKafkaCluster) -> None:
    """Broker 3 restarted with an expired certificate (same CA): Kafka checks its own keystore
    against the truststore at start and refuses, naming the expiry; with the valid one back,
    the broker rejoins."""
    spec = secured.spec
    now = dt.datetime.now(dt.UTC)
    expired = broker_keystore(
        spec.host,
        spec.ca_path().read_bytes(),
        spec.ca_key_path().read_bytes(),
        valid=(now - dt.timedelta(days=10), now - dt.timedelta(days=1)),
    )
    good = spec.broker_keystore_path().read_bytes()
    secured.stop_broker(3)
    # The brokers share one keystore file; only broker 3 is (re)started while it is expired.
    write_private(spec.broker_keystore_path(), expired)
    try:
        with pytest.raises(NodeFailedError) as err:
            secured.start_broker(3, timeout=120)
        assert "broker.pem: certificate CN=coinfeed-kafka-broker expired on" in str(err.value), str(
            err.value
        )
    finally:
        write_private(spec.broker_keystore_path(), good)
    secured.start_broker(3, timeout=180)
