#!/usr/bin/env bash
# Installs what this machine lacks to run or test Pulsewire, and nothing else:
# Debian's influxdb package (influxd), nats-server and nginx (cluster mode's tests), chromium (the dashboard's browser tests,
# driven by playwright-core, which downloads no browser) and the npm dependencies (npm ci).
# Safe to run again: each step checks first. Called by `npm start` and `npm test`.
set -euo pipefail
cd "$(dirname "$0")/.."

# say, as_root, apt_install, need_command
source scripts/packages.sh

need_command influxd influxdb
need_command nats-server nats-server
need_command nginx nginx
need_command openssl openssl
need_command chromium chromium
need_command ss iproute2

# npm ci when node_modules is missing or older than the lock file.
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  say "npm ci"
  npm ci --no-audit --no-fund --loglevel=error
fi
