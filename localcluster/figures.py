"""Figures the real-node tests and the benchmark report: what the images in use cost to build, and a
timestamped transcript of deploy/e2e-cluster.sh, from which the store's timings are read."""

from __future__ import annotations

import re
import subprocess
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from localcluster.binaries import ROOT
from localcluster.node import CACHE_ROOT, image_archives, normalised_reference

BUILD_TIMES = CACHE_ROOT / "images" / "build-times.tsv"
E2E_SCRIPT = ROOT / "deploy" / "e2e-cluster.sh"


def image_build_seconds(images: Iterable[str], build_times: Path = BUILD_TIMES) -> dict[str, int | None]:
    """Seconds deploy/images/build.sh took to build the archive of each image in use (None when the
    archive predates the record); a cold build is the sum over an image and what it is built on."""
    archives = image_archives()
    recorded: dict[tuple[str, str], int] = {}
    try:
        for line in build_times.read_text().splitlines():
            reference, key, seconds, _ = line.split("\t")
            recorded[(reference, key)] = int(seconds)
    except (FileNotFoundError, ValueError):
        pass
    found: dict[str, int | None] = {}
    for image in images:
        reference = normalised_reference(image)
        archive = archives.get(reference)
        key = archive.name.removesuffix(".oci.tar").rpartition("-")[2] if archive else ""
        found[image] = recorded.get((reference, key))
    return found


@dataclass
class Transcript:
    """Each line the script printed, with the monotonic time it arrived."""

    lines: list[tuple[float, str]] = field(default_factory=list)
    started: float = 0.0
    exit_code: int | None = None

    def text(self) -> str:
        return "\n".join(line for _, line in self.lines)

    def first(self, pattern: str) -> float | None:
        """Seconds from the start to the first line matching `pattern` (a regular expression)."""
        compiled = re.compile(pattern)
        for at, line in self.lines:
            if compiled.search(line):
                return at - self.started
        return None


def run_e2e(args: list[str], env: dict[str, str], *, timeout: float) -> Transcript:
    """Run deploy/e2e-cluster.sh as it is, from the repository root, timing every line it prints."""
    transcript = Transcript(started=time.monotonic())
    process = subprocess.Popen(
        ["bash", str(E2E_SCRIPT), *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        bufsize=1,
    )
    assert process.stdout is not None
    # A script stuck without printing must still end: the timer kills it, which closes its output.
    killer = threading.Timer(timeout, process.kill)
    killer.start()
    try:
        for line in process.stdout:
            transcript.lines.append((time.monotonic(), line.rstrip("\n")))
    finally:
        killer.cancel()
        transcript.exit_code = process.wait(timeout=30)
    if transcript.exit_code < 0:
        transcript.lines.append((time.monotonic(), f"(killed after {timeout:.0f} s)"))
    return transcript


__all__ = ["BUILD_TIMES", "Transcript", "image_build_seconds", "run_e2e"]
