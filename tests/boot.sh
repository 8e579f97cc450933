#!/usr/bin/env bash
# The packaged unit under a real systemd (PID 1 in a container), checked from outside: a clean
# Debian 12 root boots with systemd-nspawn, the .deb is installed in it with dpkg while systemd
# runs (so its postinst does what it does on a box), and then, as an administrator would see it:
#   1. `systemctl start` returns once the daemon sent READY=1; the unit is active (running),
#      runs as stationd with no capabilities, NoNewPrivs and a seccomp filter;
#   2. `systemctl status` shows the STATUS= line, and it follows the uplink (connected, down
#      when the broker goes away, connected when it is back: each within seconds, not on the
#      next watchdog tick);
#   3. the envelope's `clock` agrees with the kernel's real sync state, both ways (the host's
#      flag is set with tests/lib/kernel-clock.c; the container shares the kernel), and
#      `stationd check` inside says the same;
#   3b. under the unit's hardening (ProcSubset=pid, RestrictAddressFamilies, …) /metrics on
#      loopback parses with Prometheus's own client and has the process figures, and the status
#      page answers with its token and refuses without it;
#   4. the sandbox holds: in the daemon's own mount namespace, as its user, nothing outside
#      /var/lib/stationd and /run/stationd can be written;
#   5. `systemctl reload` (ExecReload=) applies a valid change in the same process and fails on
#      an invalid file, keeping the running configuration; SIGHUP reloads too; SIGABRT gets
#      the daemon restarted by systemd;
#   6. `systemctl stop` publishes the retained clean `offline`.
#   bash tests/boot.sh target/debian/stationd_0.1.0-1_amd64.deb
# Needs root, systemd-nspawn (systemd-container), debootstrap and Debian's mirror (for the root,
# made once by tests/lib/deb12-root.sh), a C compiler, mosquitto, mosquitto_sub and curl. Says what is
# missing and skips when it cannot run; FAILS when a check does not hold. The container shares
# the host's network namespace: the broker is a host mosquitto on a free loopback port.
set -euo pipefail
cd "$(dirname "$0")/.."
deb=$(realpath "$1")
skip() { echo "boot test NOT run: $*" >&2; exit 0; }
fail() { echo "boot test FAILED: $*" >&2; dump; exit 1; }
ok() { echo "  ok  $*"; }
[ "$(id -u)" = 0 ] || skip "needs root (systemd-nspawn)"
command -v systemd-nspawn >/dev/null 2>&1 || skip "systemd-nspawn is not installed (apt-get install systemd-container)"
command -v mosquitto_sub >/dev/null 2>&1 || skip "mosquitto_sub is not installed (apt-get install mosquitto-clients)"
command -v cc >/dev/null 2>&1 || skip "no C compiler for tests/lib/kernel-clock.c (apt-get install gcc)"
mosquitto=$(command -v mosquitto || echo /usr/sbin/mosquitto)

