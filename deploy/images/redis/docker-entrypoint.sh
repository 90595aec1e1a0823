#!/bin/sh
# The official redis image's start-up contract, reimplemented for the Debian stand-in.
set -eu

# Flags or a config file alone mean "redis-server with these".
if [ "${1#-}" != "$1" ] || [ "${1%.conf}" != "$1" ]; then
  set -- redis-server "$@"
fi

if [ "$1" = redis-server ]; then
  # The official image compiles protected mode off (a container is reached through its network, not
  # loopback); Debian's build keeps it on, so say it on the command line unless the caller did or a
  # config file decides.
  case "$*" in
    *protected-mode* | *.conf*) ;;
    *)
      shift
      set -- redis-server --protected-mode no "$@"
      ;;
  esac
  # Started as root (no runAsUser): own the data and drop to the redis user, as the official image does.
  if [ "$(id -u)" = 0 ]; then
    find . \! -user redis -exec chown redis '{}' +
    exec setpriv --reuid=redis --regid=redis --init-groups "$0" "$@"
  fi
fi

# Files redis writes (dump, append-only log) are private unless a umask was chosen.
if [ "$(umask)" = 0022 ]; then
  umask 0077
fi
exec "$@"
