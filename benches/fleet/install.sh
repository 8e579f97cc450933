#!/usr/bin/env bash
# Installs the fleet harness's clustered broker, Aedes with its Redis persistence and emitter,
# from npm into target/fleet-broker (pinned versions; nothing global). Needs node/npm and the
# machine's Redis on 127.0.0.1:6379.
set -euo pipefail
cd "$(dirname "$0")/../.."
dest=target/fleet-broker
if [ -d "$dest/node_modules/aedes" ] && [ -d "$dest/node_modules/mqemitter-redis" ] && [ -d "$dest/node_modules/aedes-persistence-redis" ]; then
  exit 0
fi
command -v npm >/dev/null || { echo "npm is missing: apt-get install nodejs npm" >&2; exit 1; }
mkdir -p "$dest"
npm install --prefix "$dest" --no-audit --no-fund --loglevel=error \
  aedes@0.51.3 aedes-persistence-redis@12 mqemitter-redis@7.2.1 >/dev/null
echo "installed Aedes 0.51.3, aedes-persistence-redis 12 and mqemitter-redis 7.2.1 into $dest"