work=$(mktemp -d /tmp/stationd-boot.XXXXXX)
root=$work/root
pids=()
nspawn=
clock_saved=
dump() {
  [ -n "${cpid:-}" ] || return 0
  echo "--- journal of stationd in the container ---" >&2
  in_ct journalctl -u stationd --no-pager -n 40 -o short-monotonic >&2 2>/dev/null || true
  echo "--- what central received ---" >&2
  tail -5 "$work/central.log" >&2 || true
}
cleanup() {
  [ -n "$clock_saved" ] && "$work/kernel-clock" status "$clock_saved" 2>/dev/null || true
  if [ -n "$nspawn" ] && kill -0 "$nspawn" 2>/dev/null; then
    [ -n "${cpid:-}" ] && in_ct systemctl poweroff --no-block >/dev/null 2>&1 || true
    for _ in $(seq 100); do kill -0 "$nspawn" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$nspawn" 2>/dev/null || true
  fi
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

bash tests/lib/deb12-root.sh "$root" || skip "no Debian 12 root (see above)"
cc -O -Wall -o "$work/kernel-clock" tests/lib/kernel-clock.c
clock_saved=$("$work/kernel-clock" get | cut -d' ' -f2)

# A free loopback port: one nothing answers on.
free_port() {
  local p
  for _ in $(seq 100); do
    p=$(( 20000 + RANDOM % 40000 ))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return; fi
  done
  fail "no free loopback port"
}
port=$(free_port)
ingest=$(free_port)
metrics=$(free_port)
page=$(free_port)
page_token=boot-token-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')
printf 'listener %s 127.0.0.1\nallow_anonymous true\n' "$port" > "$work/mosquitto.conf"
P=stations/jn-szq-boot
broker=
# Starts the broker and central's subscriber (which ends with the broker).
start_broker() {
  "$mosquitto" -c "$work/mosquitto.conf" >> "$work/mosquitto.log" 2>&1 & broker=$!; pids+=($broker)
  for _ in $(seq 50); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
  stdbuf -oL mosquitto_sub -h 127.0.0.1 -p "$port" -t "$P/#" -v >> "$work/central.log" 2>/dev/null & pids+=($!)
}
start_broker

# --- boot ------------------------------------------------------------------------------------
# nspawn's own seccomp filter refuses adjtimex; let the container ask, so that what the unit
# allows is what is tested (a box has no nspawn around it).
systemd-nspawn -q -D "$root" --boot --register=no --keep-unit --console=pipe \
  --machine=stationd-boot --system-call-filter='adjtimex clock_adjtime clock_adjtime64' \
  < /dev/null > "$work/console.log" 2>&1 & nspawn=$!
cpid=
for _ in $(seq 100); do
  for c in $(cat /proc/"$nspawn"/task/*/children 2>/dev/null); do
    [ "$(cat /proc/"$c"/comm 2>/dev/null)" = systemd ] && cpid=$c
  done
  [ -n "$cpid" ] && break
  kill -0 "$nspawn" 2>/dev/null || { cat "$work/console.log" >&2; skip "systemd-nspawn could not boot a container here"; }
  sleep 0.1
done
[ -n "$cpid" ] || { cat "$work/console.log" >&2; skip "no systemd came up in the container within 10 s"; }
in_ct() { nsenter -t "$cpid" -a /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 "$@"; }
# Until PID 1 has its socket, systemctl cannot connect: ask again.
state=
for _ in $(seq 60); do
  state=$(timeout 60 nsenter -t "$cpid" -a systemctl is-system-running --wait 2>&1 || true)
  case "$state" in *"Failed to connect"*|"") sleep 0.5 ;; *) break ;; esac
done
case "$state" in
  running|degraded) ok "systemd $(in_ct systemctl --version | sed -n '1s/systemd \([0-9]*\).*/\1/p') booted as PID 1 in the container ($state)" ;;
  *) cat "$work/console.log" >&2; skip "the container's systemd did not finish booting: $state" ;;
esac

# --- install as on a box ---------------------------------------------------------------------
cp "$deb" "$root/root/stationd.deb"   # (the container mounts its own /tmp)
in_ct dpkg -i /root/stationd.deb > "$work/dpkg.log" 2>&1 || { cat "$work/dpkg.log" >&2; fail "dpkg -i of the package under systemd"; }
in_ct getent passwd stationd > /dev/null || fail "the package did not create the stationd user"
conf=$root/etc/stationd/stationd.toml
sed -i 's/^# id = "jn-szq-wd01"/id = "jn-szq-boot"/' "$conf"
sed -i "s#^brokers = .*#brokers = [\"mqtt://127.0.0.1:$port\"]\nreconnect_max_ms = 2000#; /^ca_file/d" "$conf"
cat >> "$conf" <<TOML

[[device]]
id = "ingest0"
driver = "jsonl"
listen = "tcp://127.0.0.1:$ingest"

[metrics]
listen = "127.0.0.1:$metrics"

[status_page]
listen = "127.0.0.1:$page"
token = "$page_token"
TOML
in_ct stationd check-config > "$work/check-config.log" 2>&1 || { cat "$work/check-config.log" >&2; fail "check-config"; }

# --- 1. start: READY=1, running, as stationd, confined ---------------------------------------
prop() { in_ct systemctl show stationd -p "$1" --value; }
timeout 90 nsenter -t "$cpid" -a systemctl start stationd || fail "systemctl start stationd (no READY=1?)"
[ "$(prop ActiveState)/$(prop SubState)" = active/running ] || fail "not active (running): $(prop ActiveState)/$(prop SubState)"
ok "systemctl start returned after READY=1: active (running)"
pid=$(prop MainPID)
uid=$(in_ct id -u stationd)
st=$(in_ct cat "/proc/$pid/status")
grep -Eq "^Uid:\s+$uid\s" <<< "$st" || fail "the daemon does not run as stationd ($uid): $(grep ^Uid <<< "$st")"
grep -Eq '^CapEff:\s+0+$' <<< "$st" || fail "the daemon has capabilities: $(grep ^CapEff <<< "$st")"
grep -Eq '^NoNewPrivs:\s+1$' <<< "$st" || fail "NoNewPrivs is not set"
grep -Eq '^Seccomp:\s+2$' <<< "$st" || fail "no seccomp filter on the daemon"
ok "runs as stationd (uid $uid), no capabilities, NoNewPrivs, seccomp filter"

# --- 2. STATUS= follows the uplink -----------------------------------------------------------
connected=
for _ in $(seq 25); do
  case "$(prop StatusText)" in "connected to mqtt://127.0.0.1:$port"*) connected=yes; break ;; esac
  sleep 0.2
