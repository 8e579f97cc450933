#!/usr/bin/env bash
# The README's "Install on a station box", followed on a clean Debian 12 root (called by
# tests/run.sh): debootstrap a minimal bookworm into a scratch directory, `apt-get install` the
# amd64 package in it (dependencies from Debian), then as the administrator would: check-config
# refuses the default config, names what is missing, accepts it once set; the daemon runs as
# the stationd user and reaches a broker; a technician in the stationd group sees `stationd
# status`, someone outside it is told how to get in.
#   bash tests/install.sh target/debian/stationd_0.1.0-1_amd64.deb
# Needs root (chroot), debootstrap and Debian's mirror; says so and skips when one is missing. The chroot
# shares the host's network namespace: the broker is a host mosquitto on a free loopback port.
set -euo pipefail
cd "$(dirname "$0")/.."
deb=$(realpath "$1")
skip() { echo "clean-install test NOT run: $*" >&2; exit 0; }
fail() { echo "clean-install test FAILED: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || skip "needs root for chroot"
# (tests/run.sh installs debootstrap; run alone: apt-get install debootstrap)
mosquitto=$(command -v mosquitto || echo /usr/sbin/mosquitto)

work=$(mktemp -d /tmp/stationd-deb12.XXXXXX)
root=$work/root
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  sleep 0.3
  umount "$root/proc" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
# A pristine bookworm minbase (debootstrapped once, shared with tests/boot.sh).
bash tests/lib/deb12-root.sh "$root" || skip "no Debian 12 root (see above)"
mount -t proc proc "$root/proc"
in_root() { chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root "$@"; }

# 1. Install: dependencies come from Debian; the user is created; nothing is started.
cp "$deb" "$root/tmp/"
in_root bash -c "export DEBIAN_FRONTEND=noninteractive; apt-get update -qq && apt-get install -y -qq /tmp/$(basename "$deb")" > "$root/install.log" 2>&1 \
  || { tail -20 "$root/install.log"; fail "apt-get install of the package"; }
grep -q "installed but not started" "$root/install.log" || fail "postinst did not say what to do next"
in_root getent passwd stationd > /dev/null || fail "no stationd user"
in_root id -nG stationd | grep -qw dialout || fail "stationd is not in dialout"
[ -z "$(ls "$root/etc/systemd/system/multi-user.target.wants/" 2>/dev/null | grep stationd)" ] || fail "the unit was enabled"

# On a box the postinst creates /var/lib/stationd with systemd-tmpfiles; it does that only
# when systemd is running, which it is not in this chroot.
in_root systemd-tmpfiles --create stationd.conf

# 2. The default config is refused until the station id is set, then the missing CA is named.
out=$(in_root stationd check-config 2>&1) && fail "check-config accepted the default config"
grep -q 'missing field `id`' <<< "$out" || fail "no clear error for the missing id: $out"
sed -i 's/^# id = "jn-szq-wd01"/id = "jn-szq-wd01"/' "$root/etc/stationd/stationd.toml"
out=$(in_root stationd check-config 2>&1) && fail "check-config accepted a config without the CA file"
grep -q 'uplink.ca_file: cannot read /etc/stationd/central-ca.pem' <<< "$out" || fail "no clear error for the CA file: $out"

# 3. Point it at a broker (plain MQTT here) and list a car, as the README says.
# A free loopback port: one nothing answers on (bash's /dev/tcp, no other tool needed).
port=
for _ in $(seq 100); do
  p=$(( 20000 + RANDOM % 40000 ))
  if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then port=$p; break; fi
done
[ -n "$port" ] || fail "no free loopback port"
printf 'listener %s 127.0.0.1\nallow_anonymous true\n' "$port" > "$root/mosquitto.conf"
"$mosquitto" -c "$root/mosquitto.conf" > /dev/null 2>&1 & pids+=($!)
sed -i "s#^brokers = .*#brokers = [\"mqtt://127.0.0.1:$port\"]#; /^ca_file/d" "$root/etc/stationd/stationd.toml"
cat >> "$root/etc/stationd/stationd.toml" <<'TOML'

[[device]]
id = "fleet"
[device.terminals]
"013912345678" = "car-03"
TOML
out=$(in_root stationd check-config 2>&1) || fail "check-config of the edited config: $out"
grep -q '^ok       profile    generic-x86-4com' <<< "$out" || fail "profile not found: $out"
grep -q '^ok       device     fleet jt808 tcp://0.0.0.0:7611 (1 terminal(s) listed)' <<< "$out" || fail "the car is not listed: $out"

# 4. Run it as systemd would (its user, groups and runtime directory), then look as a technician.
install -d -o "$(in_root id -u stationd)" -g "$(in_root id -g stationd)" -m 0750 "$root/run/stationd"
(umask 0027; exec chroot "$root" /usr/sbin/runuser -u stationd -- /usr/bin/env -i PATH=/usr/bin:/bin \
  RUNTIME_DIRECTORY=/run/stationd stationd run) > "$root/daemon.log" 2>&1 & pids+=($!)
in_root useradd -m -G stationd tech
in_root useradd -m outsider
for _ in $(seq 50); do
  in_root runuser -u tech -- stationd status 2>/dev/null | grep -q "connected to mqtt://127.0.0.1:$port" && break
  sleep 0.2
done
status=$(in_root runuser -u tech -- stationd status 2>&1) || { cat "$root/daemon.log"; fail "stationd status as a technician: $status"; }
grep -q "connected to mqtt://127.0.0.1:$port" <<< "$status" || { cat "$root/daemon.log"; fail "not connected: $status"; }
in_root runuser -u tech -- stationd devices | grep -q '^fleet *jt808 *listening' || fail "devices"
set +e
denied=$(in_root runuser -u outsider -- stationd status 2>&1); code=$?
set -e
[ "$code" = 77 ] && grep -q "usermod -aG stationd" <<< "$denied" || fail "outsider: exit $code: $denied"
owner=$(in_root stat -c '%U %a' /var/lib/stationd/outbox.db)
[ "$owner" = "stationd 640" ] || fail "outbox owner/mode: $owner"

# 5. The udev rules, the shipped ones and those generated for this station, through udev's own
# checker: `udevadm verify` needs systemd >= 254, which bookworm has in backports (installed in
# the chroot only).
echo "deb http://deb.debian.org/debian bookworm-backports main" > "$root/etc/apt/sources.list.d/backports.list"
if in_root bash -c 'export DEBIAN_FRONTEND=noninteractive; apt-get update -qq && apt-get install -y -qq -t bookworm-backports udev' > "$root/udev.log" 2>&1 \
   && in_root udevadm verify --help > /dev/null 2>&1; then
  in_root stationd udev-rules > "$root/tmp/61-stationd-local.rules" || fail "stationd udev-rules for the station"
  in_root udevadm verify /usr/lib/udev/rules.d/60-stationd.rules /tmp/61-stationd-local.rules > "$root/verify.log" 2>&1 \
    || { cat "$root/verify.log"; fail "udevadm verify"; }
  echo "udev rules (shipped and generated): udevadm $(in_root udevadm --version) verify ok"
else
  echo "udevadm verify NOT run: udev >= 254 from bookworm-backports could not be installed in the chroot" >&2
fi
echo "clean Debian 12 install: apt-get install, check-config (id, CA), run as stationd, status as a group member (and refused outside it): ok"
