#!/usr/bin/env bash
# The official postgres image's start-up contract, reimplemented for the Debian stand-in: on an empty
# PGDATA, initdb as POSTGRES_USER with POSTGRES_PASSWORD, create POSTGRES_DB, run the scripts in
# /docker-entrypoint-initdb.d against a server reachable only through its socket, then start the real
# server listening on every address with password (scram-sha-256) authentication for remote hosts.
set -Eeuo pipefail

if [ "${1:0:1}" = - ]; then
  set -- postgres "$@"
fi
if [ "$1" != postgres ]; then
  exec "$@"
fi

if [ "$(id -u)" = 0 ]; then
  mkdir -p "$PGDATA"
  chown postgres:postgres "$PGDATA"
  chmod 0700 "$PGDATA"
  exec setpriv --reuid=postgres --regid=postgres --init-groups "$0" "$@"
fi

user="${POSTGRES_USER:-postgres}"
database="${POSTGRES_DB:-$user}"

if [ ! -s "$PGDATA/PG_VERSION" ]; then
  if [ -z "${POSTGRES_PASSWORD:-}" ] && [ "${POSTGRES_HOST_AUTH_METHOD:-}" != trust ]; then
    echo "docker-entrypoint: POSTGRES_PASSWORD is empty; set it (or POSTGRES_HOST_AUTH_METHOD=trust)" >&2
    exit 1
  fi
  mkdir -p "$PGDATA"
  chmod 0700 "$PGDATA"
  # The password reaches initdb through a pipe, never the command line.
  # shellcheck disable=SC2086 # POSTGRES_INITDB_ARGS is a list of flags, as in the official image
  initdb --username="$user" --pwfile=<(printf '%s\n' "${POSTGRES_PASSWORD:-}") ${POSTGRES_INITDB_ARGS:-}
  printf "\nlisten_addresses = '*'\n" >>"$PGDATA/postgresql.conf"
  printf '\nhost all all all %s\n' "${POSTGRES_HOST_AUTH_METHOD:-scram-sha-256}" >>"$PGDATA/pg_hba.conf"

  pg_ctl -D "$PGDATA" -o "-c listen_addresses=''" -w start
  run_psql() { psql -v ON_ERROR_STOP=1 --no-psqlrc --username "$user" --dbname postgres "$@"; }
  if [ "$database" != postgres ]; then
    run_psql --set db="$database" <<<'CREATE DATABASE :"db";'
  fi
  for script in /docker-entrypoint-initdb.d/*; do
    case "$script" in
      *.sh)
        echo "docker-entrypoint: running $script"
        if [ -x "$script" ]; then "$script"; else . "$script"; fi
        ;;
      *.sql) echo "docker-entrypoint: running $script"; run_psql --dbname "$database" -f "$script" ;;
      *.sql.gz) echo "docker-entrypoint: running $script"; gunzip -c "$script" | run_psql --dbname "$database" ;;
      *) [ ! -e "$script" ] || echo "docker-entrypoint: ignoring $script" ;;
    esac
  done
  pg_ctl -D "$PGDATA" -m fast -w stop
  echo "docker-entrypoint: PostgreSQL init process complete; ready for start up."
fi

exec "$@"
