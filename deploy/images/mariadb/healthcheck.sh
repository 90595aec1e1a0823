#!/usr/bin/env bash
# The official mariadb image's healthcheck.sh, for the tests the charts use:
#   --connect   the server accepts TCP connections (an authentication error still counts: it answered)
#   --innodb_initialized   InnoDB has finished starting
set -uo pipefail
defaults=/var/lib/mysql/.my-healthcheck.cnf
# The account exists only once the entrypoint has initialised the data directory.
[ -r "$defaults" ] || exit 1
client() { mariadb --defaults-extra-file="$defaults" -h localhost --protocol tcp "$@"; }
status=0
for test in "$@"; do
  case "$test" in
    --connect)
      out="$(client -e 'SELECT 1' 2>&1)" || { grep -qE "Can't connect|Lost connection" <<<"$out" && status=1; }
      ;;
    --innodb_initialized)
      [ "$(client -N -B -e "SELECT 1 FROM information_schema.ENGINES WHERE engine = 'InnoDB' AND support IN ('YES', 'DEFAULT')" 2>/dev/null)" = 1 ] || status=1
      ;;
    --*) echo "healthcheck.sh: the stand-in knows --connect and --innodb_initialized, not $test" >&2; status=1 ;;
  esac
done
exit "$status"
