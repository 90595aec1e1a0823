#!/usr/bin/env bash
# The official wordpress image's start-up contract, reimplemented for the Debian stand-in: when
# /var/www/html holds no WordPress, copy it there as the running user; when it has no wp-config.php
# and WORDPRESS_* variables are set, write one that reads them at run time (with fresh salts).
set -Eeuo pipefail

if [[ "$1" == apache2* ]]; then
  if [ "$(id -u)" = 0 ]; then
    owner=(--owner www-data --group www-data)
  else
    owner=()
  fi
  if [ ! -e index.php ] && [ ! -e wp-includes/version.php ]; then
    echo "WordPress not found in $PWD - copying now..." >&2
    tar --create --file - --directory /usr/src/wordpress "${owner[@]}" . | tar --extract --no-same-owner --file -
    echo "Complete! WordPress has been successfully copied to $PWD" >&2
  fi
  if [ ! -s wp-config.php ] && [ -n "$(compgen -e WORDPRESS_ || true)" ]; then
    salt() { head -c 48 /dev/urandom | base64 | tr -d '\n/+='; }
    config="$(cat /usr/src/wordpress/wp-config-docker.php)"
    for key in AUTH_KEY SECURE_AUTH_KEY LOGGED_IN_KEY NONCE_KEY AUTH_SALT SECURE_AUTH_SALT LOGGED_IN_SALT NONCE_SALT; do
      config="${config//__RANDOM_${key}__/$(salt)}"
    done
    printf '%s\n' "$config" >wp-config.php
    [ "$(id -u)" != 0 ] || chown www-data:www-data wp-config.php
  fi
fi

exec "$@"
