#!/usr/bin/env bash
# A stream whose peer stopped reading must not hold back the other streams
# of its connection (the read-ahead is shared per stream, not capped as a
# sum): test_read_ahead's "sibling" mode on a 20 ms round trip, in a network
# namespace this test creates (loopback delayed 10 ms each way by
# nfq-delay at ingress, offloads off so each datagram is delayed on its
# own). Stream A moves bulk for 1 s, then its reader stops while its writer
# goes on; stream B then moves 32 MiB and must hold more than the minimum
# share in flight (on the sum rule it was held to 82 KB: 3 MB/s instead of
# 150+). Needs root, unshare, iptables (NFQUEUE) and nfq-delay.
. "$(dirname "$0")/lib.sh"
need_root
for t in unshare iptables ethtool; do
  command -v $t >/dev/null || { echo "SKIP: $t missing"; exit 77; }
done
NFQ="$QP_BIN/tests/nfq-delay"
BIN="$QP_BIN/tests/test_read_ahead"
cat >"$WORK/inner.sh" <<INNER
set -u
ip link set lo up
ethtool -K lo gro off gso off tso off >/dev/null 2>&1
for f in tx-udp-segmentation tx-gso-list rx-gro-list rx-udp-gro-forwarding; do
  ethtool -K lo \$f off >/dev/null 2>&1
done
iptables -t mangle -A PREROUTING -i lo -p udp -j NFQUEUE --queue-num 0 || exit 77
"$NFQ" --queue 0 --delay-ms 10 --stats "$WORK/nfq.stats" >"$WORK/nfq.log" 2>&1 &
nfq=\$!
sleep 0.3
timeout -k 5 90 "$BIN" sibling
rc=\$?
kill -TERM \$nfq; wait \$nfq
exit \$rc
INNER
rc=0
timeout -k 5 120 unshare -n bash "$WORK/inner.sh" >"$WORK/out.log" 2>"$WORK/err.log" || rc=$?
sed 's/^/# /' "$WORK/out.log"
[ $rc = 77 ] && { echo "SKIP: NFQUEUE unavailable in a new namespace"; exit 77; }
check "B moved 32 MiB beside a stalled A, not held to the minimum share" test $rc = 0
check "every datagram went through the delay stage" grep -qE "received [1-9][0-9]* released" "$WORK/nfq.stats"
finish
