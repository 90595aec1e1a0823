"""`python -m localcluster` (`make cluster`): start a real control plane in the foreground.

Prints the kubeconfig path and how to point kubectl and the platform at it; Ctrl-C stops it.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from pathlib import Path

from localcluster import BinariesMissing, ComponentFailed, FakeNode, LocalCluster

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m localcluster", description=__doc__)
    parser.add_argument("--dir", type=Path, default=ROOT / "var" / "cluster", help="work directory (kept)")
    parser.add_argument("--nodes", type=int, default=2, help="number of kwok nodes")
    parser.add_argument("--node-cpu", default="4", help="allocatable CPU of each kwok node")
    parser.add_argument("--node-memory", default="16Gi", help="allocatable memory of each kwok node")
    args = parser.parse_args(argv)

    nodes = tuple(
        FakeNode(f"kwok-node-{index}", cpu=args.node_cpu, memory=args.node_memory)
        for index in range(1, args.nodes + 1)
    )
    try:
        cluster = LocalCluster(args.dir, nodes=nodes, name="make-cluster")
    except BinariesMissing as exc:
        print(f"make cluster: {exc}", file=sys.stderr)
        return 2
    stop = {"requested": False}

    def request_stop(*_: object) -> None:
        stop["requested"] = True

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    try:
        cluster.start()
    except ComponentFailed as exc:
        print(f"make cluster: {exc}", file=sys.stderr)
        return 1
    print(
        f"A real Kubernetes {cluster.binaries.kubernetes_version} control plane is up in "
        f"{cluster.started_seconds:.1f} s ({len(nodes)} kwok nodes; pods run no containers).\n"
        f"  kubeconfig: {cluster.kubeconfig}\n"
        f"  kubectl:    .tools/bin/kubectl --kubeconfig {cluster.kubeconfig} get nodes\n"
        f"  platform:   KUBECONFIG={cluster.kubeconfig} make run\n"
        f"  logs:       {cluster.logs}/\n"
        "Ctrl-C stops it.",
        flush=True,
    )
    try:
        while not stop["requested"]:
            for component in cluster.components.values():
                if not component.running:
                    print(f"make cluster: {component.name} exited:\n{component.log_tail()}", file=sys.stderr)
                    return 1
            time.sleep(1)
    finally:
        cluster.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
