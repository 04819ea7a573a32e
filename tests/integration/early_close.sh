#!/usr/bin/env bash
# A stream closed by its application before the peer takes it keeps its
# bytes: one side takes stream 00000000, writes a line and close()s it (FIN +
# STOP_SENDING); the other side takes it a second later, reads the line, then
# EOF, and its writes fail with EPIPE. Both directions, with the standalone
# engine on both ends and through two qpoold pools (the Go peer's side of this
# is in tests/interop).
. "$(dirname "$0")/lib.sh"

# engine NAME WRITER_SIDE [FILLER_BYTES]: with filler, more than the peer
# can acknowledge before our STOP_SENDING makes it reset its direction
engine() {
  local name=$1 w=$2 size=${3:-0} r port
  [ "$w" = server ] && r=client || r=server
  port=$(free_port)
  local srv=(--listen "127.0.0.1:$port" --max-cap 4)
  local cli=(--target "127.0.0.1:$port" --min-cap 1 --max-cap 1)
  local wargs rargs
  if [ "$w" = server ]; then wargs=("${srv[@]}"); rargs=("${cli[@]}"); else wargs=("${cli[@]}"); rargs=("${srv[@]}"); fi
  if [ "$w" = server ]; then
    start_bg "w$name" "$PEER" "$w" "${wargs[@]}" --early write --early-size "$size" --duration 6s --timeout 20s
    wait_for "$WORK/w$name.log" "listening on" 10
    start_bg "r$name" "$PEER" "$r" "${rargs[@]}" --early read --early-size "$size" --expect-epipe --timeout 20s
  else
    start_bg "r$name" "$PEER" "$r" "${rargs[@]}" --early read --early-size "$size" --expect-epipe --timeout 20s
    wait_for "$WORK/r$name.log" "listening on" 10
    start_bg "w$name" "$PEER" "$w" "${wargs[@]}" --early write --early-size "$size" --duration 6s --timeout 20s
  fi
  if wait "$(pid_of "r$name")"; then
    ok "engine, $w writes $size + a line and closes first: $r reads it later ($(grep -o 'early: read.*' "$WORK/r$name.log"))"
  else
    not_ok "engine, $w closes first"; tail -5 "$WORK/r$name.log" "$WORK/w$name.log"
  fi
  wait "$(pid_of "w$name")" || { not_ok "engine, $w writer exit"; tail -5 "$WORK/w$name.log"; }
}

engine e1 server
engine e2 client
engine e3 server 1000000
engine e4 client 1000000

# through qpoold pools (the streams are taken from the control sockets)
qpoold_pair() { # NAME
  local port; port=$(free_port)
  QPOOL_STATUS_FILE="$WORK/$1srv.status" start_bg "$1srv" "$QPOOLD" server --name srv \
    --listen "127.0.0.1:$port" --max-cap 4 --control "$WORK/$1srv.sock"
  wait_for "$WORK/$1srv.log" "running 1 pool" 10
  QPOOL_STATUS_FILE="$WORK/$1cli.status" start_bg "$1cli" "$QPOOLD" client --name cli \
    --target "127.0.0.1:$port" --min-cap 1 --max-cap 1 --control "$WORK/$1cli.sock"
  wait_status "$WORK/$1cli.status" cli idle_streams 1 15
}

qpoold_pair d1
logrun "$WORK/d1w.log" "$PEER" server --control "$WORK/d1srv.sock" --pool srv --early write --duration 1s --timeout 10s
check "qpoold, server app closes first: the server wrote and closed" grep -q "early: wrote" "$WORK/d1w.log"
check "... the client app reads it a second later, then EOF, then EPIPE" logrun "$WORK/d1r.log" \
  "$PEER" client --control "$WORK/d1cli.sock" --pool cli --early read --expect-epipe --timeout 15s
check "... and the stream counted as taken, not failed" \
  test "$(status_of "$WORK/d1cli.status" cli streams_failed)" = 0

qpoold_pair d2
logrun "$WORK/d2w.log" "$PEER" client --control "$WORK/d2cli.sock" --pool cli --early write --duration 1s --timeout 10s
check "qpoold, client app closes first: the client wrote and closed" grep -q "early: wrote" "$WORK/d2w.log"
check "... the server app reads it a second later, then EOF, then EPIPE" logrun "$WORK/d2r.log" \
  "$PEER" server --control "$WORK/d2srv.sock" --pool srv --early read --expect-epipe --timeout 15s
for f in d1r d2r; do grep -h 'early:' "$WORK/$f.log" || tail -5 "$WORK/$f.log"; done
finish
