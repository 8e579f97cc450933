#!/usr/bin/env bash
# Runs every fuzz target for a short fixed time (FUZZ_SECONDS, default 10) from the corpus kept
# in the repository (fuzz/seeds/TARGET), as the test command does. A crash fails the run and
# leaves the input in target/fuzz-artifacts/TARGET/. Needs a nightly toolchain (rustup) and
# cargo-fuzz (installed here from crates.io when missing); without nightly it says so and skips.
# New inputs the fuzzer finds go to a scratch copy, not into the repository; to grow the kept
# corpus run a target longer and `cargo +nightly fuzz cmin TARGET fuzz/seeds/TARGET`.
set -euo pipefail
cd "$(dirname "$0")"
seconds=${FUZZ_SECONDS:-10}
if ! rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
  echo "fuzz targets NOT run: no nightly toolchain (rustup toolchain install nightly)" >&2
  exit 0
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "installing cargo-fuzz (crates.io)"
  if ! cargo install cargo-fuzz --locked --quiet; then
    echo "fuzz targets NOT run: cargo-fuzz could not be installed" >&2
    exit 0
  fi
fi
cargo +nightly fuzz build
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
artifacts="$(pwd)/../target/fuzz-artifacts"
status=0
for target in $(cargo +nightly fuzz list); do
  mkdir -p "$scratch/$target" "$artifacts/$target"
  if [ -d "seeds/$target" ]; then cp -r "seeds/$target/." "$scratch/$target/"; fi
  if cargo +nightly fuzz run "$target" "$scratch/$target" -- \
      -max_total_time="$seconds" -rss_limit_mb=2048 -print_final_stats=0 \
      -artifact_prefix="$artifacts/$target/" >"$scratch/$target.log" 2>&1; then
    runs=$(grep -o 'Done [0-9]* runs' "$scratch/$target.log" | tail -1 || true)
    echo "fuzz $target: ok ($runs in ${seconds} s, corpus $(ls "$scratch/$target" | wc -l) inputs)"
  else
    echo "fuzz $target: FAILED — the input is in $artifacts/$target/; the log's end:" >&2
    tail -30 "$scratch/$target.log" >&2
    status=1
  fi
done
exit $status
