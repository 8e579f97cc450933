#!/usr/bin/env bash
# A clean Debian 12 root for the install and boot tests, debootstrapped once per build tree and
# kept as a tarball (target/deb12-minbase-systemd-dbus.tar): each test unpacks its own fresh copy.
#   bash tests/lib/deb12-root.sh DIR     -> DIR holds a pristine bookworm minbase with systemd
# It includes systemd, systemd-sysv and dbus so the same root can boot under systemd-nspawn.
# Exits 2 (and says why) when the root cannot be made: not root, no debootstrap, no mirror.
set -euo pipefail
cd "$(dirname "$0")/../.."
dest=$1
cache=target/deb12-minbase-systemd-dbus.tar   # (named after what it holds: change the name with the list)
[ "$(id -u)" = 0 ] || { echo "needs root (debootstrap, chroot)" >&2; exit 2; }
if [ ! -s "$cache" ]; then
  command -v debootstrap >/dev/null 2>&1 || { echo "debootstrap is not installed (apt-get install debootstrap)" >&2; exit 2; }
  work=$(mktemp -d /tmp/stationd-debootstrap.XXXXXX)
  if ! debootstrap --variant=minbase --include=systemd,systemd-sysv,dbus bookworm "$work" \
        http://deb.debian.org/debian > "$work.log" 2>&1; then
    tail -3 "$work.log" >&2; rm -rf "$work" "$work.log"
    echo "debootstrap of bookworm failed (no mirror?)" >&2; exit 2
  fi
  rm -f "$work.log"
  mkdir -p target
  tar -C "$work" -cf "$cache.part" . && mv "$cache.part" "$cache"
  rm -rf "$work"
fi
mkdir -p "$dest"
tar -C "$dest" -xf "$cache"
chmod 755 "$dest"   # the root's /: other users must traverse it
