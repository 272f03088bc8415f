"""The dev cluster names an expired or not-yet-valid certificate itself (the JVM may not)."""

from __future__ import annotations

import datetime as dt

import pytest

from coinfeed.devcluster.kafka import broker_keystore, certificate_problem, new_ca

pytestmark = pytest.mark.unit

NOW = dt.datetime(2026, 11, 29, 12, 0, tzinfo=dt.UTC)


def _keystore(start: dt.datetime, end: dt.datetime) -> bytes:
    ca_pem, ca_key = new_ca()
    return broker_keystore("127.0.0.1", ca_pem, ca_key, valid=(start, end))


def test_expired_keystore_is_named_with_its_date() -> None:
    pem = _keystore(NOW - dt.timedelta(days=10), NOW - dt.timedelta(days=1))
    assert certificate_problem(pem, "broker.pem", NOW) == (
        "broker.pem: certificate CN=coinfeed-kafka-broker expired on 2026-11-28 12:00 UTC"
    )


def test_not_yet_valid_keystore_is_named() -> None:
    pem = _keystore(NOW + dt.timedelta(days=1), NOW + dt.timedelta(days=10))
    problem = certificate_problem(pem, "broker.pem", NOW)
    assert problem == (
        "broker.pem: certificate CN=coinfeed-kafka-broker is not valid before 2026-11-30 12:00 UTC"
    )


def test_valid_keystore_has_no_problem() -> None:
    pem = _keystore(NOW - dt.timedelta(days=1), NOW + dt.timedelta(days=1))
    assert certificate_problem(pem, "broker.pem", NOW) is None


def test_unreadable_file_is_named() -> None:
    assert certificate_problem(b"not a certificate", "ca.pem", NOW) == (
        "ca.pem: no readable PEM certificate"
    )
