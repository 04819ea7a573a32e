#!/usr/bin/env bash
# Streams taken by ID on both sides pair up: 64 concurrent streams each move
# 16 MiB both ways with a SHA-256 check (docs/np-test.md); each side
# half-closes its direction and still reads the other to EOF.
. "$(dirname "$0")/lib.sh"

run() { # run NAME HOST STREAMS BYTES
  local name=$1 host=$2 n=$3 bytes=$4 port
  port=$(free_port)
  start_bg "srv$name" "$PEER" server --listen "$host:$port" --max-cap 128 \
    --streams "$n" --bytes "$bytes" --timeout 150s
  wait_for "$WORK/srv$name.log" "listening on" 10
  if "$PEER" client --target "$host:$port" --min-cap "$n" --max-cap 128 \
    --min-interval 100ms --max-interval 1s --streams "$n" --bytes "$bytes" \
    --timeout 150s >"$WORK/cli$name.log" 2>&1; then
    ok "$name: client side: $n streams x $bytes bytes each way"
  else
    not_ok "$name: client side"; tail -5 "$WORK/cli$name.log"
  fi
  local pid; pid=$(pid_of "srv$name")
  if wait "$pid"; then
    ok "$name: server side verified every stream"
  else
    not_ok "$name: server side"; tail -5 "$WORK/srv$name.log"
  fi
}

run v4 127.0.0.1 64 16777216
run v6 "[::1]" 8 1048576
run empty 127.0.0.1 4 0
finish
