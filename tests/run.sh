#!/usr/bin/env bash
# The whole test suite, from a fresh Debian/Ubuntu box: installs what the tests need where it
# can (mosquitto from the distribution, rustfmt/clippy through rustup), says what is missing
# where it cannot, then runs formatting, lints, config checks of the shipped examples, and every
# test. Usage: bash tests/run.sh
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '==> %s\n' "$*"; }
apt_updated=no
# Installs Debian packages as root (apt-get update once); fails quietly otherwise.
apt_install() {
  [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 || return 1
  if [ "$apt_updated" = no ]; then apt-get update -qq >/dev/null 2>&1 || true; apt_updated=yes; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null 2>&1
}
missing=()

# --- what the tests need -------------------------------------------------------------------
if ! command -v cargo >/dev/null 2>&1; then
  missing+=("a Rust toolchain (https://rustup.rs: curl ... | sh, then 'rustup default stable')")
fi
have_mosquitto() { command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ]; }
if ! have_mosquitto; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    say "installing mosquitto (the tests start their own brokers on free loopback ports)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends mosquitto >/dev/null
  elif command -v sudo >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
    say "installing mosquitto with sudo"
    sudo DEBIAN_FRONTEND=noninteractive apt-get update -qq
    sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends mosquitto >/dev/null
  fi
  have_mosquitto || missing+=("mosquitto (apt-get install mosquitto)")
