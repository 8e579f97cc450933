#!/usr/bin/env bash
# Checks the .deb packages as an administrator would meet them (called by tests/run.sh):
#   bash tests/package.sh amd64 arm64
# For each: dpkg-deb --info/--contents, the maintainer scripts, an install into a scratch root
# (dpkg --root, maintainer scripts run outside a chroot with DPKG_ROOT, so the postinst's
# systemd-sysusers creates the user in the scratch root's /etc/passwd, not the host's), and the
# installed binary run (natively, or under qemu-user) on the installed profiles and config.
set -euo pipefail
cd "$(dirname "$0")/.."

declare -A MACHINE=([amd64]="X86-64" [arm64]="AArch64" [armhf]="ARM")
declare -A QEMU=([arm64]="qemu-aarch64 -L /usr/aarch64-linux-gnu" [armhf]="qemu-arm -L /usr/arm-linux-gnueabihf")
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
fail() { echo "package check FAILED ($1): $2" >&2; exit 1; }
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

for arch in "$@"; do
  deb=target/debian/stationd_${version}-1_${arch}.deb
  [ -f "$deb" ] || fail "$arch" "$deb not built (bash cross/package.sh $arch)"
  echo "--- $deb ($(stat -c %s "$deb") bytes)"
  info=$(dpkg-deb --info "$deb")
  grep -q "^ Architecture: $arch$" <<< "$info" || fail "$arch" "control says another architecture"
  grep -q "^ Depends: libc6 (>= 2.34), systemd$" <<< "$info" || fail "$arch" "Depends: changed"
  [ "$(dpkg-deb --field "$deb" Package)" = stationd ] || fail "$arch" "package name"
  contents=$(dpkg-deb --contents "$deb" | awk '{print $NF}')
  for f in ./usr/bin/stationd ./usr/lib/systemd/system/stationd.service \
           ./usr/lib/sysusers.d/stationd.conf ./usr/lib/tmpfiles.d/stationd.conf \
           ./usr/lib/udev/rules.d/60-stationd.rules ./etc/stationd/stationd.toml \
           ./usr/share/stationd/hw-profiles/generic-x86-4com.toml \
           ./usr/share/stationd/hw-profiles/aarch64-gateway.toml \
           ./usr/share/stationd/hw-profiles/armv7-box.toml ./usr/share/stationd/hw-profiles/sim.toml \
           ./usr/share/doc/stationd/copyright ./usr/share/doc/stationd/docs/OPERATIONS.md; do
    grep -qx -- "$f" <<< "$contents" || fail "$arch" "$f is not in the package"
  done
  ctl="$scratch/$arch-control"
  dpkg-deb --control "$deb" "$ctl"
  [ "$(cat "$ctl/conffiles")" = /etc/stationd/stationd.toml ] || fail "$arch" "the default config is not (the only) conffile"
  grep -q 'systemd-sysusers' "$ctl/postinst" || fail "$arch" "postinst does not create the user"
  # Never started or enabled on install: the default config has no station id.
  grep -q 'deb-systemd-invoke start\|_dh_action=start' "$ctl/postinst" && fail "$arch" "postinst starts the daemon on install"

  # Install into a scratch root: with the maintainer scripts as root, unpacked only otherwise.
  root="$scratch/$arch-root"
  if [ "$(id -u)" = 0 ]; then
    mkdir -p "$root/var/lib/dpkg/info" "$root/var/lib/dpkg/updates" "$root/etc"
    : > "$root/var/lib/dpkg/status"
    printf 'root:x:0:0:root:/root:/bin/sh\n' > "$root/etc/passwd"
    printf 'root:x:0:\ndialout:x:20:\n' > "$root/etc/group"
    dpkg --root="$root" --force-script-chrootless --force-depends --force-architecture \
         --log=/dev/null -i "$deb" > "$scratch/$arch-install.log" 2>&1 \
      || { cat "$scratch/$arch-install.log"; fail "$arch" "dpkg --root -i failed"; }
    grep -q "^Status: install ok installed" <(dpkg --root="$root" -s stationd) || fail "$arch" "not installed"
    grep -q '^stationd:x:[0-9]*:[0-9]*:.*:/var/lib/stationd:' "$root/etc/passwd" || fail "$arch" "postinst did not create the stationd user"
    grep -q '^dialout:x:20:stationd$' "$root/etc/group" || fail "$arch" "stationd is not in dialout"
    [ ! -e "$root/etc/systemd/system/multi-user.target.wants/stationd.service" ] || fail "$arch" "the unit was enabled on install"
    grep -q "installed but not started" "$scratch/$arch-install.log" || fail "$arch" "postinst does not say what to do next"
  else
    echo "($arch: not root, so dpkg --root with maintainer scripts was NOT run; unpacked with dpkg -x)" >&2
    dpkg -x "$deb" "$root"
  fi

  # The installed binary, on the installed files.
  bin="$root/usr/bin/stationd"
  readelf -h "$bin" | grep -q "Machine:.*${MACHINE[$arch]}" || fail "$arch" "binary is not for ${MACHINE[$arch]}"
  run=(); [ -n "${QEMU[$arch]:-}" ] && read -r -a run <<< "${QEMU[$arch]}"
  if [ ${#run[@]} -gt 0 ] && ! command -v "${run[0]}" >/dev/null 2>&1; then
    echo "($arch binary not run: ${run[0]} missing)"; continue
  fi
  "${run[@]}" "$bin" --version | grep -q "stationd $version" || fail "$arch" "--version"
  if "${run[@]}" "$bin" help 2>&1 | grep -q '^  demo'; then fail "$arch" "the package carries the demo"; fi
  for p in "$root"/usr/share/stationd/hw-profiles/*.toml; do
    "${run[@]}" "$bin" check-config --profile "$p" > /dev/null || fail "$arch" "profile $p does not check"
  done
  # The default config refuses to run until the administrator sets the station id…
  cfg="$root/etc/stationd/stationd.toml"
  if "${run[@]}" "$bin" check-config --config "$cfg" --profile-dir "$root/usr/share/stationd/hw-profiles" 2> "$scratch/err"; then
    fail "$arch" "the default config passes check-config without a station id"
  fi
  grep -q "missing field \`id\`" "$scratch/err" || { cat "$scratch/err"; fail "$arch" "no clear error for the missing id"; }
  # …and checks once it is set (outbox moved to the scratch root: /var/lib/stationd is not here).
  sed 's/^# id = "jn-szq-wd01"/id = "jn-szq-wd01"/; s#mqtts://central.invalid:8883#mqtt://127.0.0.1:1883#; /^ca_file/d' "$cfg" > "$scratch/$arch.toml"
  printf '\n[buffer]\npath = "%s/outbox.db"\n' "$root" >> "$scratch/$arch.toml"
  "${run[@]}" "$bin" check-config --config "$scratch/$arch.toml" --profile-dir "$root/usr/share/stationd/hw-profiles" > "$scratch/ok" \
    || fail "$arch" "the default config with an id does not check"
  grep -q '^ok       profile    generic-x86-4com' "$scratch/ok" || fail "$arch" "profile not resolved from the installed profiles"
  if [ "$(id -u)" = 0 ]; then how="postinst (user created, not started), scratch-root install"; else how="unpacked"; fi
  echo "$arch: contents, conffile, $how and binary: ok"
done
