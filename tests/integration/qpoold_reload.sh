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

# One shared worker (workers = 1) with two client pools whose dials fail:
# each reports every second and asks qpoold to dial. A reload that removes
# one races with those messages; what was on its way for the removed pool
# is dropped, not taken as the worker lying (it was killed, and the other
# pool with it, in 3 of 4 tries).
dead=$(free_port)
conf2() { # POOLS...
  printf '[global]\nworkers = 1\nchroot = %s\ncontrol = %s\n' "$WORK/empty" "$WORK/q2.sock"
  for n in "$@"; do
    printf '[pool %s]\nmode = client\ntarget = 127.0.0.1:%s\nmin_interval = 10ms\nmax_interval = 10ms\n' "$n" "$dead"
  done
}
# right after the start, when every pool reports at once, 4 times
kills=0
for i in 1 2 3 4; do
  conf2 x y >"$WORK/q2.conf"
  # a log of its own per start: waiting on a reused one could see the last
  # start's "running" line and signal a qpoold that has no handler yet
  start_bg "q2_$i" "$QPOOLD" --config "$WORK/q2.conf"
  wait_for "$WORK/q2_$i.log" "running 2 pool" 10
  conf2 x >"$WORK/q2.conf"
  kill -HUP "$(pid_of "q2_$i")"
  wait_for "$WORK/q2_$i.log" "reload done: " 5
  sleep 0.5
  grep -q 'killing it' "$WORK/q2_$i.log" && kills=$((kills + 1))
  kill -TERM "$(pid_of "q2_$i")"
  wait "$(pid_of "q2_$i")" || true
done
check "4 starts, each reloaded at once to remove a pool of the shared worker: it was never killed ($kills)" \
  test "$kills" = 0
finish
