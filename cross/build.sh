#!/usr/bin/env bash
# Release binaries for the station boxes (station build: no demo broker).
#   bash cross/build.sh                  # x86_64, aarch64, armv7 (glibc)
#   bash cross/build.sh aarch64          # one
#   bash cross/build.sh x86_64-musl aarch64-musl   # static binaries, for boxes with an old glibc
# Needs (installed here when run as root on Debian/Ubuntu):
#   aarch64, armv7: gcc-aarch64-linux-gnu libc6-dev-arm64-cross gcc-arm-linux-gnueabihf
#                   libc6-dev-armhf-cross qemu-user (linkers and qemu runners: .cargo/config.toml)
#   x86_64-musl:    musl-tools
#   aarch64-musl:   cargo-zigbuild and zig (pip install ziglang; cargo install --locked
#                   cargo-zigbuild): Debian has no aarch64 musl gcc
#   and the matching rustup targets (added here when missing).
# glibc binaries need glibc >= 2.34 on the box (Debian 12's toolchain); musl ones nothing.
set -euo pipefail
cd "$(dirname "$0")/.."

declare -A TRIPLE=([x86_64]=x86_64-unknown-linux-gnu [aarch64]=aarch64-unknown-linux-gnu
  [armv7]=armv7-unknown-linux-gnueabihf [x86_64-musl]=x86_64-unknown-linux-musl
  [aarch64-musl]=aarch64-unknown-linux-musl)
declare -A GCC=([aarch64]=aarch64-linux-gnu-gcc [armv7]=arm-linux-gnueabihf-gcc [x86_64-musl]=musl-gcc)
declare -A PKGS=([aarch64]="gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user"
  [armv7]="gcc-arm-linux-gnueabihf libc6-dev-armhf-cross qemu-user" [x86_64-musl]="musl-tools")
arches=("${@:-x86_64 aarch64 armv7}")
read -r -a arches <<< "${arches[*]}"

for a in "${arches[@]}"; do
  t=${TRIPLE[$a]:?unknown architecture $a (x86_64, aarch64, armv7, x86_64-musl, aarch64-musl)}
  if [ -n "${GCC[$a]:-}" ] && ! command -v "${GCC[$a]}" >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
      apt-get update -qq >/dev/null
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends ${PKGS[$a]} >/dev/null
    else
      echo "missing ${GCC[$a]}: apt-get install ${PKGS[$a]}" >&2; exit 1
    fi
  fi
  rustup target list --installed | grep -qx "$t" || rustup target add "$t"
  build=(cargo build)
  if [ "$a" = aarch64-musl ]; then
    command -v cargo-zigbuild >/dev/null 2>&1 && python3 -m ziglang version >/dev/null 2>&1 || {
      echo "aarch64-musl needs zig and cargo-zigbuild: pip install ziglang; cargo install --locked cargo-zigbuild" >&2; exit 1; }
    build=(cargo zigbuild)
  fi
  "${build[@]}" --release --locked --no-default-features --target "$t" --bin stationd
  bin=target/$t/release/stationd
  printf '%-13s %s  %s bytes\n' "$a" "$bin" "$(stat -c %s "$bin")"
done
