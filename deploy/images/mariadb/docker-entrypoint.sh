#!/usr/bin/env bash
# The official mariadb image's start-up contract, reimplemented for the Debian stand-in: on an empty
# data directory, create the system tables, root (MARIADB_ROOT_PASSWORD, for localhost and '%'),
# MARIADB_DATABASE, MARIADB_USER with MARIADB_PASSWORD and all rights on that database, and a
# `healthcheck` account used by healthcheck.sh; run /docker-entrypoint-initdb.d; then start the real
# server. MYSQL_* names are accepted as in the official image.
set -Eeuo pipefail

if [ "${1:0:1}" = - ]; then
  set -- mariadbd "$@"
fi
if [ "$1" != mariadbd ] && [ "$1" != mysqld ]; then
  exec "$@"
fi
if [ "$(id -u)" = 0 ]; then
  chown -R mysql:mysql /var/lib/mysql /run/mysqld
  exec setpriv --reuid=mysql --regid=mysql --init-groups "$0" "$@"
fi

env_of() { # NAME: MARIADB_NAME, else MYSQL_NAME
  local mariadb="MARIADB_$1" mysql="MYSQL_$1"
  printf '%s' "${!mariadb:-${!mysql:-}}"
}
datadir=/var/lib/mysql
socket=/run/mysqld/mysqld.sock

if [ ! -d "$datadir/mysql" ]; then
  root_password="$(env_of ROOT_PASSWORD)"
  if [ -z "$root_password" ] && [ -z "$(env_of ALLOW_EMPTY_ROOT_PASSWORD)" ] && [ -z "$(env_of RANDOM_ROOT_PASSWORD)" ]; then
    echo "docker-entrypoint: set MARIADB_ROOT_PASSWORD, MARIADB_ALLOW_EMPTY_ROOT_PASSWORD or MARIADB_RANDOM_ROOT_PASSWORD" >&2
    exit 1
  fi
  if [ -n "$(env_of RANDOM_ROOT_PASSWORD)" ]; then
    root_password="$(head -c 24 /dev/urandom | base64)"
    echo "docker-entrypoint: GENERATED ROOT PASSWORD: $root_password"
  fi
  echo "docker-entrypoint: initialising $datadir"
  mariadb-install-db --datadir="$datadir" --skip-test-db --auth-root-authentication-method=normal \
    --skip-name-resolve --default-time-zone=SYSTEM >/dev/null
  "$@" --skip-networking --socket="$socket" --datadir="$datadir" &
  server=$!
  for _ in $(seq 1 60); do
    mariadb --no-defaults --protocol=socket --socket="$socket" -uroot -e 'SELECT 1' >/dev/null 2>&1 && break
    sleep 1
  done
  run_sql() { mariadb --no-defaults --protocol=socket --socket="$socket" -uroot "$@"; }
  # Values go in as SQL string literals; quote() makes them safe whatever they contain.
  sql_string() { printf "'%s'" "$(printf '%s' "$1" | sed -e "s/\\\\/\\\\\\\\/g" -e "s/'/''/g")"; }
  healthcheck_password="$(head -c 24 /dev/urandom | base64)"
  {
    echo "SET @@SESSION.SQL_LOG_BIN=0;"
    echo "DELETE FROM mysql.user WHERE user NOT IN ('mysql.sys', 'mariadb.sys', 'root') OR host NOT IN ('localhost');"
    echo "ALTER USER 'root'@'localhost' IDENTIFIED BY $(sql_string "$root_password");"
    echo "CREATE USER 'root'@'%' IDENTIFIED BY $(sql_string "$root_password");"
    echo "GRANT ALL ON *.* TO 'root'@'%' WITH GRANT OPTION;"
    for host in 127.0.0.1 ::1 localhost; do
      echo "CREATE USER 'healthcheck'@'$host' IDENTIFIED BY $(sql_string "$healthcheck_password");"
      echo "GRANT USAGE ON *.* TO 'healthcheck'@'$host';"
    done
    database="$(env_of DATABASE)"
    if [ -n "$database" ]; then
      echo "CREATE DATABASE IF NOT EXISTS \`${database//\`/\`\`}\`;"
    fi
    user="$(env_of USER)"
    if [ -n "$user" ]; then
      echo "CREATE USER $(sql_string "$user")@'%' IDENTIFIED BY $(sql_string "$(env_of PASSWORD)");"
      if [ -n "$database" ]; then
        echo "GRANT ALL ON \`${database//\`/\`\`}\`.* TO $(sql_string "$user")@'%';"
      fi
    fi
    echo "FLUSH PRIVILEGES;"
  } | run_sql
  printf '[mariadb-client]\nport=3306\nsocket=%s\nuser=healthcheck\npassword=%s\nprotocol=tcp\n' \
    "$socket" "$healthcheck_password" >"$datadir/.my-healthcheck.cnf"
  chmod 0600 "$datadir/.my-healthcheck.cnf"
  for script in /docker-entrypoint-initdb.d/*; do
    case "$script" in
      *.sh) echo "docker-entrypoint: running $script"; if [ -x "$script" ]; then "$script"; else . "$script"; fi ;;
      *.sql) echo "docker-entrypoint: running $script"; run_sql --password="$root_password" "$(env_of DATABASE)" <"$script" ;;
      *) [ ! -e "$script" ] || echo "docker-entrypoint: ignoring $script" ;;
    esac
  done
  kill "$server"
  wait "$server" || true
  echo "docker-entrypoint: MariaDB init process done; ready for start up."
fi

exec "$@"
