#!/usr/bin/env bash
# Release binaries for the station boxes: x86_64, aarch64 and armv7 Linux (glibc).
#   bash cross/build.sh            # all three, station build (no demo broker)
#   bash cross/build.sh aarch64    # one
# Needs (installed here when run as root on Debian/Ubuntu):
#   gcc-aarch64-linux-gnu libc6-dev-arm64-cross gcc-arm-linux-gnueabihf libc6-dev-armhf-cross qemu-user
#   rustup targets aarch64-unknown-linux-gnu armv7-unknown-linux-gnueabihf
# Linkers and qemu runners are set in .cargo/config.toml. Binaries need glibc >= 2.34 on the box
# (Debian 12's toolchain); see cross/README.md for older boxes.
set -euo pipefail
cd "$(dirname "$0")/.."

declare -A TRIPLE=([x86_64]=x86_64-unknown-linux-gnu [aarch64]=aarch64-unknown-linux-gnu [armv7]=armv7-unknown-linux-gnueabihf)
declare -A GCC=([aarch64]=aarch64-linux-gnu-gcc [armv7]=arm-linux-gnueabihf-gcc)
declare -A PKGS=([aarch64]="gcc-aarch64-linux-gnu libc6-dev-arm64-cross" [armv7]="gcc-arm-linux-gnueabihf libc6-dev-armhf-cross")
arches=("${@:-x86_64 aarch64 armv7}")
read -r -a arches <<< "${arches[*]}"

for a in "${arches[@]}"; do
  t=${TRIPLE[$a]:?unknown architecture $a (x86_64, aarch64, armv7)}
  if [ -n "${GCC[$a]:-}" ] && ! command -v "${GCC[$a]}" >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends ${PKGS[$a]} qemu-user >/dev/null
    else
      echo "missing ${GCC[$a]}: apt-get install ${PKGS[$a]} qemu-user" >&2; exit 1
    fi
  fi
  rustup target list --installed | grep -qx "$t" || rustup target add "$t"
  # The station build leaves the demo's embedded broker out.
  cargo build --release --locked --no-default-features --target "$t" --bin stationd
  bin=target/$t/release/stationd
  printf '%-8s %s  %s bytes\n' "$a" "$bin" "$(stat -c %s "$bin")"
done
