#!/usr/bin/env bash
# Installs (from Debian's packages, if missing) and starts PostgreSQL and Redis on 127.0.0.1 for
# local test runs and CI. Idempotent: a running server is left alone. PostgreSQL trusts loopback
# connections (test machines only: never use this script's set-up for a real deployment).
set -euo pipefail

need=()
command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ] || need+=(postgresql)
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
if [ "${#need[@]}" -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "start-services: ${need[*]} missing; install them as root: apt-get install ${need[*]}" >&2
    exit 1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

version="$(ls /etc/postgresql | sort -V | tail -n 1)"
hba="/etc/postgresql/$version/main/pg_hba.conf"
if ! grep -q '^host all all 127.0.0.1/32 trust' "$hba"; then
  # First match wins in pg_hba.conf: put the loopback trust lines before the packaged defaults.
  { printf 'host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust\n'; cat "$hba"; } >"$hba.new"
  mv "$hba.new" "$hba"
  chown postgres:postgres "$hba"
  pg_ctlcluster --skip-systemctl-redirect "$version" main reload 2>/dev/null || true
fi
if ! pg_isready -h 127.0.0.1 -p 5432 -q; then
  pg_ctlcluster --skip-systemctl-redirect "$version" main start
fi

if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/test.log
fi

for _ in $(seq 1 60); do
  if pg_isready -h 127.0.0.1 -p 5432 -q && redis-cli -h 127.0.0.1 ping >/dev/null 2>&1; then
    echo "start-services: PostgreSQL $version and Redis answer on 127.0.0.1"
    exit 0
  fi
  sleep 1
done
echo "start-services: PostgreSQL or Redis did not answer within 60 s" >&2
exit 1
