"""Shared set-up for the benchmarks: services, processes and the machine they ran on."""

from __future__ import annotations

import os
import platform
import re
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORK_DIR = ROOT / "var" / "bench"

DEFAULTS = {
    "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/platform_bench",
    "CELERY_BROKER_URL": "redis://127.0.0.1:6379/8",
    "REDIS_URL": "redis://127.0.0.1:6379/9",
}


def configure_environment() -> None:
    """PostgreSQL and Redis unless the caller chose otherwise; quiet logs; a generous budget."""
    for key, value in DEFAULTS.items():
        os.environ.setdefault(key, value)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "platform_site.settings")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    os.environ.setdefault("CLUSTER_IS_SIMULATED", "1")
    os.environ.setdefault("PROVISIONING_TIMEOUT", "120")
    WORK_DIR.mkdir(parents=True, exist_ok=True)


def machine_description() -> str:
    """One line naming the machine, so figures are never quoted without it."""
    cpu = "unknown CPU"
    try:
        match = re.search(r"model name\s*:\s*(.+)", Path("/proc/cpuinfo").read_text())
        cpu = match.group(1).strip() if match else cpu
    except OSError:
        pass
    memory_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{platform.node()}: {os.cpu_count()} cores ({cpu}), {memory_gib:.0f} GiB, Python {platform.python_version()}"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now: benchmarks never assume a fixed one."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile (fraction in 0..1)."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(fraction * len(ordered) + 0.5) - 1))
    return ordered[index]


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def reset_database() -> None:
    """Drop and recreate the benchmark database so every run starts from the same state."""
    import psycopg

    url = os.environ["DATABASE_URL"]
    if not url.startswith("postgres"):
        return
    name = url.rsplit("/", 1)[1]
    admin_url = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, check=True)


def flush_redis() -> None:
    import redis

    for key in ("CELERY_BROKER_URL", "REDIS_URL"):
        if os.environ[key].startswith("redis://"):
            redis.Redis.from_url(os.environ[key]).flushdb()


class Process:
    """A child process whose output goes to a log file under var/bench."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> None:
        self.log_path = WORK_DIR / f"{name}.log"
        self._log = self.log_path.open("w")
        self.process = subprocess.Popen(
            argv, cwd=ROOT, env={**os.environ, **(env or {})}, stdout=self._log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip

    def wait_for_output(self, text: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.log_path.read_text(errors="replace"):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"{self.log_path.name}: {text!r} not seen\n{self.log_path.read_text()[-3000:]}"
                )
            time.sleep(0.1)

    def tree_pids(self) -> list[int]:
        """This process and all its descendants."""
        out = subprocess.run(["ps", "-eo", "pid=,ppid="], capture_output=True, text=True, check=False).stdout
        children: dict[int, list[int]] = {}
        for line in out.splitlines():
            pid, ppid = (int(part) for part in line.split())
            children.setdefault(ppid, []).append(pid)
        found, queue = [], [self.process.pid]
        while queue:
            pid = queue.pop()
            found.append(pid)
            queue.extend(children.get(pid, []))
        return found

    def stop(self) -> None:
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(20)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self._log.close()


def peak_rss_mib(pid: int) -> float:
    """Peak resident memory (VmHWM) of one process, in MiB."""
    try:
        match = re.search(r"VmHWM:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text())
    except OSError:
        return 0.0
    return int(match.group(1)) / 1024 if match else 0.0


def cpu_seconds(pids: list[int]) -> float:
    """CPU time (user + system) these processes have used themselves, not their exited children
    (helm's own time is not the platform's overhead)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / ticks


def broker_messages_sent() -> int:
    """Messages pushed onto Redis lists so far (Celery's Redis transport sends each with LPUSH)."""
    import redis

    stats = redis.Redis.from_url(os.environ["CELERY_BROKER_URL"]).info("commandstats")
    return int(stats.get("cmdstat_lpush", {}).get("calls", 0))


def start_kube_double(ready_delay: float = 0.3) -> Process:
    kubeconfig = WORK_DIR / "kubeconfig"
    kubeconfig.unlink(missing_ok=True)
    double = Process(
        "kubeapi",
        [sys.executable, "-m", "kubeapi_double", "--port", "0", "--kubeconfig", str(kubeconfig),
         "--ready-delay", str(ready_delay)],
    )  # fmt: skip
    double.wait_for_output("READY")
    os.environ["KUBECONFIG"] = str(kubeconfig)
    return double


class KubeTarget:
    """The Kubernetes API a benchmark provisions against: the double, or a real control plane."""

    def __init__(self, name: str, stop: Callable[[], None]) -> None:
        self.name = name
        self.stop = stop


def real_cluster_available() -> str | None:
    """None when the real control plane's binaries are built, else why not (one line)."""
    from localcluster import BinariesMissing, ClusterBinaries

    try:
        ClusterBinaries.find()
    except BinariesMissing as exc:
        return str(exc)
    return None


def start_kube_target(target: str, *, stores: int = 50) -> KubeTarget:
    """Start `target` ("double" or "real") and point KUBECONFIG (and the worker) at it."""
    if target == "double":
        os.environ["CLUSTER_IS_SIMULATED"] = "1"
        double = start_kube_double()
        return KubeTarget("double", double.stop)
    import shutil

    from localcluster import FakeNode, LocalCluster

    work_dir = WORK_DIR / "cluster"
    shutil.rmtree(work_dir, ignore_errors=True)
    # kwok nodes cost nothing to run: size them so every store of the run fits on them.
    nodes = tuple(
        FakeNode(f"bench-node-{i}", cpu="16", memory="64Gi", pods=250) for i in range(max(2, stores // 25))
    )
    cluster = LocalCluster(work_dir, nodes=nodes, name="bench").start()
    os.environ["KUBECONFIG"] = str(cluster.kubeconfig)
    os.environ["CLUSTER_IS_SIMULATED"] = ""
    return KubeTarget("real", cluster.stop)


def start_worker(concurrency: int, name: str = "worker", **env: str) -> Process:
    worker = Process(
        name,
        [sys.executable, "-m", "celery", "-A", "platform_site", "worker", "--pool", "prefork",
         "--concurrency", str(concurrency), "--without-gossip", "--without-mingle", "--without-heartbeat",
         "--loglevel", "WARNING", "--hostname", f"{name}@%h"],
        env={"HELM_BINARY": str(ROOT / ".tools" / "bin" / "helm"), **env},
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while len(worker.tree_pids()) < concurrency + 1:
        if time.monotonic() > deadline or worker.process.poll() is not None:
            raise RuntimeError(worker.log_path.read_text()[-3000:])
        time.sleep(0.2)
    time.sleep(1.0)  # the pool children connect to the broker
    return worker
