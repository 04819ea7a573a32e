#!/usr/bin/env bash
# Client-IP filtering in qpoold, from test hosts in network namespaces this
# test creates (documentation address ranges on veth pairs): the allowed host
# gets streams, the other never completes a handshake (it is told
# "unauthorized IP" statelessly) and qpoold counts it. IPv4 and IPv6.
. "$(dirname "$0")/lib.sh"
need_root
command -v ip >/dev/null || { echo "SKIP: iproute2 missing"; exit 77; }
tag=qp$$
S=${tag}s A=${tag}a B=${tag}b
netns_cleanup() { for ns in "$S" "$A" "$B"; do ip netns del "$ns" 2>/dev/null || true; done; }
trap 'netns_cleanup; cleanup' EXIT
# three hosts: S (qpoold) linked to A and to B; nothing touches the root
# namespace (which may filter non-loopback traffic)
for ns in "$S" "$A" "$B"; do
  ip netns add "$ns" || { echo "SKIP: cannot create network namespaces"; exit 77; }
  ip -n "$ns" link set lo up
done
ip link add sa netns "$S" type veth peer name as netns "$A"
ip link add sb netns "$S" type veth peer name bs netns "$B"
ip -n "$S" addr add 192.0.2.1/24 dev sa; ip -n "$S" -6 addr add 2001:db8:a::1/64 dev sa nodad
ip -n "$S" addr add 198.51.100.1/24 dev sb; ip -n "$S" -6 addr add 2001:db8:b::1/64 dev sb nodad
ip -n "$A" addr add 192.0.2.2/24 dev as; ip -n "$A" -6 addr add 2001:db8:a::2/64 dev as nodad
ip -n "$B" addr add 198.51.100.2/24 dev bs; ip -n "$B" -6 addr add 2001:db8:b::2/64 dev bs nodad
ip -n "$S" link set sa up; ip -n "$S" link set sb up
ip -n "$A" link set as up; ip -n "$B" link set bs up
# B reaches the IPv6 pool address on S's other link through S
ip -n "$B" -6 route add 2001:db8:a::/64 via 2001:db8:b::1

p4=$((20000 + RANDOM % 20000)); p6=$((p4 + 1))
cat >"$WORK/q.conf" <<CONF
[global]
workers = 1
chroot = $WORK/empty
control = $WORK/q.sock

[pool v4a]
mode = server
listen = 192.0.2.1:$p4
max_cap = 4
client_ip = 192.0.2.0/30

[pool v4b]
mode = server
listen = 198.51.100.1:$p4
max_cap = 4
client_ip = 192.0.2.2

[pool v6]
mode = server
listen = [2001:db8:a::1]:$p6
max_cap = 4
client_ip = 2001:db8:a::/64
CONF
export QPOOL_STATUS_FILE="$WORK/q.status"
start_bg q ip netns exec "$S" "$QPOOLD" --config "$WORK/q.conf"
unset QPOOL_STATUS_FILE
wait_for "$WORK/q.log" "running 3 pool" 10

in_ns() { local ns=$1; shift; ip netns exec "$ns" "$@"; }
check "v4: allowed host A (192.0.2.2, in 192.0.2.0/30) gets streams" logrun "$WORK/a4.log" \
  in_ns "$A" "$PEER" client --target "192.0.2.1:$p4" --min-cap 4 --max-cap 4 --wait-active 4 --timeout 20s
check "v4: host B (198.51.100.2) is refused with \"unauthorized IP\"" logrun "$WORK/b4.log" \
  in_ns "$B" "$PEER" client --target "198.51.100.1:$p4" --min-cap 4 --max-cap 4 \
  --expect-error "unauthorized IP" --timeout 20s
check "... and never held a stream" grep -q "^final.* active=0 .*created=0 " "$WORK/b4.log"
check "qpoold counted B's rejection" wait_status_ge "$WORK/q.status" v4b rejected_ips 1 5
check "no connection reached pool v4b's worker" wait_status "$WORK/q.status" v4b connections 0 2
check "v6: host A (2001:db8:a::2) gets streams" logrun "$WORK/a6.log" \
  in_ns "$A" "$PEER" client --target "[2001:db8:a::1]:$p6" --min-cap 4 --max-cap 4 --wait-active 4 --timeout 20s
check "v6: host B (2001:db8:b::2) is refused" logrun "$WORK/b6.log" \
  in_ns "$B" "$PEER" client --target "[2001:db8:a::1]:$p6" --min-cap 4 --max-cap 4 \
  --expect-error "unauthorized IP" --timeout 20s
check "qpoold counted the IPv6 rejection" wait_status_ge "$WORK/q.status" v6 rejected_ips 1 5
kill -TERM "$(pid_of q)"; wait "$(pid_of q)" || true
finish
