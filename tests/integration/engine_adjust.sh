#!/usr/bin/env bash
# The manager's rules in a live run: while an application takes every idle
# stream, capacity grows towards max_cap and the interval falls to min_ivl;
# once streams stay idle, capacity shrinks back and the interval grows to
# max_ivl (docs/protocol.md), as Capacity() and Interval() report.
. "$(dirname "$0")/lib.sh"
port=$(free_port)
# the server application takes (and closes) its idle streams too: a stream
# the client closed stays in the server pool until taken (docs/engine.md)
start_bg srv "$PEER" server --listen "127.0.0.1:$port" --max-cap 64 --take-all 4s \
  --timeout 60s
wait_for "$WORK/srv.log" "listening on" 10
logrun "$WORK/cli.log" "$PEER" client --target "127.0.0.1:$port" \
  --min-cap 2 --max-cap 16 --min-interval 100ms --max-interval 400ms \
  --take-all 3s --duration 9s --report 50 --timeout 30s
check "client ran for its duration" test $? -eq 0

# phase 1: t < 3 s (taking); phase 2: t >= 6 s (idle for 3 s)
awk '/^stats/ { for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
       t = v["t"]; c = v["capacity"]; iv = v["interval_ms"]
       if (t < 3.0) { if (c > maxc1) maxc1 = c; if (miniv1 == "" || iv < miniv1) miniv1 = iv }
       if (t >= 3.0 && t < 3.3) peak = (c > peak ? c : peak)
       last_c = c; last_iv = iv }
     END { printf "maxc1=%d miniv1=%d peak=%d lastc=%d lastiv=%d\n", maxc1, miniv1, peak, last_c, last_iv }' \
  "$WORK/cli.log" >"$WORK/summary"
cat "$WORK/summary"
eval "$(tr ' ' '\n' <"$WORK/summary" | sed 's/^/S_/')"
check "capacity grew while streams were taken (2 -> $S_maxc1)" test "$S_maxc1" -ge 6
check "interval fell to min_ivl 100ms while taking" test "$S_miniv1" -eq 100
check "capacity shrank once idle ($S_peak -> $S_lastc)" test "$S_lastc" -lt "$S_peak"
check "interval grew back towards max_ivl (now ${S_lastiv}ms)" test "$S_lastiv" -gt 100
check "capacity never left [2, 16]" \
  awk '/^stats/ { for (i = 2; i <= NF; i++) { split($i, kv, "="); if (kv[1] == "capacity" && (kv[2] < 2 || kv[2] > 16)) bad = 1 } } END { exit bad }' "$WORK/cli.log"
finish
