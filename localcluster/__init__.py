"""A real Kubernetes control plane (and, in `localcluster.node`, a real node) for tests, benchmarks
and people, started from binaries built out of Go modules by `make tools`. Test tooling: never part
of the platform image."""

from localcluster.binaries import BinariesMissing, ClusterBinaries
from localcluster.cluster import FakeNode, LocalCluster, temporary_cluster
from localcluster.processes import ComponentFailed

__all__ = [
    "BinariesMissing",
    "ClusterBinaries",
    "ComponentFailed",
    "FakeNode",
    "LocalCluster",
    "temporary_cluster",
]
