"""The Kubernetes API double's own cost as the fleet grows (issue 18, item 6).

The double (in process) is filled with N store namespaces, each holding what the WooCommerce chart
creates (rendered once with `helm template`, plus the credentials Secret and a helm release Secret),
settled by its controllers. For each N it reports one steady-state controller sweep (wall and CPU
time; the sweep holds the store lock throughout), and one real `helm upgrade --install` of another
WooCommerce store with the N present: helm's wall time, and how long the controller thread held the
store lock while helm ran (every API request waits for that lock).

Needs no database: `python -m bench.double_scaling [--sizes 0,45,200,1000] [--helm helm4]`, or
`python -m bench --only double_scaling`.
"""

from __future__ import annotations

import argparse
import base64
import copy
import secrets
import statistics
import subprocess  # noqa: TID251 - bench tooling runs helm directly, outside the product's HelmClient
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from kubeapi_double import KubeApiDouble
from kubeapi_double.resources import RESOURCE_TYPES, ResourceType, lookup

ROOT = Path(__file__).resolve().parents[1]
CHART = ROOT / "charts" / "woocommerce"
LOCAL_VALUES = CHART / "ci" / "local-values.yaml"
READY_DELAY = 0.05  # what the tests' kube_api fixture uses
SWEEPS = 5
HELM_TIMEOUT = 120
CONTROLLER_THREAD = "kubeapi-double-controllers"


class TimedLock:
    """The store's RLock, recording how long the controller thread holds it (outermost holds only)."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._local = threading.local()
        self.recording = False
        self.holds: list[float] = []

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        acquired = self._lock.acquire(blocking, timeout)
        if acquired:
            depth = getattr(self._local, "depth", 0)
            if depth == 0:
                self._local.started = time.perf_counter()
            self._local.depth = depth + 1
        return acquired

    def release(self) -> None:
        self._local.depth -= 1
        if self._local.depth == 0 and self.recording and threading.current_thread().name == CONTROLLER_THREAD:
            self.holds.append(time.perf_counter() - self._local.started)
        self._lock.release()

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(self, *exc_info: object) -> None:
        self.release()


def _helm_binary(name: str) -> Path:
    return ROOT / ".tools" / "bin" / name


def _values(store: str) -> dict[str, Any]:
    values = yaml.safe_load(LOCAL_VALUES.read_text())
    values["store"].update(name=store, title=store.title(), host=f"{store}.127.0.0.1.nip.io")
    return values


def _render(helm: Path) -> list[dict[str, Any]]:
    """The objects one store's chart creates (hooks included), rendered once."""
    with tempfile.NamedTemporaryFile("w", suffix=".yaml") as values_file:
        yaml.safe_dump(_values("fleet"), values_file)
        values_file.flush()
        out = subprocess.run(
            [str(helm), "template", "fleet", str(CHART), "-f", values_file.name, "--namespace", "fleet"],
            capture_output=True, text=True, check=True, timeout=60,
        ).stdout  # fmt: skip
    return [doc for doc in yaml.safe_load_all(out) if doc]


def _release_secret(store: str) -> dict[str, Any]:
    # helm's release record: labels helm selects by, and a payload of a realistic size.
    payload = base64.b64encode(secrets.token_bytes(12_000)).decode()
    return {
        "metadata": {
            "name": f"sh.helm.release.v1.{store}.v1",
            "labels": {"owner": "helm", "name": store, "status": "deployed", "version": "1"},
        },
        "type": "helm.sh/release.v1",
        "data": {"release": base64.b64encode(payload.encode()).decode()},
    }


def _fill(double: KubeApiDouble, manifests: list[dict[str, Any]], start: int, stop: int) -> None:
    store = double.store
    for index in range(start, stop):
        name = f"fleet-{index:04d}"
        namespace = f"store-{name}"
        store.create(lookup("namespaces"), None, {"metadata": {"name": namespace}})
        store.create(
            lookup("secrets"), namespace,
            {"metadata": {"name": "store-credentials"}, "stringData": {"db-password": "x", "admin-password": "y"}},
        )  # fmt: skip
        store.create(lookup("secrets"), namespace, _release_secret(name))
        for manifest in manifests:
            body = copy.deepcopy(manifest)
            body.setdefault("metadata", {})["namespace"] = namespace
            store.create(_resource_type(body), namespace, body)


def _resource_type(body: dict[str, Any]) -> ResourceType:
    return next(
        rt for rt in RESOURCE_TYPES if rt.kind == body["kind"] and rt.api_version == body["apiVersion"]
    )


def _settle(double: KubeApiDouble) -> None:
    """Sweep (controller thread stopped) until a sweep writes nothing."""
    time.sleep(READY_DELAY * 2)
    for _ in range(20):
        before = double.store.resource_version
        double.controllers.reconcile_all()
        if double.store.resource_version == before:
            return
    raise RuntimeError("the double did not settle in 20 sweeps")


def _sweep(double: KubeApiDouble, sweeps: int) -> tuple[float, float]:
    walls, cpus = [], []
    for _ in range(sweeps):
        wall, cpu = time.perf_counter(), time.thread_time()
        double.controllers.reconcile_all()
        cpus.append(time.thread_time() - cpu)
        walls.append(time.perf_counter() - wall)
    return statistics.median(walls), statistics.median(cpus)


