#!/usr/bin/env bash
# SIGHUP reloads the configuration: a removed pool stops, a new pool starts
# (in a worker of its own), an unchanged pool keeps its worker and its
# connection; a broken file is refused and the running set stays.
. "$(dirname "$0")/lib.sh"
pa=$(free_port); pb=$(free_port); pc=$(free_port)
conf() { # conf POOL...
  printf '[global]\nworkers = 0\nchroot = %s\ncontrol = %s\n' "$WORK/empty" "$WORK/q.sock"
  for p in "$@"; do
    eval "port=\$p$p"
    printf '\n[pool %s]\nmode = server\nlisten = 127.0.0.1:%s\nmax_cap = 4\n' "$p" "$port"
  done
}
conf a b >"$WORK/q.conf"
export QPOOL_STATUS_FILE="$WORK/q.status"
start_bg q "$QPOOLD" --config "$WORK/q.conf"
unset QPOOL_STATUS_FILE
wait_for "$WORK/q.log" "running 2 pool" 10
start_bg ca "$PEER" client --target "127.0.0.1:$pa" --min-cap 4 --max-cap 4 --report 100 --duration 30s --timeout 40s
check "pool a filled" wait_status "$WORK/q.status" a idle_streams 4 15
wa=$(status_of "$WORK/q.status" a pid)
na=$(grep -c '^stats' "$WORK/ca.log")

conf a c >"$WORK/q.conf"
kill -HUP "$(pid_of q)"
check "reload logged" wait_for "$WORK/q.log" "reload done: 2 pool" 10
check "pool b removed" wait_for "$WORK/q.log" "pool b removed" 5
check "pool c added" wait_for "$WORK/q.log" "pool c added" 5
sleep 0.5
check "pool b gone from the status" bash -c "! grep -q '^pool=b ' '$WORK/q.status'"
check "pool a kept its worker ($wa)" test "$(status_of "$WORK/q.status" a pid)" = "$wa"
check "pool a's client kept its connection" \
  bash -c "tail -n +$na '$WORK/ca.log' | head -n -1 | grep '^stats' | grep -vq 'connected=1' && exit 1 || exit 0"
# (head -n -1: the log is being written; its last line may be incomplete)
check "the new pool c serves" logrun "$WORK/cc.log" "$PEER" client --target "127.0.0.1:$pc" \
  --min-cap 4 --max-cap 4 --wait-active 4 --timeout 20s
check "pool c runs in another worker" test "$(status_of "$WORK/q.status" c pid)" != "$wa"

echo "[pool broken" >"$WORK/q.conf"
kill -HUP "$(pid_of q)"
check "a broken file is refused" wait_for "$WORK/q.log" "reload failed, keeping the running configuration" 10
check "pools a and c still run" test -n "$(status_of "$WORK/q.status" a pid)" -a -n "$(status_of "$WORK/q.status" c pid)"
kill -TERM "$(pid_of q)"
check "qpoold stops cleanly" wait "$(pid_of q)"
finish