done
[ -n "$connected" ] || fail "STATUS= did not say connected within 5 s of READY=1 (it says: $(prop StatusText))"
in_ct systemctl status stationd --no-pager > "$work/status.txt" 2>&1 || true
grep -q "Status: \"connected to mqtt://127.0.0.1:$port" "$work/status.txt" || { cat "$work/status.txt" >&2; fail "systemctl status does not show the STATUS= line"; }
ok "systemctl status: $(grep -o 'Status: .*' "$work/status.txt")"
# The broker goes away and comes back: STATUS= says so within seconds each time.
status_becomes() { # prefix, seconds
  for _ in $(seq $(( $2 * 5 ))); do
    case "$(prop StatusText)" in "$1"*) return 0 ;; esac
    sleep 0.2
  done
  return 1
}
kill "$broker"; wait "$broker" 2>/dev/null || true
status_becomes "uplink down, buffering in the outbox" 3 || fail "3 s after the broker went away STATUS= still says: $(prop StatusText)"
ok "broker gone -> within 3 s: $(prop StatusText | cut -c1-70)"
start_broker
status_becomes "connected to mqtt://127.0.0.1:$port" 5 || fail "5 s after the broker came back STATUS= still says: $(prop StatusText)"
ok "broker back -> within 5 s: $(prop StatusText | cut -c1-70)"

