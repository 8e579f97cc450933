#!/usr/bin/env bash
# .deb packages for the station boxes, one per architecture, with cargo-deb:
#   bash cross/package.sh                 # amd64 arm64 armhf
#   bash cross/package.sh arm64           # one
# Output: target/debian/stationd_<version>-1_<arch>.deb. What goes in and why: Cargo.toml
# [package.metadata.deb] and docs/OPERATIONS.md. Binaries come from cross/build.sh (station
# build, no demo broker); cargo-deb (`cargo install --locked cargo-deb`, installed here when
# missing) only packs them.
set -euo pipefail
cd "$(dirname "$0")/.."

declare -A ARCH=([amd64]=x86_64 [arm64]=aarch64 [armhf]=armv7)
declare -A TRIPLE=([amd64]=x86_64-unknown-linux-gnu [arm64]=aarch64-unknown-linux-gnu [armhf]=armv7-unknown-linux-gnueabihf)
debs=("${@:-amd64 arm64 armhf}")
read -r -a debs <<< "${debs[*]}"

if ! cargo deb --version >/dev/null 2>&1; then
  echo "installing cargo-deb (cargo install --locked cargo-deb)" >&2
  cargo install --locked --quiet cargo-deb --version '^3.8'
fi
mkdir -p target/debian
for d in "${debs[@]}"; do
  t=${TRIPLE[$d]:?unknown Debian architecture $d (amd64, arm64, armhf)}
  bash cross/build.sh "${ARCH[$d]}" >/dev/null
  # --no-build: the binary cross/build.sh just made (same profile, no default features).
  out=$(cargo deb --no-build --no-strip --target "$t" --output target/debian/ 2>&1 | tail -n 1)
  case "$out" in
    *.deb) printf '%-6s %s  %s bytes\n' "$d" "$out" "$(stat -c %s "$out")" ;;
    *) echo "cargo deb failed for $d: $out" >&2; exit 1 ;;
  esac
done
