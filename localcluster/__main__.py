"""`python -m localcluster` (`make cluster`): start a real control plane in the foreground.

Prints the kubeconfig path and how to point kubectl and the platform at it; Ctrl-C stops it. With
`--real-node` (`make cluster NODE=real`, as root) a real node runs the containers too (containerd,
CoreDNS, Traefik on the node's port 80, every image of the platform and store charts imported), with
kwok nodes beside it tainted so that pods land on the real one.
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
    parser.add_argument(
        "--real-node", action="store_true", help="run containers on a real node (root; make images first)"
    )
    args = parser.parse_args(argv)
    if args.real_node:
        return _real_node(args.dir)

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


def _real_node(work_dir: Path) -> int:
    from localcluster.ingress import TRAEFIK_IMAGE
    from localcluster.node import missing_requirements, real_node_cluster
    from localcluster.platform_install import chart_images

    images = tuple(
        dict.fromkeys(
            image for chart in ("platform", "medusa", "woocommerce") for image in chart_images(chart)
        )
    )
    problems = missing_requirements((*images, TRAEFIK_IMAGE))
    if problems:
        print("make cluster NODE=real: " + "; ".join(problems), file=sys.stderr)
        return 2
    stop = {"requested": False}

    def request_stop(*_: object) -> None:
        stop["requested"] = True

    signal.signal(signal.SIGINT, request_stop)
    try:
        # real_node_cluster turns SIGTERM into KeyboardInterrupt so that the node is always torn down.
        with real_node_cluster(work_dir, images=images, ingress=True) as (cluster, node):
            print(
                f"A real Kubernetes {cluster.binaries.kubernetes_version} control plane and a real node "
                f"({node.name}, containerd, CoreDNS, Traefik) are up.\n"
                f"  kubeconfig: {cluster.kubeconfig}\n"
                f"  kubectl:    .tools/bin/kubectl --kubeconfig {cluster.kubeconfig} get pods -A\n"
                f"  platform:   KUBECONFIG={cluster.kubeconfig} make run\n"
                f"  stores:     http_proxy=http://{node.network.node_address}:80 curl http://<store host>/ "
                "(Traefik routes by host name; there is no DNS for them here)\n"
                "Ctrl-C stops it and removes every container, mount and the network namespace.",
                flush=True,
            )
            while not stop["requested"]:
                time.sleep(1)
    except KeyboardInterrupt:
        pass
    except ComponentFailed as exc:
        print(f"make cluster NODE=real: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
