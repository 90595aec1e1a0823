"""A Kubernetes API test double: an in-memory kube-apiserver for helm, kubectl and the Python client.

See README.md in this directory for what it implements and what it cannot prove.
"""

from provisioning.testing.kubeapi.controllers import NEVER_READY_ANNOTATION, NEVER_READY_IMAGE_MARKER
from provisioning.testing.kubeapi.server import CONTEXT_NAME, KubeApiDouble, RequestRecord

__all__ = [
    "CONTEXT_NAME",
    "NEVER_READY_ANNOTATION",
    "NEVER_READY_IMAGE_MARKER",
    "KubeApiDouble",
    "RequestRecord",
]
