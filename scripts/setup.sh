#!/usr/bin/env bash
# Installs what this machine lacks to run or test Pulsewire, and nothing else:
# Debian's influxdb package (influxd), nats-server and nginx (cluster mode's tests), chromium (the dashboard's browser tests,
# driven by playwright-core, which downloads no browser) and the npm dependencies (npm ci).
# Safe to run again: each step checks first. Called by `npm start` and `npm test`.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf 'setup: %s\n' "$*"; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@";
  elif command -v sudo >/dev/null 2>&1; then sudo "$@";
  else say "need root to run: $*"; return 1; fi
}

apt_updated=0
apt_install() {
  if [ "$apt_updated" -eq 0 ]; then
    say "apt-get update"
    as_root apt-get update -qq
    apt_updated=1
  fi
  say "apt-get install $*"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

need_command() { # command package
  if ! command -v "$1" >/dev/null 2>&1 && [ ! -x "/usr/bin/$1" ] && [ ! -x "/usr/sbin/$1" ]; then
    if ! command -v apt-get >/dev/null 2>&1; then
      say "$1 is missing and this is not a Debian-like system: install $2 yourself"
      exit 1
    fi
    apt_install "$2"
  fi
}

need_command influxd influxdb
need_command nats-server nats-server
need_command nginx nginx
need_command openssl openssl
need_command chromium chromium

# npm ci when node_modules is missing or older than the lock file.
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  say "npm ci"
  npm ci --no-audit --no-fund --loglevel=error
fi
