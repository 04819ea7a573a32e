#!/usr/bin/env bash
# End to end through the privilege-separated runtime: a qpoold server pool and
# a qpoold client pool fill to capacity; the connection is served by a
# sandboxed worker process (it owns the connected UDP socket), not by the
# supervisor; the supervisor's view of each pool matches the engine's; both
# ends also interoperate with the standalone engine (np-peer); SIGTERM stops
# everything gracefully (peers see "pool closed", exit 0, nothing left).
. "$(dirname "$0")/lib.sh"
port=$(free_port)
export QPOOL_STATUS_FILE="$WORK/srv.status"
start_bg srv "$QPOOLD" server --name srv --listen "127.0.0.1:$port" --max-cap 16 \
  --chroot "$WORK/empty" --control "$WORK/srv.sock"
wait_for "$WORK/srv.log" "running 1 pool" 10
export QPOOL_STATUS_FILE="$WORK/cli.status"
start_bg cli "$QPOOLD" client --name cli --target "127.0.0.1:$port" --min-cap 8 \
  --max-cap 8 --chroot "$WORK/empty" --control "$WORK/cli.sock"
unset QPOOL_STATUS_FILE
check "client pool (in qpoold) filled to 8" wait_status "$WORK/cli.status" cli idle_streams 8 15
check "server pool (in qpoold) holds the same 8" wait_status "$WORK/srv.status" srv idle_streams 8 5
check "reports carry the manager's capacity (8) and interval (1000 ms)" \
  test "$(status_of "$WORK/cli.status" cli capacity)" = 8 -a "$(status_of "$WORK/cli.status" cli interval_seconds)" = 1
check "and the server pool's max_cap as its capacity (16)" test "$(status_of "$WORK/srv.status" srv capacity)" = 16
check "server connection came through the hand-off" test "$(status_of "$WORK/srv.status" srv handoffs)" -ge 1

wpid=$(status_of "$WORK/srv.status" srv pid)
spid=$(pid_of srv)
check "the server pool runs in a worker process ($wpid), not qpoold ($spid)" \
  test -n "$wpid" -a "$wpid" != "$spid" -a "$(cat /proc/$wpid/comm)" = qpool-worker
check "that worker is a child of qpoold" test "$(awk '{print $4}' /proc/$wpid/stat)" = "$spid"
# the worker, not the supervisor, owns the socket connected to the client
sockets_of() { ls -l /proc/$1/fd 2>/dev/null | grep -o 'socket:\[[0-9]*\]' | tr -d 'socket:[]'; }
connected_udp_inodes() { # UDP sockets on our port with a remote peer set
  awk -v p="$(printf '%04X' "$port")" 'NR > 1 { split($2, l, ":"); split($3, r, ":"); if (l[2] == p && r[2] != "0000") print $10 }' /proc/net/udp
}
conn_inodes=$(connected_udp_inodes)
owner_ok=0
for ino in $conn_inodes; do sockets_of "$wpid" | grep -qx "$ino" && owner_ok=1; done
check "the worker holds the connected UDP socket" test "$owner_ok" = 1
sup_has=0
for ino in $conn_inodes; do sockets_of "$spid" | grep -qx "$ino" && sup_has=1; done
check "the supervisor does not keep it" test "$sup_has" = 0
if [ "$(id -u)" -eq 0 ]; then
  check "the worker runs as nobody" test "$(awk '/^Uid:/ {print $2}' /proc/$wpid/status)" = "$(id -u nobody)"
fi

# streams flow through both qpoold pools: the np-test exchange (IDs over the
# control stream 00000000, half-close both ways, SHA-256) with the streams
# taken from qpoold's control sockets
start_bg ntsrv "$PEER" server --control "$WORK/srv.sock" --pool srv --streams 16 \
  --bytes 4194304 --timeout 120s
check "np-test through qpoold (client side): 16 streams x 4 MiB each way" logrun "$WORK/ntcli.log" \
  "$PEER" client --control "$WORK/cli.sock" --pool cli --streams 16 --bytes 4194304 --timeout 120s
check "np-test through qpoold (server side) verified every stream" wait "$(pid_of ntsrv)"
check "the server pool's counters show the taken streams" \
  wait_status_ge "$WORK/srv.status" srv streams_taken 17 5
check "a request for an unknown pool fails" bash -c "! '$PEER' client --control '$WORK/cli.sock' --pool nosuch --streams 1 --bytes 1 --timeout 5s >'$WORK/nosuch.log' 2>&1"
check "... saying so by name" grep -q 'no pool named "nosuch"' "$WORK/nosuch.log"

# interoperate with the standalone engine in both directions
check "np-peer client fills from the qpoold server pool" logrun "$WORK/np1.log" \
  "$PEER" client --target "127.0.0.1:$port" --min-cap 4 --max-cap 4 --wait-active 4 --timeout 20s
port2=$(free_port)
start_bg npsrv env QPOOL_LOG=debug "$PEER" server --listen "127.0.0.1:$port2" --max-cap 8 --report 100 --timeout 60s
wait_for "$WORK/npsrv.log" "listening on" 10
export QPOOL_STATUS_FILE="$WORK/cli2.status"
start_bg cli2 "$QPOOLD" client --name cli2 --target "127.0.0.1:$port2" --min-cap 4 \
  --max-cap 4 --chroot "$WORK/empty" --control "$WORK/cli2.sock"
unset QPOOL_STATUS_FILE
check "qpoold client pool fills from an np-peer server" wait_status "$WORK/cli2.status" cli2 idle_streams 4 15
check "reports agree: np-peer server holds 4 idle too" wait_for "$WORK/npsrv.log" "^stats.* active=4 " 5

# graceful stop
kill -TERM "$(pid_of cli2)"
check "qpoold exits 0 on SIGTERM" wait "$(pid_of cli2)"
check "the peer saw \"pool closed\"" wait_for "$WORK/npsrv.log" "closed: .*pool closed" 5
kill -TERM "$(pid_of cli)" "$(pid_of srv)"
wait "$(pid_of cli)"; rc1=$?
wait "$(pid_of srv)"; rc2=$?
check "both qpoold stop with exit code 0" test "$rc1" -eq 0 -a "$rc2" -eq 0
check "no qpool-worker is left" test -z "$(pgrep -f "$QP_BIN/qpool-worker" -P "$spid" || true)"
check "worker $wpid is gone" test ! -e "/proc/$wpid"
finish
