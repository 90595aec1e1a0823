"""A Kubernetes API test double: an in-memory kube-apiserver for helm, kubectl and the Python client.

See README.md in this directory for what it implements and what it cannot prove.
"""

from kubeapi_double.controllers import NEVER_READY_ANNOTATION, NEVER_READY_IMAGE_MARKER
from kubeapi_double.server import CONTEXT_NAME, KubeApiDouble, RequestRecord

__all__ = [
    "CONTEXT_NAME",
    "NEVER_READY_ANNOTATION",
    "NEVER_READY_IMAGE_MARKER",
    "KubeApiDouble",
    "RequestRecord",
]
