"""The stand-in images of deploy/images honour what the charts rely on, checked on the real node with
the charts' own manifests (rendered by helm): the Medusa chart's PostgreSQL (POSTGRES_* variables,
PGDATA in a subdirectory of the claim, the init script that creates the medusa role, pg_isready) and
Redis, and the WooCommerce chart's MariaDB (MARIADB_* variables, healthcheck.sh) and WordPress
(copied onto its claim as uid 33, wp-config.php from WORDPRESS_*, Apache on 8080 with the chart's
configuration, reaching MariaDB through its Service), all under Pod Security `restricted` with
read-only root filesystems.

Needs what test_real_node.py needs, plus the postgres, mariadb, wordpress and wordpress-cli images and
helm.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from localcluster.tests.support import (
    install_chart_objects,
    node_cluster_or_skip,
    run_client,
    secret_env,
    wait_workloads_ready,
)

# The web pod carries the wp-cron sidecar, so WordPress's pod needs the wp-cli stand-in as well.
IMAGES = (
    "postgres:16.9-bookworm",
    "redis:7.4.2-bookworm",
    "mariadb:11.4.7",
    "wordpress:6.8.2-php8.3-apache",
    "wordpress:cli-2.12.0-php8.3",
)
# The chart's quota and default limits come along: the pods must fit them as they would in a store.
# The Jobs are left out: Medusa's needs its own image (test_medusa_image.py) and WooCommerce's needs
# wp-cli, which no registry here carries.
LIMITS = {"store-quota", "container-defaults"}

pytestmark = [pytest.mark.real_node, pytest.mark.real_cluster, pytest.mark.slow]


@pytest.fixture(scope="module")
def node_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple]:
    with node_cluster_or_skip(Path(tmp_path_factory.mktemp("stand-ins")), IMAGES) as pair:
        yield pair


def test_medusa_charts_postgres_and_redis_run_on_the_stand_ins(node_cluster):
    cluster, _ = node_cluster
    namespace = install_chart_objects(cluster, "medusa", {"postgres-init", "postgres", "redis", *LIMITS})
    seconds = wait_workloads_ready(cluster, namespace, 240)
    # The chart's init script ran on the empty PGDATA: the medusa role owns the medusa database and
    # logs in with its password over TCP (scram-sha-256, as the official image configures).
    output = run_client(
        cluster,
        namespace,
        "postgres:16.9-bookworm",
        'PGPASSWORD="$MEDUSA_DATABASE_PASSWORD" psql -h postgres -U medusa -d medusa -Atc '
        "'SELECT current_user, pg_catalog.pg_get_userbyid(datdba) FROM pg_database WHERE datname = current_database()'; "
        "exec 3<>/dev/tcp/redis/6379; printf 'PING\\r\\n' >&3; head -c 7 <&3",
        [secret_env("MEDUSA_DATABASE_PASSWORD", "database-password")],
        999,
    )
    assert "medusa|medusa" in output
    assert "PONG" in output
    print(f"\nmedusa chart's postgres + redis Ready in {seconds:.1f} s")


def test_woocommerce_charts_mariadb_and_wordpress_run_on_the_stand_ins(node_cluster):
    cluster, _ = node_cluster
    namespace = install_chart_objects(cluster, "woocommerce", {"apache", "mariadb", "wordpress", *LIMITS})
    seconds = wait_workloads_ready(cluster, namespace, 300)
    # WordPress answered its probes on /wp-login.php, which needs its database: MariaDB made the
    # wordpress user from MARIADB_USER/MARIADB_PASSWORD and WordPress found it through WORDPRESS_DB_*.
    output = run_client(
        cluster,
        namespace,
        "mariadb:11.4.7",
        "mariadb -h mariadb -u wordpress wordpress -N -e 'SELECT CURRENT_USER()'; "
        "exec 3<>/dev/tcp/wordpress/80; printf 'GET /wp-login.php HTTP/1.0\\r\\nHost: demo\\r\\n\\r\\n' >&3; head -1 <&3",
        # The client reads its password from MYSQL_PWD, so it never appears in the process list.
        [secret_env("MYSQL_PWD", "database-password")],
        999,
    )
    assert "wordpress@%" in output
    assert output.strip().splitlines()[-1].split()[1] in {"200", "302"}
    print(f"\nwoocommerce chart's mariadb + wordpress Ready in {seconds:.1f} s")