fi
if [ ${#missing[@]} -gt 0 ]; then
  printf 'cannot run the tests; missing:\n' >&2
  printf '  - %s\n' "${missing[@]}" >&2
  exit 1
fi
# nginx (its WebDAV PUT) is the upload server of the footage tests, started by each test on a
# free loopback port. Installed without starting the distribution's own service.
have_nginx() { command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ]; }
if ! have_nginx && [ "$(id -u)" = 0 ]; then
  say "installing nginx (the footage upload tests run their own on a loopback port)"
  no_start=no
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && no_start=yes
  fi
  apt_install nginx-core || apt_install nginx || true
  [ "$no_start" = yes ] && rm -f /usr/sbin/policy-rc.d
fi
have_nginx || echo "nginx is missing (apt-get install nginx-core): the footage upload test will fail" >&2
# GStreamer's RTSP server (driven from Debian's python3-gi) is the camera of tests/camera.rs and
# central's media server (RECORD mode; rtsps through glib-networking); openh264 (plugins-bad)
# decodes what it recorded.
have_gst_rtsp() { /usr/bin/python3 -c 'import gi; gi.require_version("GstRtspServer", "1.0"); from gi.repository import GstRtspServer' >/dev/null 2>&1 && [ -n "$(ls /usr/lib/*/gstreamer-1.0/libgstx264.so /usr/lib/*/gstreamer-1.0/libgstopenh264.so /usr/lib/*/gio/modules/libgiognutls.so 2>/dev/null | wc -l | grep -x 3)" ]; }
if ! have_gst_rtsp && [ "$(id -u)" = 0 ]; then
  say "installing GStreamer's RTSP server and plugins (the camera tests run their own on a loopback port)"
  apt_install python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-ugly gstreamer1.0-plugins-bad glib-networking || true
fi
have_gst_rtsp || echo "GStreamer's RTSP server is missing (apt-get install python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-ugly): the camera test will fail" >&2
# GStreamer scans its plugins into a registry cache on first use (seconds on a fresh box): do it
# once here, not inside the first camera test's time limits.
have_gst_rtsp && /usr/bin/python3 -c 'import gi; gi.require_version("Gst", "1.0"); from gi.repository import Gst; Gst.init(None); Gst.ElementFactory.find("x264enc")' >/dev/null 2>&1 || true
# lighttpd (Digest authentication) is the camera's snapshot URL in tests/camera.rs.
have_lighttpd() { [ -x /usr/sbin/lighttpd ]; }
if ! have_lighttpd && [ "$(id -u)" = 0 ]; then
  say "installing lighttpd (the snapshot test runs its own on a loopback port)"
  no_start=no
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && no_start=yes
  fi
  apt_install lighttpd || true
  [ "$no_start" = yes ] && rm -f /usr/sbin/policy-rc.d
fi
have_lighttpd || echo "lighttpd is missing (apt-get install lighttpd): the camera snapshot test will fail" >&2
# Prometheus's own Python client parses /metrics in tests/web.rs (its classic-text and strict
# OpenMetrics parsers), with Debian's python3 as the camera tests use.
have_prom_parser() { /usr/bin/python3 -c 'import prometheus_client.parser, prometheus_client.openmetrics.parser' >/dev/null 2>&1; }
have_prom_parser || apt_install python3-prometheus-client || true
have_prom_parser || echo "python3-prometheus-client is missing (apt-get install python3-prometheus-client): the metrics test will fail" >&2
# Every message the integration tests capture from a station is checked against
# docs/asyncapi.yaml (tests/common, tests/lib/validate_messages.py) with Debian's jsonschema.
have_contract_check() { /usr/bin/python3 -c 'import jsonschema, yaml' >/dev/null 2>&1; }
have_contract_check || apt_install python3-jsonschema python3-yaml || true
have_contract_check || echo "python3-jsonschema or python3-yaml is missing (apt-get install python3-jsonschema python3-yaml): every test that captures messages will fail its contract check" >&2
# Chromium and ChromeDriver: tests/web.rs drives a real headless browser through the status page
# (a CJK font so its screenshots show the Chinese labels).
have_chromium() { [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; }
if ! have_chromium && [ "$(id -u)" = 0 ]; then
  say "installing chromium and chromium-driver (the status page test drives a headless browser)"
  apt_install chromium chromium-driver || true
fi
# (the font on its own: a machine may have chromium and not it)
[ -e /usr/share/fonts/truetype/wqy/wqy-microhei.ttc ] || apt_install fonts-wqy-microhei || true
have_chromium || echo "chromium or chromedriver is missing (apt-get install chromium chromium-driver): the status page test will fail" >&2
# Network UPS Tools' server with its dummy driver is the UPS of tests/host.rs (started by the
# test on a loopback port; the distribution's own service is not started).
if [ ! -x /lib/nut/upsd ] && [ "$(id -u)" = 0 ]; then
  say "installing nut-server (the box health test runs its own upsd on a loopback port)"
  no_start=no
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && no_start=yes
  fi
  apt_install nut-server || true
  [ "$no_start" = yes ] && rm -f /usr/sbin/policy-rc.d
fi
[ -x /lib/nut/upsd ] || echo "nut-server is missing (apt-get install nut-server): the box health test will fail" >&2
# libfaketime steps the daemon's wall clock in tests/systemd.rs (the watchdog must not notice).
ls /usr/lib/*/faketime/libfaketimeMT.so.1 >/dev/null 2>&1 || apt_install libfaketime || true
ls /usr/lib/*/faketime/libfaketimeMT.so.1 >/dev/null 2>&1 || echo "libfaketime is missing (apt-get install libfaketime): the wall-clock step test will fail" >&2
if command -v rustup >/dev/null 2>&1; then
  rustup component list --installed 2>/dev/null | grep -q '^rustfmt' || rustup component add rustfmt
  rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy
fi

# --- checks ----------------------------------------------------------------------------------
say "cargo fmt --check"
cargo fmt --all -- --check
say "cargo clippy --workspace --all-targets -- -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings
say "fuzz targets built and run ${FUZZ_SECONDS:-10} s each from the kept corpus (fuzz/run-all.sh; one longer: cd fuzz && cargo +nightly fuzz run TARGET)"
# libFuzzer is C++, built by libfuzzer-sys with the system's C++ compiler.
command -v c++ >/dev/null 2>&1 || apt_install g++ || true
bash fuzz/run-all.sh
say "docs/asyncapi.yaml: the contract validated by the AsyncAPI CLI (@asyncapi/cli 4.1.1, kept in target/asyncapi-cli)"
command -v npm >/dev/null 2>&1 || apt_install nodejs npm || true
if command -v npm >/dev/null 2>&1; then
  asyncapi_cli=target/asyncapi-cli/node_modules/.bin/asyncapi
  [ -x "$asyncapi_cli" ] || npm install --prefix target/asyncapi-cli --no-audit --no-fund --loglevel=error @asyncapi/cli@4.1.1 >/dev/null
  # Its analytics are off before it first runs (a scratch HOME): nothing leaves the machine.
  asyncapi_home=$(mktemp -d)
  printf '{"analyticsEnabled":"false","infoMessageShown":"true","userID":"stationd-ci"}' > "$asyncapi_home/.asyncapi-analytics"
  HOME=$asyncapi_home "$asyncapi_cli" validate docs/asyncapi.yaml --fail-severity=warn
  rm -rf "$asyncapi_home"
else
  echo "npm is missing (apt-get install npm): docs/asyncapi.yaml was NOT validated by the AsyncAPI CLI" >&2
fi
say "cargo build (binary used by the config checks and the integration tests)"
cargo build --locked
say "check-config on every shipped example and hardware profile"
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
for f in examples/*.toml; do
  # Examples name production paths (/var/lib/stationd); check them against a scratch dir.
  sed "s#/var/lib/stationd#$scratch#g; s#/run/stationd#$scratch#g" "$f" > "$scratch/$(basename "$f")"
  ./target/debug/stationd check-config --profile-dir hw-profiles --config "$scratch/$(basename "$f")"
done
for p in hw-profiles/*.toml; do
  ./target/debug/stationd check-config --profile "$p" | sed -n 1p
done
say "systemd unit: systemd-analyze verify and security (exposure <= 2.0)"
command -v systemd-analyze >/dev/null 2>&1 || apt_install systemd || true
if command -v systemd-analyze >/dev/null 2>&1; then
  mkdir -p "$scratch/unit"
  # verify needs ExecStart's binary to exist: point it at the one just built.
  sed "s#/usr/bin/stationd#$PWD/target/debug/stationd#" systemd/stationd.service > "$scratch/unit/stationd.service"
  systemd-analyze verify --man=no "$scratch/unit/stationd.service" 2> "$scratch/verify.err" || { cat "$scratch/verify.err"; exit 1; }
  # It exits 0 on unknown keys and only prints them: any output is a failure.
  if [ -s "$scratch/verify.err" ]; then cat "$scratch/verify.err"; exit 1; fi
  systemd-analyze security --offline=true --threshold=20 "$scratch/unit/stationd.service" | tail -1
else
  echo "systemd-analyze is not available (apt-get install systemd): the unit checks were NOT run" >&2
fi
say "cross builds (aarch64, armv7 release) and the aarch64 library tests under qemu-user"
cross_ready=yes
for t in aarch64-unknown-linux-gnu armv7-unknown-linux-gnueabihf; do
  rustup target list --installed 2>/dev/null | grep -qx "$t" || rustup target add "$t" >/dev/null 2>&1 || cross_ready="no (rustup could not fetch the $t standard library)"
done
have_cross() { command -v aarch64-linux-gnu-gcc >/dev/null 2>&1 && command -v arm-linux-gnueabihf-gcc >/dev/null 2>&1 && command -v qemu-aarch64 >/dev/null 2>&1; }
if [ "$cross_ready" = yes ] && ! have_cross; then
  apt_install gcc-aarch64-linux-gnu libc6-dev-arm64-cross gcc-arm-linux-gnueabihf libc6-dev-armhf-cross qemu-user || true
  have_cross || cross_ready="no (missing: apt-get install gcc-aarch64-linux-gnu libc6-dev-arm64-cross gcc-arm-linux-gnueabihf libc6-dev-armhf-cross qemu-user)"
fi
debs=(amd64)
if [ "$cross_ready" = yes ]; then
  bash cross/build.sh aarch64 armv7
  cargo test --locked --workspace --target aarch64-unknown-linux-gnu --lib 2>&1 | grep "^test result"
  debs+=(arm64 armhf)
else
  echo "cross builds were NOT run: $cross_ready" >&2
fi
say "packages (.deb: ${debs[*]}): build with cargo-deb, inspect, install into a scratch root"
# readelf (binutils, normally there with gcc) tells the packaged binaries' architecture.
command -v readelf >/dev/null 2>&1 || apt_install binutils || true
if cargo deb --version >/dev/null 2>&1 || cargo install --locked --quiet cargo-deb --version '^3.8'; then
  bash cross/package.sh "${debs[@]}"
  bash tests/package.sh "${debs[@]}"
  say "the README's 'Install on a station box' on a clean Debian 12 root (debootstrap + chroot)"
  command -v debootstrap >/dev/null 2>&1 || apt_install debootstrap || true
  amd64_deb="target/debian/stationd_$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)-1_amd64.deb"
  bash tests/install.sh "$amd64_deb"
  say "the packaged unit under a real systemd (systemd-nspawn --boot of the same Debian 12 root)"
  command -v systemd-nspawn >/dev/null 2>&1 || apt_install systemd-container || true
  command -v mosquitto_sub >/dev/null 2>&1 || apt_install mosquitto-clients || true
  command -v curl >/dev/null 2>&1 || apt_install curl || true
  bash tests/boot.sh "$amd64_deb"
else
  echo "packages were NOT built or checked: cargo-deb could not be installed (cargo install --locked cargo-deb)" >&2
fi
say "cargo test (unit, model, integration against real mosquitto, demo)"
cargo test --locked --workspace --lib --bins --tests -- --test-threads 2 2>&1 | tee "$scratch/test.log"
# One closing line for the whole suite (the per-binary lines above end with the last binary's).
passed=$(grep -Eo '^test result: [a-zA-Z]+\. [0-9]+ passed' "$scratch/test.log" | awk '{s+=$4} END {print s+0}')
failed=$(grep -Eo '[0-9]+ failed;' "$scratch/test.log" | awk '{s+=$1} END {print s+0}')
echo "tests: $passed passed, $failed failed"
[ "$failed" = 0 ] && [ "$passed" -gt 0 ]