def _helm_install(double: KubeApiDouble, helm: Path, store: str, work: Path) -> str:
    namespace = f"store-{store}"
    double.store.create(lookup("namespaces"), None, {"metadata": {"name": namespace}})
    double.store.create(
        lookup("secrets"),
        namespace,
        {"metadata": {"name": "store-credentials"}, "stringData": {"db-password": "x"}},
    )
    values = work / f"{store}.yaml"
    values.write_text(yaml.safe_dump(_values(store)))
    major4 = helm.name == "helm4"
    wait = ["--rollback-on-failure", "--wait=watcher"] if major4 else ["--atomic", "--wait"]
    env = {"PATH": "/usr/bin:/bin", "HOME": str(work), "KUBECONFIG": str(double.kubeconfig_path),
           "HELM_CACHE_HOME": str(work / "cache"), "HELM_CONFIG_HOME": str(work / "config"),
           "HELM_DATA_HOME": str(work / "data")}  # fmt: skip
    started = time.perf_counter()
    try:
        done = subprocess.run(
            [str(helm), "upgrade", "--install", store, str(CHART), "--namespace", namespace, "-f", str(values),
             *wait, "--timeout", f"{HELM_TIMEOUT}s"],
            env=env, capture_output=True, text=True, check=False, timeout=HELM_TIMEOUT + 30,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        return f"not done after {HELM_TIMEOUT + 30} s (killed)"
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        return f"exit {done.returncode} after {seconds:.2f} s: {done.stderr.strip().splitlines()[-1][:80]}"
    return f"{seconds:5.2f} s"


def _teardown(double: KubeApiDouble, lock: TimedLock, namespace: str) -> str:
    """Delete the helm-installed store's namespace; time until the controllers have removed it."""
    lock.holds.clear()
    lock.recording = True
    started = time.perf_counter()
    double.store.delete(lookup("namespaces"), None, namespace)
    while double.get("namespaces", namespace) is not None:
        if time.perf_counter() - started > HELM_TIMEOUT:
            break
        time.sleep(0.01)
    seconds = time.perf_counter() - started
    lock.recording = False
    holds = list(lock.holds)
    return f"namespace deleted in {seconds:.2f} s (max lock hold {max(holds, default=0) * 1000:.1f} ms)"


def run(
    sizes: tuple[int, ...] = (0, 45, 200, 1_000),
    helm_name: str = "helm4",
    *,
    sweeps: int = SWEEPS,
    with_helm: bool = True,
    report: Callable[[str, object], None] | None = None,
) -> dict[str, object]:
    helm = _helm_binary(helm_name)
    manifests = _render(helm)
    results: dict[str, object] = {
        "objects per store": len(manifests) + 3,
        "kinds per store": ", ".join(sorted({m["kind"] for m in manifests})),
    }
    double = KubeApiDouble(ready_delay=READY_DELAY)
    lock = TimedLock()
    double.store.lock = lock  # type: ignore[assignment]
    double.start()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            double.write_kubeconfig(work / "kubeconfig")
            present = 0
            for size in sizes:
                double.controllers.stop()
                filled = time.perf_counter()
                _fill(double, manifests, present, size)
                _settle(double)
                fill_seconds = time.perf_counter() - filled
                present = size
                wall, cpu = _sweep(double, sweeps)
                objects = sum(len(double.store._objects[rt]) for rt in double.store._objects)
                row = (
                    f"sweep {wall * 1000:8.2f} ms wall, {cpu * 1000:8.2f} ms CPU "
                    f"({objects:,} objects, filled and settled in {fill_seconds:.1f} s)"
                )
                if with_helm:
                    double.controllers.start()
                    lock.holds.clear()
                    lock.recording = True
                    helm_result = _helm_install(double, helm, f"target-{size:04d}", work)
                    lock.recording = False
                    holds = list(lock.holds)
                    row += (
                        f" | {helm_name} upgrade --install {helm_result}; controller held the lock "
                        f"{sum(holds):6.2f} s in {len(holds)} sweeps (max {max(holds, default=0) * 1000:.1f} ms)"
                    )
                    row += " | " + _teardown(double, lock, f"store-target-{size:04d}")
                results[f"N={size:,}"] = row
                if report is not None:
                    report(f"N={size:,}", row)
    finally:
        double.stop()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.double_scaling")
    parser.add_argument("--sizes", default="0,45,200,1000")
    parser.add_argument("--helm", default="helm4", choices=("helm3", "helm4"))
    parser.add_argument("--sweeps", type=int, default=SWEEPS, help="steady-state sweeps timed per size")
    parser.add_argument("--no-helm", action="store_true", help="sweeps only")
    args = parser.parse_args()
    run(
        tuple(int(size) for size in args.sizes.split(",")),
        args.helm,
        sweeps=args.sweeps,
        with_helm=not args.no_helm,
        report=lambda key, value: print(f"  {key:<8} {value}", flush=True),
    )


if __name__ == "__main__":
    main()
