#!/usr/bin/env bash
# A stop of the whole process group (what systemd does: SIGTERM to qpoold and
# its workers at the same moment) is a normal stop: every pool closes with
# "pool closed", qpoold exits 0, and nothing is logged at ERROR. Workers
# leave the stop to qpoold's Shutdown; when one died of the signal first,
# half the stops used to log "worker 0 (pid N): bad file descriptor: killing
# it" (the Shutdown it never read turned into an error on qpoold's socket).
# Repeated 20 times, with a client pool connected to a server pool of the
# same qpoold, so that both kinds of pool close.
. "$(dirname "$0")/lib.sh"
runs=20
bad=0 failed_exit=0
port=$(free_port)
cat >"$WORK/q.conf" <<CONF
[global]
chroot = $WORK/empty
control = $WORK/q.sock

[pool s]
mode = server
listen = 127.0.0.1:$port
max_cap = 4

[pool c]
mode = client
target = 127.0.0.1:$port
min_cap = 2
max_cap = 2
min_interval = 100ms
max_interval = 100ms
CONF
for i in $(seq 1 "$runs"); do
  # a process group of its own, as under systemd (setsid: qpoold leads it)
  QPOOL_STATUS_FILE="$WORK/q$i.status" setsid "$QPOOLD" --config "$WORK/q.conf" \
    >"$WORK/q$i.log" 2>&1 &
  pid=$!
  PIDS+=("$pid")
  if ! wait_status "$WORK/q$i.status" c idle_streams 2 20; then
    not_ok "run $i: the client pool filled"
  fi
  pgid=$(ps -o pgid= -p "$pid" | tr -d ' ')
  [ "$pgid" = "$pid" ] || not_ok "run $i: qpoold leads its process group ($pgid)"
  kill -TERM -- "-$pid"
  rc=0
  wait "$pid" || rc=$?
  [ "$rc" -eq 0 ] || { failed_exit=$((failed_exit + 1)); echo "run $i: exit $rc"; }
  if grep -q "ERROR" "$WORK/q$i.log"; then
    bad=$((bad + 1))
    echo "run $i logged an error:"; grep "ERROR" "$WORK/q$i.log"
  fi
  grep -q "stopped" "$WORK/q$i.log" || not_ok "run $i: qpoold logged \"stopped\""
done
check "$runs group stops: no ERROR in any log ($bad had one)" test "$bad" -eq 0
check "$runs group stops: qpoold exited 0 every time ($failed_exit did not)" \
  test "$failed_exit" -eq 0
check "the workers closed their pools (\"shutting down\" logged in every run)" \
  test "$(grep -l 'shutting down: qpoold is stopping' "$WORK"/q*.log | wc -l)" -eq "$runs"
finish
