"""deploy/backup/store-backup.sh natively, against real servers: a private MariaDB, PostgreSQL and
SeaweedFS's S3 gateway, all on loopback (testkit/plugins/backup_servers.py).

Each engine: load a known data set, back up, change the data and the uploads, restore, and compare
row counts and a checksum of the uploads tree with what was there at backup time.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import time
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "backup" / "store-backup.sh"


def _run(mode: str, env: dict[str, str]) -> tuple[subprocess.CompletedProcess[str], dict[str, str], float]:
    started = time.monotonic()
    done = subprocess.run(["bash", str(SCRIPT), mode], env=env, capture_output=True, text=True, timeout=300)
    elapsed = time.monotonic() - started
    last = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""
    assert last.startswith("BACKUP-RESULT "), f"no result line:\n{done.stdout}\n{done.stderr}"
    fields = dict(part.split("=", 1) for part in last.split()[2:] if "=" in part)
    fields["outcome"] = last.split()[1]
    return done, fields, elapsed


def _s3_env(object_store, bucket: str, prefix: str, tmp_path: Path) -> dict[str, str]:
    creds = object_store.credentials
    return {
        "PATH": os.environ["PATH"],
        "BACKUP_PREFIX": prefix,
        "S3_ENDPOINT": creds.endpoint,
        "S3_BUCKET": bucket,
        "S3_REGION": creds.region,
        "AWS_ACCESS_KEY_ID": creds.access_key,
        "AWS_SECRET_ACCESS_KEY": creds.secret_key,
        "BACKUP_WORK_DIR": str(tmp_path),
    }


def _tree_digest(root: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        if path.is_file():
            digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def _uploads(tmp_path: Path) -> Path:
    uploads = tmp_path / "uploads"
    (uploads / "2026" / "11").mkdir(parents=True)
    (uploads / "2026" / "11" / "hoodie.jpg").write_bytes(os.urandom(200_000))
    (uploads / "2026" / "11" / "cap.png").write_bytes(b"\x89PNG" + os.urandom(5000))
    return uploads


@pytest.mark.slow
def test_woocommerce_backup_and_restore_round_trip(mariadb_server, object_store, backup_bucket, tmp_path):
    db = mariadb_server
    name = "shop_" + os.urandom(3).hex()
    db.sql(
        f"CREATE DATABASE {name}; USE {name};"
        f"CREATE TABLE {name}.wp_wc_orders (id INT PRIMARY KEY AUTO_INCREMENT, total DECIMAL(10,2)) ENGINE=InnoDB;"
        f"INSERT INTO {name}.wp_wc_orders (total) SELECT seq * 1.5 FROM seq_1_to_250;"
    )
    uploads = _uploads(tmp_path)
    digest_at_backup = _tree_digest(uploads)
    env = {
        **_s3_env(object_store, backup_bucket, "tenants/1/stores/shop/b1", tmp_path),
        "BACKUP_ENGINE": "woocommerce",
        "DB_HOST": db.host,
        "DB_PORT": str(db.port),
        "DB_NAME": name,
        "DB_USER": db.user,
        "DB_PASSWORD": db.password,
        "UPLOADS_DIR": str(uploads),
    }
    done, result, backup_seconds = _run("backup", env)
    assert result["outcome"] == "ok", done.stdout + done.stderr
    assert db.password not in done.stdout + done.stderr
    keys = {
        o["Key"]: o["Size"] for o in object_store.client().list_objects_v2(Bucket=backup_bucket)["Contents"]
    }
    assert set(keys) == {
        f"tenants/1/stores/shop/b1/{p}" for p in ("database.gz", "uploads.tar.gz", "manifest")
    }
    manifest = object_store.client().get_object(Bucket=backup_bucket, Key="tenants/1/stores/shop/b1/manifest")
    assert hashlib.sha256(manifest["Body"].read()).hexdigest() == result["sha256"]
    assert (
        int(result["size"])
        == keys["tenants/1/stores/shop/b1/database.gz"] + keys["tenants/1/stores/shop/b1/uploads.tar.gz"]
    )

    db.sql(
        f"DELETE FROM {name}.wp_wc_orders WHERE id > 100; INSERT INTO {name}.wp_wc_orders (total) VALUES (9.99);"
    )
    (uploads / "2026" / "11" / "hoodie.jpg").write_bytes(b"overwritten")
    (uploads / "added-after-backup.txt").write_text("must not survive the restore")
    assert db.sql(f"SELECT COUNT(*) FROM {name}.wp_wc_orders").strip() == "101"

    done, result, restore_seconds = _run("restore", {**env, "BACKUP_SHA256": result["sha256"]})
    assert result["outcome"] == "ok", done.stdout + done.stderr
    assert db.sql(f"SELECT COUNT(*), SUM(total) FROM {name}.wp_wc_orders").split() == ["250", "47062.50"]
    assert _tree_digest(uploads) == digest_at_backup
    print(
        f"woocommerce: backup {backup_seconds:.2f} s, restore {restore_seconds:.2f} s, {result['size']} bytes"
    )


@pytest.mark.slow
def test_medusa_backup_and_restore_round_trip(pg_database, object_store, backup_bucket, tmp_path):
    db = pg_database
    db.sql(
        'CREATE TABLE "order" (id serial PRIMARY KEY, display_id int, total numeric);'
        'INSERT INTO "order" (display_id, total) SELECT g, g * 2.25 FROM generate_series(1, 320) g;'
        "CREATE TABLE product (id text PRIMARY KEY, title text);"
        "INSERT INTO product VALUES ('prod_1', 'Hoodie'), ('prod_2', 'Cap');"
    )
    env = {
        **_s3_env(object_store, backup_bucket, "tenants/2/stores/med/b1", tmp_path),
        "BACKUP_ENGINE": "medusa",
        "PGHOST": db.host,
        "PGPORT": str(db.port),
        "PGUSER": db.user,
        "PGDATABASE": db.name,
        "BACKUP_CHECK_QUERY": 'SELECT COUNT(*) FROM "order"',
    }
    done, result, backup_seconds = _run("backup", env)
    assert result["outcome"] == "ok", done.stdout + done.stderr
    db.sql('DELETE FROM "order" WHERE id % 2 = 0; DROP TABLE product; CREATE TABLE stray (x int);')

    done, result, restore_seconds = _run("restore", {**env, "BACKUP_SHA256": result["sha256"]})
    assert result["outcome"] == "ok", done.stdout + done.stderr
    assert db.sql('SELECT COUNT(*), SUM(total) FROM "order"').strip() == "320|115560.00"
    assert db.sql("SELECT string_agg(title, ',' ORDER BY id) FROM product").strip() == "Hoodie,Cap"
    # The drill's readiness check: the count recorded at backup time against the restored database.
    _, verified, _ = _run("verify", env)
    assert (verified["outcome"], verified["check"]) == ("ok", "320")
    db.sql('DELETE FROM "order" WHERE id = 1;')
    _, mismatch, _ = _run("verify", env)
    assert (mismatch["outcome"], mismatch["reason"]) == ("failed", "check-mismatch")
    print(f"medusa: backup {backup_seconds:.2f} s, restore {restore_seconds:.2f} s, {result['size']} bytes")


@pytest.mark.slow
def test_restore_refuses_a_tampered_part_before_touching_the_database(
    pg_database, object_store, backup_bucket, tmp_path
):
    db = pg_database
    db.sql("CREATE TABLE t (x int); INSERT INTO t SELECT generate_series(1, 10);")
    env = {
        **_s3_env(object_store, backup_bucket, "tenants/3/stores/x/b1", tmp_path),
        "BACKUP_ENGINE": "medusa",
        "PGHOST": db.host,
        "PGPORT": str(db.port),
        "PGUSER": db.user,
        "PGDATABASE": db.name,
    }
    _, result, _ = _run("backup", env)
    assert result["outcome"] == "ok"
    object_store.client().put_object(
        Bucket=backup_bucket, Key="tenants/3/stores/x/b1/database.gz", Body=b"junk"
    )
    db.sql("INSERT INTO t VALUES (11);")
    _, refused, _ = _run("restore", {**env, "BACKUP_SHA256": result["sha256"]})
    assert (refused["outcome"], refused["reason"]) == ("failed", "checksum-mismatch")
    assert db.sql("SELECT COUNT(*) FROM t").strip() == "11"  # untouched


@pytest.mark.slow
def test_failures_end_with_a_reason(pg_database, object_store, backup_bucket, tmp_path):
    db = pg_database
    base = {
        **_s3_env(object_store, backup_bucket, "tenants/4/stores/y/b1", tmp_path),
        "BACKUP_ENGINE": "medusa",
        "PGHOST": db.host,
        "PGPORT": str(db.port),
        "PGUSER": db.user,
        "PGDATABASE": db.name,
    }
    _, unreachable, _ = _run("backup", {**base, "S3_ENDPOINT": "http://127.0.0.1:9"})
    assert unreachable["reason"] == "bucket-unreachable"
    _, refused, _ = _run("backup", {**base, "AWS_SECRET_ACCESS_KEY": "wrong"})
    assert refused["reason"] == "bucket-refused"
    _, dump, _ = _run("backup", {**base, "PGDATABASE": "no_such_database"})
    assert dump["reason"] == "dump-failed"
    # The failed dump leaves no half-written object behind.
    listed = object_store.client().list_objects_v2(Bucket=backup_bucket, Prefix="tenants/4/")
    assert listed.get("KeyCount", 0) == 0
    _, bad, _ = _run("backup", {**base, "BACKUP_PREFIX": "../other-tenant"})
    assert bad["reason"] == "bad-input"
