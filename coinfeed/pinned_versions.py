"""GENERATED from versions.env by `python -m coinfeed.versions`. Do not edit: change
versions.env and regenerate (a unit test fails while the two differ).
"""

from __future__ import annotations

from typing import Final

PINS: Final[dict[str, str]] = {
    "KAFKA_VERSION": "3.9.1",
    "SCALA_BINARY_VERSION": "2.13",
    "ZOOKEEPER_IMAGE_VERSION": "3.8.4",
    "SPARK_VERSION": "4.2.0",
    "KUBERNETES_VERSION": "1.34.3",
    "ETCD_VERSION": "3.6.4",
    "HELM_VERSION": "3.19.0",
    "KUBE_LINTER_VERSION": "0.7.6",
    "CHECKOV_VERSION": "3.3.30",
    "KIND_VERSION": "0.30.0",
    "COREDNS_VERSION": "1.13.1",
}
