#!/usr/bin/env bash
# Loads the machine the way a busy CI runner or a neighbour would: Debian's
# stress-ng keeps every core busy (installed with apt-get when missing), so a
# test that only passes on an idle machine shows itself.
#
#   bash scripts/load.sh -- npm test              # the command under load; the load stops with it
#   bash scripts/load.sh -- npx vitest run test/live
#   bash scripts/load.sh --seconds 300            # load alone, for 5 minutes or until Ctrl-C
#   bash scripts/load.sh --workers 1 --percent 50 -- npm test
#
# Bounded: stress-ng gets --timeout, so it stops by itself even if this script
# is killed outright; it is also stopped when the command ends, on Ctrl-C and
# on SIGTERM. Exits with the command's exit status.
set -euo pipefail
cd "$(dirname "$0")/.."
SAY_PREFIX=load
# say, as_root, apt_install, need_command
source scripts/packages.sh

usage() {
  sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'
  printf '\noptions:\n  --seconds N   stop the load after N s at the latest (default 1800)\n  --workers N   busy stress-ng workers (default: one per core, %s here)\n  --percent P   how busy each worker keeps its core, 1-100 (default 100)\n' "$(nproc)"
}

seconds=1800
workers=$(nproc)
percent=100
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) seconds=${2:?--seconds needs a value}; shift 2 ;;
    --workers) workers=${2:?--workers needs a value}; shift 2 ;;
    --percent) percent=${2:?--percent needs a value}; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    --) shift; break ;;
    *) say "unknown argument: $1 (a command goes after --)"; usage; exit 2 ;;
  esac
done
for pair in "seconds:$seconds" "workers:$workers" "percent:$percent"; do
  value=${pair#*:}
  if ! [[ "$value" =~ ^[1-9][0-9]*$ ]]; then say "--${pair%%:*} must be a positive integer, got '$value'"; exit 2; fi
done
if [ "$percent" -gt 100 ]; then say "--percent must be at most 100"; exit 2; fi

need_command stress-ng stress-ng

stress-ng --cpu "$workers" --cpu-load "$percent" --timeout "${seconds}s" --quiet &
stress_pid=$!
say "stress-ng: $workers workers at ${percent}% for at most ${seconds} s (pid $stress_pid)"

stop_load() {
  if kill -0 "$stress_pid" 2>/dev/null; then
    kill -TERM "$stress_pid" 2>/dev/null || true
    wait "$stress_pid" 2>/dev/null || true
    say "stress-ng stopped"
  fi
}
trap stop_load EXIT
# The command in the foreground gets Ctrl-C from the terminal itself; the traps only end this script.
trap 'exit 130' INT
trap 'exit 143' TERM

if [ $# -eq 0 ]; then
  wait "$stress_pid" || true
  exit 0
fi
set +e
"$@"
status=$?
set -e
say "command exited with $status"
exit "$status"
