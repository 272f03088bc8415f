"""`python -m localnode up|down|status|load IMAGE...` (the Makefile's cluster-* targets)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from localnode import node
from localnode.config import Layout


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m localnode",
        description="A single-node Kubernetes cluster on this machine (containerd, kubelet, "
        "kube-proxy, CoreDNS, a hostPath provisioner), for machines without kind.",
    )
    parser.add_argument(
        "--run-dir",
        type=Path,
        default=node.ROOT / "run" / "cluster",
        help="logs, pid files, PKI and the admin kubeconfig (default: run/cluster)",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start the node; returns once it is Ready and DNS answers")
    up.add_argument("--timeout", type=float, default=node.READY_TIMEOUT_S)
    sub.add_parser("down", help="stop everything and restore the host (safe to run twice)")
    sub.add_parser("status", help="processes, node readiness, kubeconfig")
    sub.add_parser("leftovers", help="list anything of ours still on the machine (exit 1 if any)")
    load = sub.add_parser(
        "load",
        help="copy images from docker into the node's containerd (those it lacks or that changed)",
    )
    load.add_argument("images", nargs="+")
    args = parser.parse_args(argv)
    layout = Layout(args.run_dir.resolve())
    try:
        if args.command == "up":
            node.up(layout, args.timeout)
            print(f"KUBECONFIG={layout.kubeconfig}")
        elif args.command == "down":
            node.down(layout)
            left = node.leftovers(layout)
            if left:
                print("cluster: left behind:\n  " + "\n  ".join(left), file=sys.stderr)
                return 1
            print("cluster: stopped; nothing of ours left on the machine")
        elif args.command == "status":
            st = node.status(layout)
            print(json.dumps(st, indent=2))
            print(f"KUBECONFIG={layout.kubeconfig}")
            return 0 if st["node_ready"] else 3
        elif args.command == "leftovers":
            left = node.leftovers(layout)
            print("\n".join(left) if left else "nothing left")
            return 1 if left else 0
        elif args.command == "load":
            stale = node.images_to_load(layout, args.images)
            for ref in args.images:
                print(f"cluster: {ref}: {'loading' if ref in stale else 'already in the node'}")
            node.load_images(layout, stale)
    except node.NodeError as exc:
        print(f"cluster: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
