#!/usr/bin/env bash
# Access control from peer credentials (SO_PEERCRED): a caller running under a
# uid that is not allowed is refused for that pool with "permission denied"
# (and nothing happens), may still read stats, and is let in where the pool's
# allow_users / allow_groups name it. Root may use every pool. (A take keeps
# relaying until its stream ends: those checks stop it after the ID shows.)
. "$(dirname "$0")/lib.sh"
need_root
command -v runuser >/dev/null || { echo "SKIP: runuser missing"; exit 77; }
chmod 755 "$WORK"
PY="$QP_SRC/examples/python/qpool_take.py"
CTL="$QP_BIN/qpoolctl"
ps_=$(free_port); pt=$(free_port)
cat >"$WORK/q.conf" <<CONF
[global]
workers = 1
chroot = $WORK/empty
control = $WORK/q.sock

[pool closed]
mode = server
listen = 127.0.0.1:$ps_
max_cap = 4

[pool open]
mode = server
listen = 127.0.0.1:$pt
max_cap = 4
allow_users = nobody
CONF
export QPOOL_STATUS_FILE="$WORK/q.status"
start_bg q "$QPOOLD" --config "$WORK/q.conf"
unset QPOOL_STATUS_FILE
wait_for "$WORK/q.log" "in the sandbox" 10
start_bg c1 "$PEER" client --target "127.0.0.1:$ps_" --min-cap 4 --max-cap 4 --duration 40s --timeout 50s
start_bg c2 "$PEER" client --target "127.0.0.1:$pt" --min-cap 4 --max-cap 4 --duration 40s --timeout 50s
wait_status "$WORK/q.status" closed idle_streams 4 15
wait_status "$WORK/q.status" open idle_streams 4 15
as_nobody() { runuser -u nobody -- "$@"; }

rc=0
as_nobody python3 "$PY" --control "$WORK/q.sock" --pool closed --timeout 1000 incoming \
  </dev/null >/dev/null 2>"$WORK/deny.err" || rc=$?
check "nobody is refused a stream of pool \"closed\"" test "$rc" -ne 0
check "... with \"permission denied\"" grep -q "permission denied: uid $(id -u nobody) may not use pool \"closed\"" "$WORK/deny.err"
check "... and no stream was taken" test "$(status_of "$WORK/q.status" closed streams_taken)" = 0
check "nobody cannot flush it either" bash -c "! runuser -u nobody -- '$CTL' --control '$WORK/q.sock' flush closed 2>'$WORK/flush.err'"
check "... told why" grep -q "permission denied" "$WORK/flush.err"
check "nobody may read stats" logrun "$WORK/status.log" as_nobody "$CTL" --control "$WORK/q.sock" status
check "... which list both pools" bash -c "grep -q closed '$WORK/status.log' && grep -q open '$WORK/status.log'"
# wait_line FILE SECONDS: the taker printed a stream ID (it then relays
# until killed: the ID is all the check needs, as soon as it comes)
wait_line() {
  local i
  for ((i = 0; i < $2 * 20; i++)); do
    grep -qE '^[0-9a-f]{8}$' "$1" && return 0
    sleep 0.05
  done
  return 1
}
export -f wait_line
check "nobody takes a stream of pool \"open\" (allow_users = nobody)" bash -c \
  "timeout 15 runuser -u nobody -- python3 '$PY' --control '$WORK/q.sock' --pool open --timeout 10000 incoming </dev/null >/dev/null 2>'$WORK/open.err' & sleep 0.1; wait_line '$WORK/open.err' 15"
check "root takes a stream of pool \"closed\"" bash -c \
  "timeout 15 python3 '$PY' --control '$WORK/q.sock' --pool closed --timeout 10000 incoming </dev/null >/dev/null 2>'$WORK/root.err' & sleep 0.1; wait_line '$WORK/root.err' 15" ||
  { echo "# root.err:"; cat "$WORK/root.err"; cat "$WORK/q.status"; }
pkill -f -- "--control $WORK/q.sock" || true # the takers, still relaying
kill -TERM "$(pid_of q)"
check "qpoold stops cleanly" wait "$(pid_of q)"
finish
