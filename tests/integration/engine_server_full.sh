#!/usr/bin/env bash
# A server pool holds at most max_cap idle streams: with two client
# connections (each allowed max_cap streams by MAX_STREAMS) the server closes
# the streams beyond max_cap without sending an ID, and counts them.
. "$(dirname "$0")/lib.sh"
port=$(free_port)
start_bg srv "$PEER" server --listen "127.0.0.1:$port" --max-cap 4 --report 100 --timeout 60s
wait_for "$WORK/srv.log" "listening on" 10
start_bg c1 "$PEER" client --target "127.0.0.1:$port" --min-cap 4 --max-cap 4 \
  --min-interval 100ms --max-interval 100ms --report 100 --duration 3s --timeout 20s
check "first client fills to 4" wait_for "$WORK/c1.log" "^stats.* active=4 " 10
start_bg c2 "$PEER" client --target "127.0.0.1:$port" --min-cap 4 --max-cap 4 \
  --min-interval 100ms --max-interval 100ms --report 100 --duration 2s --timeout 20s
wait "$(pid_of c2)" || true
line=$(grep '^final' "$WORK/c2.log" || true)
check "second client got no stream (active=$(stat_of "$line" active))" test "$(stat_of "$line" active)" -eq 0
check "... its streams failed setup (failed=$(stat_of "$line" failed))" test "$(stat_of "$line" failed)" -ge 4
sline=$(grep '^stats' "$WORK/srv.log" | tail -1)
check "server counted refusals (refused=$(stat_of "$sline" refused))" test "$(stat_of "$sline" refused)" -ge 4
check "server never held more than 4 idle streams" \
  awk '/^stats/ { for (i = 2; i <= NF; i++) { split($i, kv, "="); if (kv[1] == "active" && kv[2] > 4) bad = 1 } } END { exit bad }' "$WORK/srv.log"
finish
