"""Stand-ins for kube-controller-manager and the kubelet, driven by one background thread.

Reconciliation is level-triggered: every tick, each object a client has not
written for ``ready_delay`` seconds is brought to its desired state, and a
write happens only when the desired status differs from the stored one. The
statuses are shaped for helm 3's ready checker and helm 4's kstatus (see the
project's measured facts in the README).

A tick looks only at what may have changed (issue 18): the store's change
events feed a dirty set, keyed by kind, namespace and name, that also marks
whatever reads the changed object (a Pod's or ReplicaSet's owners, a
terminating Namespace, ...). An object stays in it while it waits on a timer
(``ready_delay`` after a client write, ``job_failure_delay``) or on a create
that failed. A handler with none of its inputs changed writes nothing, so a
tick that skips it behaves as one that ran it.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import threading
import time
from typing import Any

from kubeapi_double import errors
from kubeapi_double.resources import ResourceType, lookup
from kubeapi_double.selectors import Filter
from kubeapi_double.state import NAMESPACE, Store, WatchEvent, now_timestamp, random_suffix

NEVER_READY_ANNOTATION = "kubeapi-double.test/never-ready"
NEVER_READY_IMAGE_MARKER = "never-ready"

DEPLOYMENT = lookup("deployments")
REPLICASET = lookup("replicasets")
STATEFULSET = lookup("statefulsets")
JOB = lookup("jobs")
POD = lookup("pods")
PVC = lookup("persistentvolumeclaims")
EVENT = lookup("events")

# The kinds a controller acts on, in the order of a tick, and the kinds that can own them.
SWEEP_ORDER = (NAMESPACE, PVC, DEPLOYMENT, STATEFULSET, REPLICASET, JOB, POD)
OWNER_KINDS = {rt.kind: rt for rt in (DEPLOYMENT, REPLICASET, STATEFULSET, JOB)}
WORKLOADS = (DEPLOYMENT, STATEFULSET, REPLICASET, JOB, POD)

Key = tuple[str, str]

_HASH_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
logger = logging.getLogger(__name__)


def template_hash(template: dict[str, Any]) -> str:
    """A stable pod-template-hash: the same template always maps to the same ReplicaSet."""
    number = int(hashlib.sha256(json.dumps(template, sort_keys=True).encode()).hexdigest(), 16)
    chars = []
    for _ in range(10):
        number, index = divmod(number, len(_HASH_ALPHABET))
        chars.append(_HASH_ALPHABET[index])
    return "".join(chars)


def _condition(kind: str, status: bool, reason: str = "", message: str = "", at: str = "") -> dict[str, Any]:
    condition: dict[str, Any] = {"type": kind, "status": "True" if status else "False"}
    if reason:
        condition["reason"] = reason
    if message:
        condition["message"] = message
    if at:
        condition["lastTransitionTime"] = at
    return condition


def _owner_reference(owner: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": owner["metadata"]["name"],
        "uid": owner["metadata"]["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def _controlled_by(obj: dict[str, Any], owner: dict[str, Any]) -> bool:
    return any(
        ref.get("controller") and ref.get("uid") == owner["metadata"]["uid"]
        for ref in obj["metadata"].get("ownerReferences") or []
    )


def _images(pod_spec: dict[str, Any]) -> list[tuple[str, str]]:
    containers = (pod_spec.get("initContainers") or []) + (pod_spec.get("containers") or [])
    return [(c.get("name", ""), c.get("image", "")) for c in containers]


def _drop_zero(status: dict[str, Any]) -> dict[str, Any]:
    # The API omits zero-valued counters (omitempty); clients treat absent as 0.
    return {key: value for key, value in status.items() if value != 0 or key == "observedGeneration"}


class Controllers:
    """Deployment, ReplicaSet, StatefulSet, Job, Pod, PVC and Namespace controllers.

    ``enabled`` switches all of them off so a test can set status by hand;
    ``never_ready`` holds (namespace, workload name or None) pairs whose pods
    never become ready, in addition to the image and annotation switches.
    """

    def __init__(self, store: Store, *, ready_delay: float = 0.3, job_failure_delay: float = 2.0) -> None:
        self.store = store
        self.ready_delay = ready_delay
        self.job_failure_delay = job_failure_delay
        self._enabled = True
        self.never_ready: set[tuple[str, str | None]] = set()
        self._first_seen: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        # (namespace or "", name) per kind: what the next tick handles.
        self._dirty: dict[ResourceType, set[Key]] = {rt: set() for rt in SWEEP_ORDER}
        self._current: tuple[ResourceType, Key] | None = None
        with store.lock:
            store.listeners.append(self._changed)
            self.mark_all()

    @property
    def enabled(self) -> bool:
        """Whether the controllers act; turning them back on reconsiders every object."""
        return self._enabled

    @enabled.setter
    def enabled(self, value: bool) -> None:
        with self.store.lock:
            if value and not self._enabled:
                self.mark_all()
            self._enabled = value

    # --- lifecycle -----------------------------------------------------------------

    def start(self) -> None:
        """Start the reconcile thread."""
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="kubeapi-double-controllers", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the reconcile thread and wait for it."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def _run(self) -> None:
        tick = max(0.02, min(0.1, self.ready_delay / 4))
        while not self._stop.wait(tick):
            try:
                self.reconcile_all()
            except Exception:
                # A bug in one sweep must not kill the thread (and with it every later test step).
                logger.exception("kubeapi double controller sweep failed")

    def reset(self) -> None:
        """Forget never-ready switches and job timers (used with a store reset)."""
        with self.store.lock:
            self.never_ready.clear()
            self._first_seen.clear()
            self.enabled = True
            self.mark_all()

    def set_never_ready(self, namespace: str, name: str | None, enabled: bool) -> None:
        """Switch never-ready on or off for a workload (or a whole namespace)."""
        with self.store.lock:
            if enabled:
                self.never_ready.add((namespace, name))
            else:
                self.never_ready.discard((namespace, name))
            for rt in WORKLOADS:
                self._dirty[rt].update(
                    (namespace, obj_name) for obj_name in self.store.in_namespace(rt, namespace)
                )

    # --- what changed --------------------------------------------------------------

    def mark_all(self) -> None:
        """Put every object of the kinds the controllers act on into the next tick."""
        with self.store.lock:
            for rt in SWEEP_ORDER:
                self._dirty[rt].update(self.store.keys(rt))

    def _mark(
        self, rt: ResourceType, namespace: str, name: str, obj: dict[str, Any] | None, seen: set
    ) -> None:
        """Mark an object, and (through ownerReferences) the workloads that read it."""
        key = (rt, namespace, name)
        if key in seen:
            return
        seen.add(key)
        if rt in self._dirty:
            self._dirty[rt].add((namespace, name))
        for ref in (obj or {}).get("metadata", {}).get("ownerReferences") or []:
            owner_rt = OWNER_KINDS.get(ref.get("kind", ""))
            if owner_rt is not None and ref.get("name"):
                owner = self.store.peek(owner_rt, namespace, ref["name"])
                self._mark(owner_rt, namespace, ref["name"], owner, seen)

    def _changed(self, event: WatchEvent) -> None:
        """The store's change hook (called under the lock): mark what this change can affect."""
        rt, seen = event.rt, set()
        meta = event.obj["metadata"]
        namespace = (meta.get("namespace") or "") if rt.namespaced else ""
        for obj in (event.obj, event.old):
            if obj is not None:
                self._mark(rt, namespace, meta["name"], obj, seen)
        if not rt.namespaced:
            return
        # A terminating namespace's status counts what is left in it.
        ns = self.store.peek(NAMESPACE, None, namespace)
        if ns is not None and ns["metadata"].get("deletionTimestamp"):
            self._dirty[NAMESPACE].add(("", namespace))
        if rt is POD:
            # A StatefulSet finds its pods by name (NAME-i) as well as by owner.
            sts_name = meta["name"].rsplit("-", 1)[0]
            if self.store.peek(STATEFULSET, namespace, sts_name) is not None:
                self._dirty[STATEFULSET].add((namespace, sts_name))
        elif rt is PVC:
            # ... and its claims by name (CLAIM-NAME-i).
            self._dirty[STATEFULSET].update(
                (namespace, n) for n in self.store.in_namespace(STATEFULSET, namespace)
            )
        elif rt is EVENT:
            # The pull-failure Event is recorded once per pod: its deletion is the pod's business.
            involved = event.obj.get("involvedObject") or {}
            if involved.get("kind") == "Pod" and involved.get("name"):
                pod_ns = involved.get("namespace") or namespace
                self._mark(
                    POD, pod_ns, involved["name"], self.store.peek(POD, pod_ns, involved["name"]), seen
                )

    def _again(self) -> None:
        """Keep the object being handled in the next tick (a timer or a failed create)."""
        if self._current is not None:
            rt, key = self._current
            self._dirty[rt].add(key)

    # --- sweep ---------------------------------------------------------------------

    def _settled(self, obj: dict[str, Any]) -> bool:
        return self.store.settled_for(obj) >= self.ready_delay

    def reconcile_all(self) -> None:
        """One level-triggered pass over every object that may have changed since the last one."""
        handlers = {
            NAMESPACE: self._namespace,
            PVC: self._pvc,
            DEPLOYMENT: self._deployment,
            STATEFULSET: self._statefulset,
            REPLICASET: self._replicaset,
            JOB: self._job,
            POD: self._standalone_pod,
        }
        with self.store.lock:
            if not self.enabled:
                return
            for rt in SWEEP_ORDER:
                dirty, self._dirty[rt] = self._dirty[rt], set()
                # Copied at the start of the kind's turn, in (namespace, name) order, as a full
                # sweep over `list()` did: handlers see what earlier kinds wrote this tick.
                snapshot = []
                for key in sorted(dirty):
                    current = self.store.peek(rt, *key)
                    if current is not None:
                        snapshot.append((key, copy.deepcopy(current)))
                try:
                    for key, obj in snapshot:
                        if not self._settled(obj):
                            self._dirty[rt].add(key)  # a client wrote it less than ready_delay ago
                        elif self.store.peek(rt, *key) is not None:
                            self._current = (rt, key)
                            handlers[rt](obj)
                except BaseException:
                    # A failed tick was retried whole by the next one: so is this kind's share.
                    self._dirty[rt].update(dirty)
                    raise
                finally:
                    self._current = None

    def _write_status(self, rt: ResourceType, obj: dict[str, Any], status: dict[str, Any]) -> dict[str, Any]:
        if obj.get("status") == status:
            return obj
        return self.store.set_status(rt, obj["metadata"].get("namespace"), obj["metadata"]["name"], status)

    def _create(self, rt: ResourceType, namespace: str, body: dict[str, Any]) -> dict[str, Any] | None:
        try:
            return self.store.create(rt, namespace, body, by_controller=True)
        except errors.ApiError:
            # The namespace is going away (403) or the name was just taken: try next sweep.
            self._again()
            return None

    # --- never ready ---------------------------------------------------------------

    def is_never_ready(self, namespace: str, names: list[str], template: dict[str, Any]) -> str | None:
        """The image a workload cannot pull, or None if its pods may become ready."""
        images = _images(template.get("spec") or {})
        first_image = images[0][1] if images else ""
        for _, image in images:
            if NEVER_READY_IMAGE_MARKER in image:
                return image
        annotations = (template.get("metadata") or {}).get("annotations") or {}
        if str(annotations.get(NEVER_READY_ANNOTATION, "")).lower() == "true":
            return first_image
        if (namespace, None) in self.never_ready or any(
            (namespace, name) in self.never_ready for name in names
        ):
            return first_image
        return None

    def _record_pull_failure(self, pod: dict[str, Any], image: str) -> None:
        meta = pod["metadata"]
        name = f"{meta['name']}.{hashlib.sha256(meta['uid'].encode()).hexdigest()[:16]}"
        if self.store.find(EVENT, meta["namespace"], name) is not None:
            return
        container = next((c for c, i in _images(pod.get("spec") or {}) if i == image), "")
        stamp = now_timestamp()
        self._create(
            EVENT,
            meta["namespace"],
            {
                "metadata": {"name": name, "namespace": meta["namespace"]},
                "involvedObject": {
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "name": meta["name"],
                    "namespace": meta["namespace"],
                    "uid": meta["uid"],
                    "fieldPath": f"spec.containers{{{container}}}",
                },
                "reason": "Failed",
                "message": f'Failed to pull image "{image}": rpc error: code = NotFound desc = '
                f'failed to pull and unpack image "{image}": not found',
                "type": "Warning",
                "source": {"component": "kubelet", "host": "kubeapi-double-node"},
                "reportingComponent": "kubelet",
                "reportingInstance": "kubeapi-double-node",
                "firstTimestamp": stamp,
                "lastTimestamp": stamp,
                "count": 1,
            },
        )

    # --- pods ----------------------------------------------------------------------

    def _pod_status(
        self, pod: dict[str, Any], failing_image: str | None, *, succeeded: bool
    ) -> dict[str, Any]:
        """Desired pod status; timestamps come from the pod so repeated sweeps are no-ops."""
        at = pod["metadata"]["creationTimestamp"]
        containers = _images(pod.get("spec") or {})
        base = {"hostIP": "10.0.0.10", "qosClass": "BestEffort", "startTime": at}
        if failing_image is not None:
            statuses = [
                {
                    "name": name,
                    "image": image,
                    "imageID": "",
                    "ready": False,
                    "restartCount": 0,
                    "started": False,
                    "state": {
                        "waiting": {
                            "reason": "ImagePullBackOff",
                            "message": f'Back-off pulling image "{image}"',
                        }
                    },
                }
                for name, image in containers
            ]
            unready = ", ".join(name for name, _ in containers)
            return {
                **base,
                "phase": "Pending",
                "conditions": [
                    _condition("PodScheduled", True, at=at),
                    _condition("Initialized", True, at=at),
                    _condition(
                        "ContainersReady",
                        False,
                        "ContainersNotReady",
                        f"containers with unready status: [{unready}]",
                        at,
                    ),
                    _condition(
                        "Ready",
                        False,
                        "ContainersNotReady",
                        f"containers with unready status: [{unready}]",
                        at,
                    ),
                ],
                "containerStatuses": statuses,
            }
        pod_ip = "10.244.0." + str(
            int(hashlib.sha256(pod["metadata"]["uid"].encode()).hexdigest(), 16) % 250 + 2
        )
        if succeeded:
            state = {"terminated": {"exitCode": 0, "reason": "Completed", "startedAt": at, "finishedAt": at}}
            return {
                **base,
                "phase": "Succeeded",
                "podIP": pod_ip,
                "conditions": [
                    _condition("PodScheduled", True, at=at),
                    _condition("Initialized", True, "PodCompleted", at=at),
                    _condition("ContainersReady", False, "PodCompleted", at=at),
                    _condition("Ready", False, "PodCompleted", at=at),
                ],
                "containerStatuses": [
                    {
                        "name": n,
                        "image": i,
                        "imageID": i,
                        "ready": False,
                        "restartCount": 0,
                        "started": False,
                        "state": state,
                    }
                    for n, i in containers
                ],
            }
        return {
            **base,
            "phase": "Running",
            "podIP": pod_ip,
            "podIPs": [{"ip": pod_ip}],
            "conditions": [
                _condition("PodScheduled", True, at=at),
                _condition("Initialized", True, at=at),
                _condition("ContainersReady", True, at=at),
                _condition("Ready", True, at=at),
            ],
            "containerStatuses": [
                {
                    "name": n,
                    "image": i,
                    "imageID": i,
                    "ready": True,
                    "restartCount": 0,
                    "started": True,
                    "state": {"running": {"startedAt": at}},
                }
                for n, i in containers
            ],
        }

    def _settle_pod(self, pod: dict[str, Any], failing_image: str | None, *, succeeded: bool = False) -> bool:
        """Bring a pod's status in line; returns whether it is ready."""
        if pod["metadata"].get("deletionTimestamp"):
            return False
        self._write_status(POD, pod, self._pod_status(pod, failing_image, succeeded=succeeded))
        if failing_image is not None:
            self._record_pull_failure(pod, failing_image)
        return failing_image is None and not succeeded

    def _new_pod(
        self, owner: dict[str, Any], name: str, template: dict[str, Any], extra_labels: dict[str, str]
    ) -> dict:
        template_meta = template.get("metadata") or {}
        return {
            "metadata": {
                "name": name,
                "namespace": owner["metadata"]["namespace"],
                "labels": {**(template_meta.get("labels") or {}), **extra_labels},
                "annotations": copy.deepcopy(template_meta.get("annotations") or {}),
                "ownerReferences": [_owner_reference(owner)],
            },
            "spec": {**copy.deepcopy(template.get("spec") or {}), "nodeName": "kubeapi-double-node"},
        }

    def _owned_pods(self, owner: dict[str, Any]) -> list[dict[str, Any]]:
        # Only the owner's namespace is listed (and copied): copying every pod in the cluster for
        # every workload on every sweep made the double quadratic in the number of stores.
        in_namespace, _ = self.store.list(POD, Filter(owner["metadata"]["namespace"]))
        pods = [pod for pod in in_namespace if _controlled_by(pod, owner)]
        return [pod for pod in pods if not pod["metadata"].get("deletionTimestamp")]

    def _delete(self, rt: ResourceType, obj: dict[str, Any]) -> None:
        try:
            self.store.delete(
                rt, obj["metadata"].get("namespace"), obj["metadata"]["name"], by_controller=True
            )
        except errors.ApiError:
            return

    def _standalone_pod(self, pod: dict[str, Any]) -> None:
        if any(ref.get("controller") for ref in pod["metadata"].get("ownerReferences") or []):
            return
        failing = self.is_never_ready(pod["metadata"]["namespace"], [pod["metadata"]["name"]], pod)
        self._settle_pod(pod, failing)

    # --- workloads -----------------------------------------------------------------

    def _replicaset(self, rs: dict[str, Any], owner_names: list[str] | None = None) -> dict[str, Any]:
        if rs["metadata"].get("deletionTimestamp"):
            return rs
        namespace, name = rs["metadata"]["namespace"], rs["metadata"]["name"]
        owner_names = owner_names or [
            ref["name"] for ref in rs["metadata"].get("ownerReferences") or [] if ref.get("controller")
        ]
        template = rs["spec"].get("template") or {}
        failing = self.is_never_ready(namespace, [name, *owner_names], template)
        desired = int(rs["spec"].get("replicas", 1))
        pods = self._owned_pods(rs)
        for extra in pods[desired:]:
            self._delete(POD, extra)
        pods = pods[:desired]
        while len(pods) < desired:
            created = self._create(
                POD, namespace, self._new_pod(rs, f"{name}-{random_suffix()}", template, {})
            )
            if created is None:
                break
            pods.append(created)
        ready = sum(
            self._settle_pod(self.store.get(POD, namespace, p["metadata"]["name"]), failing) for p in pods
        )
        status = _drop_zero(
            {
                "replicas": len(pods),
                "fullyLabeledReplicas": len(pods),
                "readyReplicas": ready,
                "availableReplicas": ready,
                "observedGeneration": rs["metadata"].get("generation", 1),
            }
        )
        return self._write_status(REPLICASET, rs, status)

    def _deployment(self, dep: dict[str, Any]) -> None:
        if dep["metadata"].get("deletionTimestamp"):
            return
        namespace, name = dep["metadata"]["namespace"], dep["metadata"]["name"]
        spec = dep["spec"]
        template = spec.get("template") or {}
        replicas = int(spec.get("replicas", 1))
        pod_hash = template_hash(template)
        rs_name = f"{name}-{pod_hash}"
        in_namespace, _ = self.store.list(REPLICASET, Filter(namespace))
        owned = [rs for rs in in_namespace if _controlled_by(rs, dep)]
        for old in owned:
            if old["metadata"]["name"] != rs_name and old["spec"].get("replicas") != 0:
                old["spec"]["replicas"] = 0
                self._replicaset(self.store.controller_update(REPLICASET, old), [name])
        new_rs = next((rs for rs in owned if rs["metadata"]["name"] == rs_name), None)
        if new_rs is None:
            labels = {**((template.get("metadata") or {}).get("labels") or {}), "pod-template-hash": pod_hash}
            selector = copy.deepcopy(spec.get("selector") or {})
            selector.setdefault("matchLabels", {})["pod-template-hash"] = pod_hash
            rs_template = copy.deepcopy(template)
            rs_template.setdefault("metadata", {})["labels"] = labels
            new_rs = self._create(
                REPLICASET,
                namespace,
                {
                    "metadata": {
                        "name": rs_name,
                        "namespace": namespace,
                        "labels": labels,
                        "annotations": {"deployment.kubernetes.io/revision": str(len(owned) + 1)},
                        "ownerReferences": [_owner_reference(dep)],
                    },
                    "spec": {"replicas": replicas, "selector": selector, "template": rs_template},
                },
            )
            if new_rs is None:
                return
        elif new_rs["spec"].get("replicas") != replicas:
            new_rs["spec"]["replicas"] = replicas
            new_rs = self.store.controller_update(REPLICASET, new_rs)
        new_rs = self._replicaset(new_rs, [name])
        rs_status = new_rs.get("status") or {}
        ready = int(rs_status.get("readyReplicas", 0))
        total = sum(
            int((rs.get("status") or {}).get("replicas", 0))
            for rs in owned
            if rs["metadata"]["name"] != rs_name
        )
        at = dep["metadata"]["creationTimestamp"]
        if ready >= replicas:
            conditions = [
                _condition(
                    "Available", True, "MinimumReplicasAvailable", "Deployment has minimum availability.", at
                ),
                _condition(
                    "Progressing",
                    True,
                    "NewReplicaSetAvailable",
                    f'ReplicaSet "{rs_name}" has successfully progressed.',
                    at,
                ),
            ]
        else:
            conditions = [
                _condition(
                    "Available",
                    False,
                    "MinimumReplicasUnavailable",
                    "Deployment does not have minimum availability.",
                    at,
                ),
                _condition(
                    "Progressing", True, "ReplicaSetUpdated", f'ReplicaSet "{rs_name}" is progressing.', at
                ),
            ]
        status = _drop_zero(
            {
                "observedGeneration": dep["metadata"].get("generation", 1),
                "replicas": total + int(rs_status.get("replicas", 0)),
                "updatedReplicas": int(rs_status.get("replicas", 0)),
                "readyReplicas": ready,
                "availableReplicas": ready,
                "unavailableReplicas": max(replicas - ready, 0),
            }
        )
        status["conditions"] = conditions
        self._write_status(DEPLOYMENT, dep, status)

    def _statefulset(self, sts: dict[str, Any]) -> None:
        if sts["metadata"].get("deletionTimestamp"):
            return
        namespace, name = sts["metadata"]["namespace"], sts["metadata"]["name"]
        template = sts["spec"].get("template") or {}
        revision = f"{name}-{template_hash(template)}"
        replicas = int(sts["spec"].get("replicas", 1))
        failing = self.is_never_ready(namespace, [name], template)
        pods = {pod["metadata"]["name"]: pod for pod in self._owned_pods(sts)}
        for pod_name, pod in pods.items():
            index = pod_name.rsplit("-", 1)[-1]
            stale = pod["metadata"].get("labels", {}).get("controller-revision-hash") != revision
            if stale or not index.isdigit() or int(index) >= replicas:
                # Rolling update reduced to: replace pods of an old revision at once.
                self._delete(POD, pod)
        ready = 0
        for index in range(replicas):
            pod_name = f"{name}-{index}"
            for claim in sts["spec"].get("volumeClaimTemplates") or []:
                claim_name = f"{claim['metadata']['name']}-{pod_name}"
                if self.store.find(PVC, namespace, claim_name) is None:
                    body = copy.deepcopy(claim)
                    body["metadata"] = {
                        "name": claim_name,
                        "namespace": namespace,
                        "labels": (template.get("metadata") or {}).get("labels") or {},
                    }
                    self._create(PVC, namespace, body)
            pod = self.store.find(POD, namespace, pod_name)
            if pod is None:
                labels = {
                    "controller-revision-hash": revision,
                    "statefulset.kubernetes.io/pod-name": pod_name,
                    "apps.kubernetes.io/pod-index": str(index),
                }
                pod = self._create(POD, namespace, self._new_pod(sts, pod_name, template, labels))
            if pod is not None and not pod["metadata"].get("deletionTimestamp"):
                ready += self._settle_pod(pod, failing)
        status = _drop_zero(
            {
                "observedGeneration": sts["metadata"].get("generation", 1),
                "replicas": replicas,
                "readyReplicas": ready,
                "currentReplicas": replicas,
                "updatedReplicas": replicas,
                "availableReplicas": ready,
                "collisionCount": 0,
            }
        )
        status.update(currentRevision=revision, updateRevision=revision)
        self._write_status(STATEFULSET, sts, status)

    def _job(self, job: dict[str, Any]) -> None:
        meta = job["metadata"]
        status = copy.deepcopy(job.get("status") or {})
        finished = any(
            c.get("type") in ("Complete", "Failed") and c.get("status") == "True"
            for c in status.get("conditions") or []
        )
        if finished or meta.get("deletionTimestamp") or job["spec"].get("suspend"):
            return
        namespace, name = meta["namespace"], meta["name"]
        template = job["spec"].get("template") or {}
        first_seen = self._first_seen.setdefault(meta["uid"], time.monotonic())
        failing = self.is_never_ready(namespace, [name], template)
        labels = {
            "job-name": name,
            "batch.kubernetes.io/job-name": name,
            "controller-uid": meta["uid"],
            "batch.kubernetes.io/controller-uid": meta["uid"],
        }
        pods = self._owned_pods(job)
        if not pods:
            created = self._create(
                POD, namespace, self._new_pod(job, f"{name}-{random_suffix()}", template, labels)
            )
            if created is None:
                return
            pods = [created]
        at = meta["creationTimestamp"]
        for pod in pods:
            self._settle_pod(pod, failing, succeeded=failing is None)
        status.setdefault("startTime", at)
        status["uncountedTerminatedPods"] = {}
        if failing is None:
            done = now_timestamp()
            status.update(succeeded=1, completionTime=done, ready=0)
            status.pop("active", None)
            status["conditions"] = [
                _condition(
                    "SuccessCriteriaMet",
                    True,
                    "CompletionsReached",
                    "Reached expected number of succeeded pods",
                    done,
                ),
                _condition(
                    "Complete", True, "CompletionsReached", "Reached expected number of succeeded pods", done
                ),
            ]
        elif time.monotonic() - first_seen >= self.job_failure_delay:
            done = now_timestamp()
            status.update(failed=1, ready=0)
            status.pop("active", None)
            status["conditions"] = [
                _condition(
                    "FailureTarget",
                    True,
                    "BackoffLimitExceeded",
                    "Job has reached the specified backoff limit",
                    done,
                ),
                _condition(
                    "Failed",
                    True,
                    "BackoffLimitExceeded",
                    "Job has reached the specified backoff limit",
                    done,
                ),
            ]
        else:
            status.update(active=len(pods), ready=0)
            self._again()  # until job_failure_delay has passed
        self._write_status(JOB, job, status)

    def _pvc(self, pvc: dict[str, Any]) -> None:
        if pvc["metadata"].get("deletionTimestamp"):
            return
        spec = pvc.get("spec") or {}
        status = {"phase": "Bound", "accessModes": spec.get("accessModes") or ["ReadWriteOnce"]}
        storage = ((spec.get("resources") or {}).get("requests") or {}).get("storage")
        if storage:
            status["capacity"] = {"storage": storage}
        self._write_status(PVC, pvc, status)

    # --- namespaces ----------------------------------------------------------------

    def _namespace(self, ns: dict[str, Any]) -> None:
        meta = ns["metadata"]
        if not meta.get("deletionTimestamp"):
            return
        name = meta["name"]
        for rt, obj in list(self.store.namespaced_contents(name)):
            if not obj["metadata"].get("deletionTimestamp"):
                self._delete(rt, obj)
        remaining = self.store.namespaced_contents(name)
        counts: dict[str, int] = {}
        for _, obj in remaining:
            for finalizer in obj["metadata"].get("finalizers") or []:
                counts[finalizer] = counts.get(finalizer, 0) + 1
        messages = [
            f"Some content in the namespace has finalizers remaining: {f} in {n} resource instances"
            for f, n in sorted(counts.items())
        ]
        own = meta.get("finalizers") or []
        if own:
            messages.append(f"Namespace has finalizers remaining in metadata.finalizers: {', '.join(own)}")
        at = meta["deletionTimestamp"]
        content_remaining = [
            f"{rt.qualified}: {len([1 for r, _ in remaining if r == rt])}"
            for rt in sorted({rt for rt, _ in remaining}, key=lambda r: r.qualified)
        ]
        conditions = [
            _condition(
                "NamespaceContentRemaining",
                bool(remaining),
                "SomeResourcesRemain" if remaining else "ContentDeleted",
                f"Some resources are remaining: {', '.join(content_remaining)}"
                if remaining
                else "All content successfully removed",
                at,
            ),
            _condition(
                "NamespaceFinalizersRemaining",
                bool(messages),
                "SomeFinalizersRemain" if messages else "ContentHasNoFinalizers",
                "; ".join(messages) if messages else "All content-preserving finalizers finished",
                at,
            ),
        ]
        status = {"phase": "Terminating", "conditions": conditions}
        if remaining or own:
            self._write_status(NAMESPACE, ns, status)
            return
        self.store.remove_now(NAMESPACE, ns)
