#!/usr/bin/env bash
# Streams ended while our data on them is still unacknowledged, on a lossy
# path (network namespace, nftables drops ~12% of the datagrams both ways):
# applications that close in the middle of a transfer (STOP_SENDING + FIN to
# a peer still sending), pools flushed while their IDs are in flight
# (RESET_STREAM), and a full server refusing streams during their setup.
# Under ASan this catches any stream buffer freed while ngtcp2 still
# references it (the rule in worker/internal.h); every byte that arrives must
# be the peer's pattern.
. "$(dirname "$0")/lib.sh"
need_root
NS=qpt-rl-$$
for n in $(ip netns list 2>/dev/null | grep -oE '^qpt-rl-[0-9]+'); do # stale, of a killed run
  kill -0 "${n##*-}" 2>/dev/null || ip netns del "$n" 2>/dev/null || true
done
ip netns add "$NS" 2>/dev/null || { echo "SKIP: cannot create network namespaces"; exit 77; }
trap 'cleanup; ip netns del "$NS" 2>/dev/null || true' EXIT
trap 'exit 143' TERM INT
ip -n "$NS" link set lo up
NSX=(ip netns exec "$NS")
in_ns() { "${NSX[@]}" "$@"; }
lossy() { # lossy PORT PERCENT: drop that share of the port's datagrams
  in_ns nft -f - <<EOF
table inet loss {
  chain out {
    type filter hook output priority 0; policy accept;
    udp dport $1 numgen random mod 100 < $2 counter drop
    udp sport $1 numgen random mod 100 < $2 counter drop
  }
}
EOF
}
port=4433
lossy $port 12

# 1. the server application closes each stream after 256 KiB of the client's
#    2 MiB: the client's unacknowledged data meets STOP_SENDING
start_bg srv1 "${NSX[@]}" "$PEER" server --listen "127.0.0.1:$port" --max-cap 64 \
  --streams 24 --bytes 2097152 --abort-after 262144 --tolerate-aborts --timeout 100s
wait_for "$WORK/srv1.log" "listening on" 10
if in_ns "$PEER" client --target "127.0.0.1:$port" --min-cap 24 --max-cap 64 \
  --min-interval 50ms --max-interval 200ms --streams 24 --bytes 2097152 \
  --tolerate-aborts --timeout 100s >"$WORK/cli1.log" 2>&1; then
  ok "server closes mid-transfer: client side ($(grep -o 'np-test:.*' "$WORK/cli1.log"))"
else
  not_ok "server closes mid-transfer: client side"; tail -20 "$WORK/cli1.log"
fi
if wait "$(pid_of srv1)"; then
  ok "server closes mid-transfer: server side ($(grep -o 'np-test:.*' "$WORK/srv1.log"))"
else
  not_ok "server closes mid-transfer: server side"; tail -20 "$WORK/srv1.log"
fi

# 2. the same with the client application closing early
start_bg srv2 "${NSX[@]}" "$PEER" server --listen "127.0.0.1:$port" --max-cap 64 \
  --streams 24 --bytes 2097152 --tolerate-aborts --timeout 100s
wait_for "$WORK/srv2.log" "listening on" 10
if in_ns "$PEER" client --target "127.0.0.1:$port" --min-cap 24 --max-cap 64 \
  --min-interval 50ms --max-interval 200ms --streams 24 --bytes 2097152 \
  --abort-after 262144 --tolerate-aborts --timeout 100s >"$WORK/cli2.log" 2>&1; then
  ok "client closes mid-transfer: client side ($(grep -o 'np-test:.*' "$WORK/cli2.log"))"
else
  not_ok "client closes mid-transfer: client side"; tail -20 "$WORK/cli2.log"
fi
if wait "$(pid_of srv2)"; then
  ok "client closes mid-transfer: server side"
else
  not_ok "client closes mid-transfer: server side"; tail -20 "$WORK/srv2.log"
fi

# 3. a small server that refuses streams beyond max_cap and flushes its pool
#    every 150 ms (RESET_STREAM on streams whose ID may still be in flight),
#    and two clients that flush theirs too
start_bg srv3 "${NSX[@]}" "$PEER" server --listen "127.0.0.1:$port" --max-cap 6 \
  --flush-every 150ms --report 500 --duration 5s --timeout 30s
wait_for "$WORK/srv3.log" "listening on" 10
for c in a b; do
  start_bg "cli3$c" "${NSX[@]}" "$PEER" client --target "127.0.0.1:$port" --min-cap 16 \
    --max-cap 32 --min-interval 20ms --max-interval 50ms --setup-timeout 2s \
    --flush-every 230ms --report 500 --duration 4s --timeout 30s
done
for n in cli3a cli3b srv3; do
  if wait "$(pid_of $n)"; then
    ok "refusals and flushes under loss: $n ran to its end ($(grep '^final' "$WORK/$n.log" | grep -oE 'created=[0-9]+ taken=[0-9]+ failed=[0-9]+ refused=[0-9]+'))"
  else
    not_ok "refusals and flushes under loss: $n"; tail -20 "$WORK/$n.log"
  fi
done
sline=$(grep '^final' "$WORK/srv3.log" || true)
check "the server refused streams (refused=$(stat_of "$sline" refused))" \
  test "$(stat_of "$sline" refused)" -gt 0
check "datagrams were really dropped ($(in_ns nft list ruleset | grep -oE 'packets [0-9]+' | paste -sd' '))" \
  bash -c "in_ns() { ip netns exec $NS \"\$@\"; }; [ \$(in_ns nft list ruleset | grep -oE 'packets [0-9]+' | awk '{s+=\$2} END {print s}') -gt 100 ]"
finish
