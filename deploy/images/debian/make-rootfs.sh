#!/usr/bin/env bash
# make-rootfs.sh DIR: a Debian 12 (bookworm) minbase root filesystem in DIR, ready to import as an image.
#
# What Docker's debian:bookworm-slim adds on top of debootstrap and the stand-ins rely on: the three
# suites in apt's sources, no daemons started by package scripts, and no apt caches in the layers.
# The host's CA bundle is added to the image's trust store because this machine reaches PyPI, npm
# and Debian through a TLS-inspecting proxy whose CA only the host trusts; without it `pip install`
# and `npm ci` inside the builds fail certificate verification.
set -euo pipefail
dir="$1"
mirror="http://deb.debian.org/debian"
debootstrap --variant=minbase --include=ca-certificates bookworm "$dir" "$mirror" >/dev/null
rm -f "$dir/etc/apt/sources.list"
cat >"$dir/etc/apt/sources.list.d/debian.sources" <<SOURCES
Types: deb
URIs: $mirror
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SOURCES
printf '#!/bin/sh\nexit 101\n' >"$dir/usr/sbin/policy-rc.d"
chmod 0755 "$dir/usr/sbin/policy-rc.d"
printf 'APT::Install-Recommends "false";\nAPT::Install-Suggests "false";\n' >"$dir/etc/apt/apt.conf.d/90no-recommends"
install -m 0644 /etc/ssl/certs/ca-certificates.crt "$dir/usr/local/share/ca-certificates/host-ca-bundle.crt"
chroot "$dir" update-ca-certificates >/dev/null
chroot "$dir" apt-get clean
rm -rf "$dir"/var/lib/apt/lists/* "$dir"/var/cache/apt/*.bin "$dir"/var/log/*.log "$dir"/tmp/*