# --- 3. the clock tag follows the kernel's sync state ----------------------------------------
send_line() { # kind
  exec 4<>"/dev/tcp/127.0.0.1/$ingest" || fail "cannot reach the jsonl input on port $ingest"
  printf '{"kind":"%s","data":{}}\n' "$1" >&4
  exec 4>&-
}
clock_of() { # kind -> the clock field of its envelope, once it arrived
  local line
  for _ in $(seq 50); do
    line=$(grep -F "\"kind\":\"$1\"" "$work/central.log" | head -1)
    [ -n "$line" ] && { sed -n 's/.*"clock":"\([a-z_]*\)".*/\1/p' <<< "$line"; return; }
    sleep 0.1
  done
  fail "the event $1 did not reach central"
}
check_clock() { in_ct stationd check 2>/dev/null | awk '$2 == "clock" { print $1 }'; }
for want in synced unsynced; do
  "$work/kernel-clock" "$want"
  [ "$("$work/kernel-clock" get | cut -d' ' -f1)" = "$want" ] || fail "could not make the kernel's clock $want (is an NTP daemon running on this machine?)"
  sleep 1.2   # the daemon reads the state at most once a second
  send_line "boot.clock_$want"
  got=$(clock_of "boot.clock_$want")
  [ "$got" = "$want" ] || fail "kernel clock $want, but the envelope says clock: $got"
  case "$want:$(check_clock)" in
    synced:ok|unsynced:warning) ;;
    *) fail "stationd check in the container disagrees with the kernel ($want): $(in_ct stationd check 2>&1 | grep clock)" ;;
  esac
  ok "kernel clock $want -> envelope clock: \"$got\", stationd check: $(check_clock)"
done
"$work/kernel-clock" status "$clock_saved"

# --- 3b. /metrics and the status page under the unit ----------------------------------------
scrape=$(curl -sf --max-time 5 -H 'Accept: application/openmetrics-text; version=1.0.0' "http://127.0.0.1:$metrics/metrics") \
  || fail "no /metrics on 127.0.0.1:$metrics under the unit"
if /usr/bin/python3 -c 'import prometheus_client' 2>/dev/null; then
  parsed=$(/usr/bin/python3 tests/lib/prom_parse.py openmetrics <<< "$scrape") || fail "/metrics under the unit is not valid OpenMetrics"
  for want in '"stationd_uplink_connected", {}, 1.0' '"process_open_fds"' '"process_start_time_seconds"' '"process_resident_memory_bytes"' '"stationd_device_state", {"device": "ingest0"'; do
    grep -qF "$want" <<< "$parsed" || fail "/metrics under the unit lacks $want"
  done
  ok "/metrics under the unit: valid OpenMetrics ($(grep -o '\["' <<< "$parsed" | wc -l) samples), connected, process figures (ProcSubset=pid)"
else
  echo "boot test: python3-prometheus-client missing, /metrics fetched but not parsed" >&2
fi
code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "http://127.0.0.1:$page/api/status")
[ "$code" = 401 ] || fail "the status page without its token answered $code, not 401"
curl -sf --max-time 5 -H "Authorization: Bearer $page_token" "http://127.0.0.1:$page/api/status" | grep -q '"station":"jn-szq-boot"' \
  || fail "the status page with its token did not show the station"
ok "status page under the unit: 401 without the token, the station with it"

# --- 4. the sandbox holds --------------------------------------------------------------------
gid=$(in_ct id -g stationd)
as_daemon() { in_ct nsenter -t "$pid" -m -S "$uid" -G "$gid" "$@"; }
as_daemon sh -c 'touch /var/lib/stationd/.boot-probe && rm /var/lib/stationd/.boot-probe' || fail "the daemon cannot write its state directory"
as_daemon sh -c 'touch /run/stationd/.boot-probe && rm /run/stationd/.boot-probe' || fail "the daemon cannot write its runtime directory"
for target in /etc/stationd /usr/bin /var/lib /var/log /opt /root /home; do
  if as_daemon sh -c "touch $target/.boot-probe" 2>/dev/null; then
    as_daemon rm -f "$target/.boot-probe" 2>/dev/null || true
    fail "the daemon can write $target"
  fi
done
ok "in its namespace, as stationd: writes /var/lib/stationd and /run/stationd; not /etc/stationd /usr/bin /var/lib /var/log /opt /root /home"

# --- 5. reload and signals --------------------------------------------------------------------
restarts=$(prop NRestarts)
added=$(free_port)
cp "$conf" "$work/stationd.toml.good"
cat >> "$conf" <<TOML

