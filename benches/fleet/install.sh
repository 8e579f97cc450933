#!/usr/bin/env bash
# Installs the fleet harness's clustered broker, Aedes with its Redis persistence and emitter,
# from npm into target/fleet-broker (pinned versions; nothing global). Needs node/npm and the
# machine's Redis on 127.0.0.1:6379.
set -euo pipefail
cd "$(dirname "$0")/../.."
dest=target/fleet-broker
# Node.js and Redis from the distribution's packages where missing (a fresh machine); the
# cluster keeps its state in a Redis on 127.0.0.1:6379, started here if none answers.
apt_get() { DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >/dev/null 2>&1 || { apt-get update -q >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >/dev/null; }; }
command -v npm >/dev/null || apt_get nodejs npm || { echo "cannot install nodejs/npm: apt-get install nodejs npm" >&2; exit 1; }
command -v redis-server >/dev/null || apt_get redis-server || { echo "cannot install redis-server: apt-get install redis-server" >&2; exit 1; }
if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no >/dev/null
  sleep 0.5
fi
if [ -d "$dest/node_modules/aedes" ] && [ -d "$dest/node_modules/mqemitter-redis" ] && [ -d "$dest/node_modules/aedes-persistence-redis" ]; then
  exit 0
fi
mkdir -p "$dest"
npm install --prefix "$dest" --no-audit --no-fund --loglevel=error \
  aedes@0.51.3 aedes-persistence-redis@12 mqemitter-redis@7.2.1 >/dev/null
echo "installed Aedes 0.51.3, aedes-persistence-redis 12 and mqemitter-redis 7.2.1 into $dest"
