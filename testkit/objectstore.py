"""A real S3-compatible object store for tests: SeaweedFS's `weed mini` on loopback.

Built by `make tools` (deploy/objectstore/build.sh) into .tools/objectstore/<version>/weed. One
process holds master, volume server, filer and the S3 gateway; every port is chosen free on 127.0.0.1
(SeaweedFS would otherwise take fixed defaults and derive gRPC ports as port + 10000). Without the
binary a test is skipped; with CI=true it fails, so CI can never pass by skipping it.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

from localcluster.processes import Component, free_port

REPO_ROOT = Path(__file__).resolve().parents[1]
VERSIONS_FILE = REPO_ROOT / "deploy" / "objectstore" / "versions.env"


def seaweedfs_version() -> str:
    for line in VERSIONS_FILE.read_text().splitlines():
        if line.startswith("SEAWEEDFS_VERSION="):
            return line.split("=", 1)[1].strip()
    raise RuntimeError(f"{VERSIONS_FILE} names no SEAWEEDFS_VERSION")


def weed_binary() -> Path:
    """The built `weed`; skips the test without it, fails it with CI=true."""
    path = REPO_ROOT / ".tools" / "objectstore" / seaweedfs_version() / "weed"
    if not os.access(path, os.X_OK):
        problem = f"SeaweedFS missing at {path}: run `make tools` (needs Go and the module proxy)"
        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            pytest.fail(f"CI=true and {problem}")
        pytest.skip(problem)
    return path


def _free_port_pair() -> int:
    """A free port whose +10000 twin is free too: `weed` binds gRPC there unless told otherwise,
    and a few of its internal listeners ignore the explicit gRPC flags."""
    for _ in range(200):
        port = free_port()
        if port + 10000 > 65535:
            continue
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
        return port
    raise RuntimeError("no free loopback port pair")


@dataclass(frozen=True)
class S3Credentials:
    endpoint: str
    region: str
    access_key: str
    secret_key: str


class ObjectStore:
    """One `weed mini` process with one admin identity; `client()` is a boto3 client for it."""

    def __init__(self, work_dir: Path) -> None:
        self.work_dir = work_dir
        self.credentials = S3Credentials(
            endpoint="",
            region="us-east-1",
            access_key="AK" + secrets.token_hex(8).upper(),
            secret_key=secrets.token_urlsafe(30),
        )
        self.component: Component | None = None

    def start(self) -> None:
        data = self.work_dir / "data"
        data.mkdir(parents=True, exist_ok=True)
        config = self.work_dir / "s3.json"
        config.write_text(
            json.dumps(
                {
                    "identities": [
                        {
                            "name": "platform",
                            "credentials": [
                                {
                                    "accessKey": self.credentials.access_key,
                                    "secretKey": self.credentials.secret_key,
                                }
                            ],
                            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                        }
                    ]
                }
            )
        )
        config.chmod(0o600)
        ports = {name: _free_port_pair() for name in ("master", "volume", "filer", "s3")}
        argv = [
            str(weed_binary()),
            "mini",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            f"-dir={data}",
            f"-s3.config={config}",
            f"-master.port={ports['master']}",
            f"-volume.port={ports['volume']}",
            f"-filer.port={ports['filer']}",
            f"-s3.port={ports['s3']}",
            f"-filer.localSocket={self.work_dir / 'filer.sock'}",
            f"-s3.localSocket={self.work_dir / 's3.sock'}",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            "-webdav=false",
            "-admin.ui=false",
            "-master.telemetry=false",
            "-master.volumeSizeLimitMB=64",
        ]
        endpoint = f"http://127.0.0.1:{ports['s3']}"
        self.credentials = S3Credentials(
            endpoint=endpoint,
            region=self.credentials.region,
            access_key=self.credentials.access_key,
            secret_key=self.credentials.secret_key,
        )
        self.component = Component(
            "seaweedfs", argv, log_path=self.work_dir / "weed.log", ready=self._answers, env=_env()
        )
        self.component.start(timeout=90)

    def _answers(self) -> bool:
        # An unsigned request gets 403 once the gateway runs with identities; before that, no answer.
        try:
            urllib.request.urlopen(self.credentials.endpoint + "/", timeout=2)
        except urllib.error.HTTPError as exc:
            return exc.code in {403, 200}
        except OSError:
            return False
        return True

    def stop(self) -> None:
        if self.component is not None:
            self.component.stop()

    def client(self):
        """A boto3 S3 client with path-style addressing (the bucket is not a DNS name on loopback)."""
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3",
            endpoint_url=self.credentials.endpoint,
            region_name=self.credentials.region,
            aws_access_key_id=self.credentials.access_key,
            aws_secret_access_key=self.credentials.secret_key,
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 2}),
        )

    def create_bucket(self) -> str:
        name = "backups-" + secrets.token_hex(4)
        self.client().create_bucket(Bucket=name)
        return name


def _env() -> dict[str, str]:
    # A minimal environment: weed reads WEED_* and S3_BUCKET variables, which a developer's shell
    # might carry.
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": tempfile.gettempdir()}
