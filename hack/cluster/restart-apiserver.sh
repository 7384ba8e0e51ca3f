#!/usr/bin/env bash
# Restarts the local cluster's kube-apiserver with exactly the arguments it runs
# with now, and waits until it is ready again. For fault tests ("the API server
# restarted mid-stream"); etcd and everything else keep running.
#
#   bash hack/cluster/restart-apiserver.sh [--signal TERM|KILL] [--down SECONDS]
#     --signal  how to stop it (default KILL: a crash, back in ~3 s; TERM: a graceful
#               shutdown, which kube-apiserver drags out to 30 s+ with streams open)
#     --down    stay down this long before starting again (default 0)
#
# If the API server is not running (e.g. an earlier restart was interrupted), it
# is started from the command line saved by the last restart. Prints one line
# with the timings on stdout: stopped_ms=N ready_ms=N.
. "$(dirname "$0")/lib.sh"
require_root

signal=KILL
down=0
while [ $# -gt 0 ]; do
  case $1 in
    --signal) signal=${2:?--signal needs TERM or KILL}; shift 2 ;;
    --down) down=${2:?--down needs seconds}; shift 2 ;;
    *) die "unknown option $1 (usage: restart-apiserver.sh [--signal TERM|KILL] [--down SECONDS])" ;;
  esac
done
case $signal in TERM|KILL) ;; *) die "--signal must be TERM or KILL, not $signal" ;; esac
[[ $down =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "--down must be a number of seconds, not $down"

NAME=kube-apiserver
SAVED="$STATE/$NAME.cmdline"
ms() { echo $(( $(date +%s%N) / 1000000 )); }
# A process that exited but was not reaped yet (zombie) still answers kill -0.
alive() { [ -e "/proc/$1" ] && ! grep -q '^[^)]*) Z' "/proc/$1/stat" 2>/dev/null; }

t0=$(ms)
pid=$(pid_of $NAME)
if [ -n "$pid" ] && alive "$pid"; then
  # The arguments it runs with now (NUL-separated), kept for a start after a failed restart.
  cp "/proc/$pid/cmdline" "$SAVED.tmp" && mv "$SAVED.tmp" "$SAVED"
  log "stopping $NAME (pid $pid) with SIG$signal"
  kill -s "$signal" "$pid" 2>/dev/null || true
  for _ in $(seq 1 300); do alive "$pid" || break; sleep 0.1; done
  if alive "$pid"; then
    warn "$NAME did not stop within 30s of SIG$signal; killing it"
    kill -KILL "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do alive "$pid" || break; sleep 0.1; done
  fi
  alive "$pid" && die "$NAME (pid $pid) does not die"
elif [ ! -s "$SAVED" ]; then
  die "$NAME is not running and no saved command line exists ($SAVED); start the cluster with npm run cluster:up"
else
  log "$NAME is not running; starting it from $SAVED"
fi
rm -f "$PIDS/$NAME.pid"
t_stopped=$(ms)

sleep "$down"
mapfile -d '' -t cmd < "$SAVED"
[ "${#cmd[@]}" -gt 0 ] || die "$SAVED is empty"
start_component $NAME "${cmd[@]}"
wait_for $NAME 90 curl -fsSk "https://127.0.0.1:$APISERVER_PORT/readyz"
echo "stopped_ms=$((t_stopped - t0)) ready_ms=$(( $(ms) - t0 ))"
