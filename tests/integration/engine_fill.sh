#!/usr/bin/env bash
# A client pool and a server pool (two processes, real QUIC on 127.0.0.1 and
# ::1) fill to capacity; IDs are 8 lowercase hex, the first is 00000000, all
# unique, and both sides hold the same set.
. "$(dirname "$0")/lib.sh"

fill() { # fill FAMILY HOST
  local fam=$1 host=$2 port n=64
  port=$(free_port)
  start_bg "srv$fam" "$PEER" server --listen "$host:$port" --max-cap $n \
    --wait-active $n --keep-running --timeout 60s
  wait_for "$WORK/srv$fam.log" "listening on" 10
  # both sides keep running until both printed their IDs: a client that
  # closed first would empty the server's pool before it looked
  start_bg "cli$fam" "$PEER" client --target "$host:$port" --min-cap $n \
    --max-cap $n --wait-active $n --keep-running --timeout 60s
  check "$fam: client filled to $n" wait_for "$WORK/cli$fam.log" "^ids:" 30
  check "$fam: server filled to $n" wait_for "$WORK/srv$fam.log" "^ids:" 30
  local cids sids
  cids=$(grep '^ids:' "$WORK/cli$fam.log" | cut -d: -f2 | tr ' ' '\n' | sed '/^$/d' | sort || true)
  sids=$(grep '^ids:' "$WORK/srv$fam.log" | cut -d: -f2 | tr ' ' '\n' | sed '/^$/d' | sort || true)
  check "$fam: client holds $n IDs" test "$(wc -l <<<"$cids")" -eq $n
  check "$fam: every ID is 8 lowercase hex" \
    test -z "$(grep -vE '^[0-9a-f]{8}$' <<<"$cids")"
  check "$fam: IDs are unique" test "$(sort -u <<<"$cids" | wc -l)" -eq $n
  check "$fam: the control ID 00000000 is there" grep -qx 00000000 <<<"$cids"
  check "$fam: server's first idle ID is 00000000" \
    test "$(grep '^ids:' "$WORK/srv$fam.log" | awk '{print $2}' || true)" = 00000000
  check "$fam: server holds the same IDs" test "$cids" = "$sids"
  local line
  line=$(grep '^final' "$WORK/cli$fam.log" || true)
  check "$fam: client capacity reported as $n" test "$(stat_of "$line" capacity)" -eq $n
  kill "$(pid_of "srv$fam")" "$(pid_of "cli$fam")" 2>/dev/null || true
}

fill v4 127.0.0.1
fill v6 "[::1]"
finish
