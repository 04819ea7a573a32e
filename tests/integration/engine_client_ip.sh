#!/usr/bin/env bash
# Client-IP restriction: a client from another address is refused before any
# handshake with "unauthorized IP" and counted; an allowed one gets streams.
# IPv4 and IPv6, exact addresses and CIDR prefixes.
. "$(dirname "$0")/lib.sh"

case_() { # case_ NAME LISTEN_HOST TARGET_HOST FILTER EXPECT(ok|refused)
  local name=$1 lh=$2 th=$3 filter=$4 expect=$5 port
  port=$(free_port)
  start_bg "srv$name" "$PEER" server --listen "$lh:$port" --max-cap 4 \
    --client-ip "$filter" --report 100 --timeout 60s
  wait_for "$WORK/srv$name.log" "listening on" 10
  if [ "$expect" = ok ]; then
    "$PEER" client --target "$th:$port" --min-cap 2 --max-cap 2 --wait-active 2 \
      --timeout 20s >"$WORK/cli$name.log" 2>&1
    check "$name: allowed client ($filter) gets streams" test $? -eq 0
  else
    "$PEER" client --target "$th:$port" --min-cap 2 --max-cap 2 \
      --expect-error "unauthorized IP" --timeout 20s >"$WORK/cli$name.log" 2>&1
    check "$name: refused client sees \"unauthorized IP\"" test $? -eq 0
    check "$name: it never held a stream" grep -q "^final.* active=0 .*created=0 " "$WORK/cli$name.log"
    sleep 0.3
    local line; line=$(grep '^stats' "$WORK/srv$name.log" | tail -1)
    check "$name: server counted the rejection (rejected_ip=$(stat_of "$line" rejected_ip))" \
      test "$(stat_of "$line" rejected_ip)" -ge 1
    check "$name: server made no connection" test "$(stat_of "$line" conns)" -eq 0
  fi
  kill "$(pid_of "srv$name")" 2>/dev/null || true
}

case_ v4-exact-ok 127.0.0.1 127.0.0.1 127.0.0.1 ok
case_ v4-exact-refused 127.0.0.1 127.0.0.1 127.0.0.2 refused
case_ v4-cidr-ok 127.0.0.1 127.0.0.1 "10.0.0.0/8,127.0.0.0/8" ok
case_ v4-cidr-refused 127.0.0.1 127.0.0.1 "127.0.1.0/24" refused
case_ v6-exact-ok "[::1]" "[::1]" "::1" ok
case_ v6-cidr-refused "[::1]" "[::1]" "fd00::/8" refused
finish