[[device]]
id = "ingest9"
driver = "jsonl"
listen = "tcp://127.0.0.1:$added"
TOML
timeout 60 nsenter -t "$cpid" -a systemctl reload stationd || fail "systemctl reload (ExecReload=stationd reload) failed on a valid change"
(exec 3<>"/dev/tcp/127.0.0.1/$added") 2>/dev/null || fail "after systemctl reload the added input does not listen on $added"
[ "$(prop MainPID)" = "$pid" ] && [ "$(prop NRestarts)" = "$restarts" ] || fail "systemctl reload restarted the daemon"
in_ct journalctl -u stationd --no-pager -o cat | grep -q "configuration reloaded" || fail "the reload was not logged"
ok "systemctl reload: the added input listens, same process, no restart"
sed -i 's/^driver = "jsonl"$/driver = "jsonl"\nlisten_typo = 1/' "$conf"
if timeout 60 nsenter -t "$cpid" -a systemctl reload stationd 2>/dev/null; then fail "systemctl reload succeeded on an invalid file"; fi
[ "$(prop MainPID)" = "$pid" ] && [ "$(prop ActiveState)" = active ] || fail "an invalid reload stopped the daemon ($(prop ActiveState))"
(exec 3<>"/dev/tcp/127.0.0.1/$added") 2>/dev/null || fail "an invalid reload took the running configuration's input away"
in_ct journalctl -u stationd --no-pager -o cat | grep -q "listen_typo" || fail "the rejected reload's reason is not in the journal"
ok "systemctl reload of an invalid file: fails with the reason in the journal, the running configuration stays"
cp "$work/stationd.toml.good" "$conf"
in_ct systemctl kill -s HUP --kill-whom=main stationd
sleep 1
[ "$(prop MainPID)" = "$pid" ] && [ "$(prop ActiveState)" = active ] && [ "$(prop NRestarts)" = "$restarts" ] \
  || fail "SIGHUP: the daemon did not survive it (MainPID $(prop MainPID), was $pid; restarts $(prop NRestarts))"
in_ct journalctl -u stationd --no-pager -o cat | grep -q "SIGHUP: reloading the configuration" || fail "SIGHUP was not logged"
for _ in $(seq 50); do (exec 3<>"/dev/tcp/127.0.0.1/$added") 2>/dev/null || break; sleep 0.1; done
(exec 3<>"/dev/tcp/127.0.0.1/$added") 2>/dev/null && fail "SIGHUP with the input removed from the file: it still listens"
ok "SIGHUP: reloaded (the removed input stopped), same process, no restart"
in_ct systemctl kill -s ABRT --kill-whom=main stationd
restarted=
for _ in $(seq 100); do
  if [ "$(prop NRestarts)" -gt "$restarts" ] && [ "$(prop ActiveState)/$(prop SubState)" = active/running ]; then restarted=yes; break; fi
  sleep 0.2
done
[ -n "$restarted" ] || fail "SIGABRT: systemd did not restart the daemon ($(prop ActiveState)/$(prop SubState), restarts $(prop NRestarts))"
[ "$(prop MainPID)" != "$pid" ] || fail "SIGABRT: same MainPID"
ok "SIGABRT: systemd restarted it (NRestarts $restarts -> $(prop NRestarts)), active (running) again"

# --- 6. a clean stop says offline ------------------------------------------------------------
in_ct systemctl stop stationd
[ "$(prop Result)" = success ] || fail "systemctl stop: result $(prop Result)"
status=$(timeout 5 mosquitto_sub -h 127.0.0.1 -p "$port" -t "$P/status" -C 1 2>/dev/null || true)
grep -q '"state":"offline"' <<< "$status" && grep -q '"reason":"shutdown"' <<< "$status" \
  || fail "the retained status after systemctl stop is not the clean offline: $status"
ok "systemctl stop: exit success, retained status $(grep -o '"state":"offline"[^}]*' <<< "$status" | cut -c1-60)"
echo "the unit under systemd $(in_ct systemctl --version | sed -n '1s/systemd \([0-9]*\).*/\1/p') in a booted Debian 12 container: all checks held"
