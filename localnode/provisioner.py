"""The local node's volume provisioner: hostPath PersistentVolumes on demand, removed on release.

For every PersistentVolumeClaim of the ``coinfeed-local`` StorageClass (the default class), it
makes a directory under /var/lib/coinfeed-node/volumes and a PersistentVolume bound to that claim
(claimRef), pinned to the node. When such a volume is Released (its claim deleted; reclaim policy
Delete) it removes the directory and the volume. hostPath volumes ignore fsGroup, so directories
are world-writable (0777): pods of any non-root UID can write, as on a real provisioner.

Runs as a process of `make cluster-up` (pid file run/cluster/pids/provisioner.pid), polling once
a second through the admin kubeconfig.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import time
from pathlib import Path
from typing import Any

from localnode import config as cfg

log = logging.getLogger("localnode.provisioner")


def volume_dir(volumes: Path, claim: dict[str, Any]) -> Path:
    meta = claim["metadata"]
    return volumes / f"{meta['namespace']}-{meta['name']}-{meta['uid'][:8]}"


def wants_volume(claim: dict[str, Any]) -> bool:
    """A pending claim of our class with no volume yet (pure)."""
    spec = claim.get("spec", {})
    return (
        spec.get("storageClassName") == cfg.STORAGE_CLASS
        and not spec.get("volumeName")
        and claim.get("status", {}).get("phase") == "Pending"
        and claim["metadata"].get("deletionTimestamp") is None
    )


def volume_for(claim: dict[str, Any], path: Path) -> dict[str, Any]:
    """The PersistentVolume that satisfies ``claim`` at ``path`` (pure)."""
    meta, spec = claim["metadata"], claim["spec"]
    size = spec.get("resources", {}).get("requests", {}).get("storage", "1Gi")
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {
            "name": f"pvc-{meta['uid']}",
            "annotations": {"pv.kubernetes.io/provisioned-by": cfg.PROVISIONER},
        },
        "spec": {
            "capacity": {"storage": size},
            "accessModes": spec.get("accessModes", ["ReadWriteOnce"]),
            "persistentVolumeReclaimPolicy": "Delete",
            "storageClassName": cfg.STORAGE_CLASS,
            "volumeMode": spec.get("volumeMode", "Filesystem"),
            "claimRef": {
                "apiVersion": "v1",
                "kind": "PersistentVolumeClaim",
                "namespace": meta["namespace"],
                "name": meta["name"],
                "uid": meta["uid"],
            },
            "hostPath": {"path": str(path), "type": "Directory"},
            "nodeAffinity": {
                "required": {
                    "nodeSelectorTerms": [
                        {
                            "matchExpressions": [
                                {
                                    "key": "kubernetes.io/hostname",
                                    "operator": "In",
                                    "values": [cfg.NODE_NAME],
                                }
                            ]
                        }
                    ]
                }
            },
        },
    }


def released(volume: dict[str, Any]) -> bool:
    """One of ours whose claim is gone (pure)."""
    annotations = volume["metadata"].get("annotations") or {}
    return annotations.get("pv.kubernetes.io/provisioned-by") == cfg.PROVISIONER and volume.get(
        "status", {}
    ).get("phase") in ("Released", "Failed")


def reconcile(core: Any, volumes: Path) -> None:
    from kubernetes.client.rest import ApiException

    api = core.api_client
    claims = api.sanitize_for_serialization(core.list_persistent_volume_claim_for_all_namespaces())
    for claim in claims.get("items", []):
        if not wants_volume(claim):
            continue
        path = volume_dir(volumes, claim)
        path.mkdir(parents=True, exist_ok=True)
        path.chmod(0o777)
        try:
            core.create_persistent_volume(volume_for(claim, path))
            log.info(
                "provisioned %s for %s/%s",
                path,
                claim["metadata"]["namespace"],
                claim["metadata"]["name"],
            )
        except ApiException as exc:
            if exc.status != 409:
                raise
    pvs = api.sanitize_for_serialization(core.list_persistent_volume())
    for volume in pvs.get("items", []):
        if not released(volume):
            continue
        path = Path(volume["spec"]["hostPath"]["path"])
        if path.is_relative_to(volumes):
            shutil.rmtree(path, ignore_errors=True)
        try:
            core.delete_persistent_volume(volume["metadata"]["name"])
            log.info("deleted %s and %s", volume["metadata"]["name"], path)
        except ApiException as exc:
            if exc.status != 404:
                raise


def main(argv: list[str] | None = None) -> int:
    from kubernetes import client
    from kubernetes import config as kconfig

    from localnode.config import Layout

    parser = argparse.ArgumentParser(prog="python -m localnode.provisioner", description=__doc__)
    parser.add_argument("--run-dir", type=Path, required=True, help="the node's run/cluster folder")
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between passes")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    layout = Layout(args.run_dir)
    layout.volumes.mkdir(parents=True, exist_ok=True)
    kconfig.load_kube_config(str(layout.kubeconfig))
    core = client.CoreV1Api()
    while True:
        try:
            reconcile(core, layout.volumes)
        except Exception as exc:
            log.warning("pass failed: %s", exc)
        time.sleep(args.interval)


if __name__ == "__main__":
    raise SystemExit(main())
