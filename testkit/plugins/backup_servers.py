"""Real servers for the backup tests: the S3 object store (SeaweedFS), a private MariaDB and a fresh
PostgreSQL database, all on loopback.

`object_store` is one SeaweedFS per session; `backup_bucket` a new bucket per test. `mariadb_server`
is one private `mariadbd` per session in a temporary directory (Debian's mariadb-server package,
listening on a free 127.0.0.1 port, its own socket); `pg_database` a throwaway database on the
PostgreSQL that deploy/tools/start-services.sh runs. Missing binaries skip the test, or fail it with
CI=true (the same rule as the real-cluster fixtures).
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from localcluster.processes import Component, free_port
from testkit.objectstore import ObjectStore


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def _missing(problem: str) -> None:
    if _in_ci():
        pytest.fail(f"CI=true and {problem}")
    pytest.skip(problem)


@pytest.fixture(scope="session")
def object_store(tmp_path_factory) -> Iterator[ObjectStore]:
    store = ObjectStore(tmp_path_factory.mktemp("seaweedfs"))
    store.start()
    try:
        yield store
    finally:
        store.stop()


@pytest.fixture
def backup_bucket(object_store: ObjectStore) -> str:
    return object_store.create_bucket()


@dataclass(frozen=True)
class MariaDB:
    host: str
    port: int
    socket: Path
    user: str
    password: str

    def sql(self, statement: str, *, database: str = "") -> str:
        """Run one statement as the test's admin user; the output, tab-separated, without headers."""
        argv = ["mariadb", f"--socket={self.socket}", "--user=root", "--batch", "--skip-column-names"]
        if database:
            argv.append(database)
        done = subprocess.run(argv, input=statement, capture_output=True, text=True, timeout=60)
        if done.returncode != 0:
            raise RuntimeError(f"mariadb: {done.stderr.strip()}")
        return done.stdout


def _mariadb_binaries() -> tuple[str, str]:
    server = shutil.which("mariadbd") or (
        "/usr/sbin/mariadbd" if os.access("/usr/sbin/mariadbd", os.X_OK) else None
    )
    install = shutil.which("mariadb-install-db")
    if not server or not install or not shutil.which("mysqldump"):
        _missing("MariaDB missing: apt-get install mariadb-server mariadb-client")
    return server, install  # type: ignore[return-value]


@pytest.fixture(scope="session")
def mariadb_server() -> Iterator[MariaDB]:
    server, install = _mariadb_binaries()
    # A short path: the socket's path must fit in sun_path (108 bytes).
    work = Path(tempfile.mkdtemp(prefix="mdb-"))
    data, sock = work / "data", work / "mysqld.sock"
    user_args = ["--user=root"] if os.geteuid() == 0 else []
    done = subprocess.run(
        [
            install,
            "--no-defaults",
            f"--datadir={data}",
            "--auth-root-authentication-method=socket",
            "--skip-test-db",
            *user_args,
        ],
        capture_output=True,
        text=True,
        timeout=180,
    )
    if done.returncode != 0:
        raise RuntimeError(f"mariadb-install-db failed: {done.stderr[-2000:]}")
    port = free_port()
    password = secrets.token_urlsafe(18)
    component = Component(
        "mariadb",
        [
            server,
            "--no-defaults",
            f"--datadir={data}",
            f"--socket={sock}",
            f"--port={port}",
            "--bind-address=127.0.0.1",
            f"--pid-file={work / 'mysqld.pid'}",
            "--skip-log-bin",
            "--innodb-buffer-pool-size=32M",
            "--innodb-flush-log-at-trx-commit=2",
            *user_args,
        ],
        log_path=work / "mariadb.log",
        ready=lambda: sock.exists(),
    )
    component.start(timeout=120)
    db = MariaDB(host="127.0.0.1", port=port, socket=sock, user="backup", password=password)
    # The Job connects over TCP as an ordinary user, like the store's own wordpress user.
    db.sql(
        f"CREATE USER 'backup'@'127.0.0.1' IDENTIFIED BY '{password}';"
        "GRANT ALL PRIVILEGES ON *.* TO 'backup'@'127.0.0.1';"
    )
    try:
        yield db
    finally:
        component.stop()
        shutil.rmtree(work, ignore_errors=True)


@dataclass(frozen=True)
class PgDatabase:
    host: str
    port: int
    user: str
    name: str

    def sql(self, statement: str) -> str:
        done = subprocess.run(
            [
                "psql",
                "-h",
                self.host,
                "-p",
                str(self.port),
                "-U",
                self.user,
                "-d",
                self.name,
                "-v",
                "ON_ERROR_STOP=1",
                "-qAt",
            ],
            input=statement,
            capture_output=True,
            text=True,
            timeout=60,
        )
        if done.returncode != 0:
            raise RuntimeError(f"psql: {done.stderr.strip()}")
        return done.stdout


@pytest.fixture
def pg_database() -> Iterator[PgDatabase]:
    if not shutil.which("pg_dump") or not shutil.which("psql"):
        _missing("PostgreSQL client missing: apt-get install postgresql-client")
    host, port, user = "127.0.0.1", 5432, "postgres"
    name = "backup_" + secrets.token_hex(4)
    admin = PgDatabase(host=host, port=port, user=user, name="postgres")
    try:
        admin.sql(f"CREATE DATABASE {name}")
    except RuntimeError as exc:
        _missing(f"PostgreSQL on 127.0.0.1:5432 is not usable ({exc}): bash deploy/tools/start-services.sh")
    try:
        yield PgDatabase(host=host, port=port, user=user, name=name)
    finally:
        admin.sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
