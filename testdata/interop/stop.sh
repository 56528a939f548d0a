#!/usr/bin/env bash
# Stops the interop lab that run.sh started in DIR and removes DIR:
#   bash testdata/interop/stop.sh /tmp/certsweep-interop.XXXXXX
# run.sh calls it on exit; after KEEP=1 run it by hand. Every daemon was
# started in its own session, so each one is stopped as a whole process
# group (its pidfile in DIR/pids holds the group's id); nothing outside DIR
# is touched. --keep-dir stops the daemons but leaves DIR.
set -euo pipefail

keep_dir=0
if [ "${1:-}" = "--keep-dir" ]; then
  keep_dir=1
  shift
fi
T=${1:?usage: stop.sh [--keep-dir] DIR}
case $T in
  /tmp/certsweep-interop.*) ;;
  *) echo "stop.sh: $T is not a lab directory (/tmp/certsweep-interop.*)" >&2; exit 2 ;;
esac
[ -d "$T" ] || { echo "stop.sh: no such directory $T" >&2; exit 1; }

# postfix daemonizes: ask it to stop first (its master.pid is in pids/ too).
if [ -f "$T/postfix/etc/main.cf" ] && [ -s "$T/postfix/spool/pid/master.pid" ]; then
  postfix -c "$T/postfix/etc" stop >/dev/null 2>&1 || true
fi

pids=()
for f in "$T"/pids/*; do
  [ -f "$f" ] || continue
  pid=$(tr -dc '0-9' <"$f")
  [ -n "$pid" ] && [ "$pid" -gt 1 ] && pids+=("$pid")
done

alive() { kill -0 -- "-$1" 2>/dev/null || kill -0 "$1" 2>/dev/null; }

for pid in "${pids[@]}"; do
  kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
done
for _ in $(seq 50); do
  left=0
  for pid in "${pids[@]}"; do alive "$pid" && left=1; done
  [ $left = 0 ] && break
  sleep 0.1
done
for pid in "${pids[@]}"; do
  if alive "$pid"; then
    echo "stop.sh: process group $pid ($(grep -l -x "$pid" "$T"/pids/* | xargs -n1 basename)) ignored SIGTERM; killing it" >&2
    kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
  fi
done

if [ $keep_dir = 0 ]; then
  rm -rf "$T"
fi
