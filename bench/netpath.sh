#!/usr/bin/env bash
# Impaired-path harness: two hosts, each in its own network namespace, joined
# by a veth pair, with delay, loss and reordering on every datagram. Used by
# the impaired-path benchmark (bench/impaired.sh) and by tests that need a
# real long or lossy path. Needs root.
#
# Source it and call the functions, or run it:
#   bench/netpath.sh up NAME RTT_MS LOSS_PCT [REORDER_PCT]   (prints the env)
#   bench/netpath.sh down NAME
#   bench/netpath.sh status NAME                             (drop/delay counters)
#   bench/netpath.sh summary NAME     (the same in one line, with loss in %)
#   bench/netpath.sh reap PREFIX      (removes paths PREFIX* of dead owners)
#
# After `netpath_up NAME ...`: host A is namespace NAME-a with address
# $NP_A_IP (10.77.0.1), host B is NAME-b with $NP_B_IP (10.77.0.2);
# `netpath_exec NAME a CMD...` runs a command on A. Both namespaces are new,
# made by the harness, so the addresses are private to them.
#
# How each datagram is impaired (this VM's kernel has no tc netem, and
# nftables' `queue` statement is missing):
#   - GRO, GSO and TSO are off on both veths, and so is UDP segmentation
#     offload (tx-udp-segmentation, on by itself even with GSO off: a
#     UDP_SEGMENT send of up to 64 datagrams would cross as one packet, and
#     be dropped or counted as one) and fraglist GSO, so every datagram and
#     TCP segment crosses as its own packet and is impaired on its own
#     (netpath_up checks it);
#   - loss: an nftables rule at ingress of each host drops LOSS_PCT percent
#     (numgen random, in steps of 0.01%), before the delay stage;
#   - delay and reordering: iptables-nft's NFQUEUE target at ingress of each
#     host hands every packet to nfq-delay (tests/helpers/nfq_delay.c), which
#     holds it RTT/2 ms (REORDER_PCT percent of them 1/4 RTT + 1 ms longer,
#     so later ones overtake them) and then accepts it. Delay at ingress,
#     not egress: a packet held at the sender's egress would still count
#     against TCP's small-queue limit and cap TCP, not the path.
# Both directions get the same profile.
#
# NP_NFQ_DELAY may name the nfq-delay binary (default: the first one found
# under build/*/tests/).
#
# Cleaning up: netpath_down stops every process still running in the two
# namespaces (SIGTERM, then SIGKILL after 2 s), then removes them. Each path
# records its owner, the shell that called netpath_up ($NP_OWNER, default
# $$); `netpath_reap PREFIX` removes the paths named PREFIX* whose owner is
# gone, e.g. left by a run that was killed, and namespaces PREFIX*-a/-b
# without a record. A script that owns its paths calls it at start with a
# prefix of its own and netpath_down from an EXIT trap.

NP_A_IP=10.77.0.1
NP_B_IP=10.77.0.2
NP_STATE_ROOT=${NP_STATE_ROOT:-/run/qpool-netpath}
# python3 for the RTT probe: the system one starts in ~50 ms, a pyenv shim in
# PATH can take a second
if [ -z "${NP_PYTHON:-}" ]; then
  if [ -x /usr/bin/python3 ]; then NP_PYTHON=/usr/bin/python3; else NP_PYTHON=python3; fi
fi

netpath_nfq_bin() {
  if [ -n "${NP_NFQ_DELAY:-}" ]; then
    echo "$NP_NFQ_DELAY"
    return
  fi
  local root
  root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
  local f
  for f in "$root"/build/*/tests/nfq-delay; do
    [ -x "$f" ] && { echo "$f"; return; }
  done
  return 1
}

netpath_can() { # exit 0 if this machine can run the harness
  [ "$(id -u)" -eq 0 ] || return 1
  command -v ip >/dev/null && command -v nft >/dev/null &&
    command -v iptables >/dev/null && command -v ethtool >/dev/null || return 1
  local t="qpnp-probe-$$"
  ip netns add "$t" 2>/dev/null || return 1
  ip netns del "$t"
}

netpath_exec() { # NAME a|b CMD...
  local n=$1 side=$2
  shift 2
  ip netns exec "$n-$side" "$@"
}

netpath_down() { # NAME: stops the delay stages and every process in the
  # namespaces, removes both namespaces
  local n=$1 st="$NP_STATE_ROOT/$1" p pids
  pids=$( (ip netns pids "$n-a"; ip netns pids "$n-b") 2>/dev/null | sort -un || true)
  if [ -n "$pids" ]; then
    # shellcheck disable=SC2086
    kill -TERM $pids 2>/dev/null || true
    for _ in $(seq 1 100); do
      pids=$( (ip netns pids "$n-a"; ip netns pids "$n-b") 2>/dev/null | sort -un || true)
      [ -z "$pids" ] && break
      sleep 0.02
    done
    # shellcheck disable=SC2086
    [ -z "$pids" ] || kill -KILL $pids 2>/dev/null || true
  fi
  if [ -d "$st" ]; then
    for p in "$st"/*.pid; do
      [ -f "$p" ] || continue
      kill -TERM "$(cat "$p")" 2>/dev/null || true
    done
    for p in "$st"/*.pid; do
      [ -f "$p" ] || continue
      for _ in $(seq 1 50); do
        kill -0 "$(cat "$p")" 2>/dev/null || break
        sleep 0.02
      done
      kill -KILL "$(cat "$p")" 2>/dev/null || true
    done
  fi
  ip netns del "$n-a" 2>/dev/null || true
  ip netns del "$n-b" 2>/dev/null || true
  rm -rf "$st"
}

netpath_up() { # NAME RTT_MS LOSS_PCT [REORDER_PCT]
  local n=$1 rtt=$2 loss=$3 reorder=${4:-0}
  local st="$NP_STATE_ROOT/$n" nfq
  nfq=$(netpath_nfq_bin) || {
    echo "netpath: nfq-delay not built (cmake --build BUILD --target nfq-delay)" >&2
    return 1
  }
  netpath_down "$n"
  mkdir -p "$st"
  echo "${NP_OWNER:-$$}" >"$st/owner"
  ip netns add "$n-a" && ip netns add "$n-b" || {
    echo "netpath: cannot create network namespaces" >&2
    return 1
  }
  ip link add np0 netns "$n-a" type veth peer name np1 netns "$n-b" || return 1
  local side dev ip
  for side in a b; do
    if [ $side = a ]; then dev=np0 ip=$NP_A_IP; else dev=np1 ip=$NP_B_IP; fi
    netpath_exec "$n" $side ip link set lo up
    netpath_exec "$n" $side ip addr add "$ip/24" dev $dev
    netpath_exec "$n" $side ip link set $dev up
    netpath_exec "$n" $side ethtool -K $dev gro off gso off tso off >/dev/null 2>&1 || true
    local f
    for f in tx-udp-segmentation tx-gso-list rx-gro-list rx-udp-gro-forwarding; do
      netpath_exec "$n" $side ethtool -K $dev $f off >/dev/null 2>&1 || true
    done
    local on
    on=$(netpath_exec "$n" $side ethtool -k $dev 2>/dev/null | grep -E \
      '^(generic-segmentation-offload|tcp-segmentation-offload|generic-receive-offload|tx-udp-segmentation|tx-gso-list): on') || true
    if [ -n "$on" ]; then
      echo "netpath: cannot turn off on $dev: $(echo $on | tr '\n' ' ')" >&2
      return 1
    fi
    # loss in basis points (0.01 %), at ingress, before the delay stage
    local bp
    bp=$(awk -v l="$loss" 'BEGIN { printf "%d", l * 100 + 0.5 }')
    netpath_exec "$n" $side nft -f - <<EOF || return 1
table inet qpnp {
  counter dropped {}
  counter passed {}
  chain in {
    type filter hook prerouting priority -300; policy accept;
    iifname "$dev" numgen random mod 10000 < $bp counter name dropped drop
    iifname "$dev" counter name passed
  }
}
EOF
    if [ "$rtt" != 0 ] || [ "$reorder" != 0 ]; then
      local half extra
      half=$(awk -v r="$rtt" 'BEGIN { printf "%.3f", r / 2 }')
      extra=$(awk -v r="$rtt" 'BEGIN { printf "%.3f", r / 4 + 1 }')
      netpath_exec "$n" $side iptables -t mangle -A PREROUTING -i $dev \
        -j NFQUEUE --queue-num 0 || return 1
      ip netns exec "$n-$side" "$nfq" --queue 0 --delay-ms "$half" \
        --reorder-pct "$reorder" --reorder-ms "$extra" --seed $RANDOM \
        --stats "$st/nfq-$side.stats" >"$st/nfq-$side.log" 2>&1 &
      echo $! >"$st/nfq-$side.pid"
      local ok=0
      for _ in $(seq 1 100); do
        grep -q ready "$st/nfq-$side.log" 2>/dev/null && { ok=1; break; }
        sleep 0.02
      done
      [ $ok = 1 ] || {
        echo "netpath: nfq-delay did not start on $n-$side:" >&2
        cat "$st/nfq-$side.log" >&2
        return 1
      }
    fi
  done
  # round trips through both stages: a broken stage fails here, and the
  # measured RTT is checked against the profile
  local got
  got=$(netpath_rtt "$n") || {
    echo "netpath: $n-a cannot reach $NP_B_IP over UDP" >&2
    return 1
  }
  echo "rtt_ms=$rtt loss_pct=$loss reorder_pct=$reorder measured_rtt_ms=$got" >"$st/profile"
}

netpath_rtt() { # NAME: median UDP round trip A->B->A in ms (10 probes)
  local n=$1
  netpath_exec "$n" b "$NP_PYTHON" -c '
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], 9))
s.settimeout(8)
try:
    while True:
        d, a = s.recvfrom(64)
        s.sendto(d, a)
        if d == b"end":
            break
except socket.timeout:
    pass
' "$NP_B_IP" &
  local echo_pid=$!
  sleep 0.2
  netpath_exec "$n" a "$NP_PYTHON" -c '
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(1)
rtts = []
for i in range(40):
    t = time.monotonic()
    s.sendto(b"p%d" % i, (sys.argv[1], 9))
    try:
        while True:
            d, _ = s.recvfrom(64)
            if d == b"p%d" % i:
                rtts.append((time.monotonic() - t) * 1000)
                break
    except socket.timeout:
        continue
    if len(rtts) == 10:
        break
s.sendto(b"end", (sys.argv[1], 9))
if not rtts:
    sys.exit(1)
rtts.sort()
print("%.1f" % rtts[len(rtts) // 2])
' "$NP_B_IP"
  local rc=$?
  kill "$echo_pid" 2>/dev/null
  wait "$echo_pid" 2>/dev/null
  return $rc
}

netpath_status() { # NAME: one line per host: drops and delay-stage counters
  local n=$1 st="$NP_STATE_ROOT/$1" side
  for side in a b; do
    local d p
    d=$(netpath_exec "$n" $side nft list counter inet qpnp dropped 2>/dev/null |
      grep -oE 'packets [0-9]+' | awk '{print $2}')
    p=$(netpath_exec "$n" $side nft list counter inet qpnp passed 2>/dev/null |
      grep -oE 'packets [0-9]+' | awk '{print $2}')
    if [ -f "$st/nfq-$side.pid" ]; then
      kill -USR1 "$(cat "$st/nfq-$side.pid")" 2>/dev/null || true
      sleep 0.05
    fi
    echo "host $side: ingress dropped ${d:-?} passed ${p:-?}; delay stage: $(cat "$st/nfq-$side.stats" 2>/dev/null || echo none)"
  done
}

netpath_summary() { # NAME: one line: measured RTT, drops per host, delay stage
  local n=$1 st="$NP_STATE_ROOT/$1" side out="" d p
  out="rtt $(sed -n 's/.*measured_rtt_ms=\([^ ]*\).*/\1/p' "$st/profile" 2>/dev/null) ms"
  for side in a b; do
    d=$(netpath_exec "$n" $side nft list counter inet qpnp dropped 2>/dev/null |
      grep -oE 'packets [0-9]+' | awk '{print $2}')
    p=$(netpath_exec "$n" $side nft list counter inet qpnp passed 2>/dev/null |
      grep -oE 'packets [0-9]+' | awk '{print $2}')
    out="$out; into $side: dropped $(awk -v d="${d:-0}" -v p="${p:-0}" \
      'BEGIN { printf "%d/%d (%.2f%%)", d, d + p, (d + p) ? 100 * d / (d + p) : 0 }')"
    if [ -f "$st/nfq-$side.pid" ]; then
      kill -USR1 "$(cat "$st/nfq-$side.pid")" 2>/dev/null || true
      sleep 0.05
      out="$out, delayed $(sed -n 's/.* released \([0-9]*\).*peak_held \([0-9]*\).*reordered \([0-9]*\).*overruns \([0-9]*\).*/\1 (peak held \2, reordered \3, overruns \4)/p' \
        "$st/nfq-$side.stats" 2>/dev/null)"
    fi
  done
  echo "$out"
}

netpath_reap() { # PREFIX: netpath_down the paths PREFIX* whose owner is gone
  local pre=$1 d n o
  [ -n "$pre" ] || return 1
  for d in "$NP_STATE_ROOT/$pre"*; do
    [ -d "$d" ] || continue
    n=$(basename "$d")
    o=$(cat "$d/owner" 2>/dev/null || true)
    if [ -z "$o" ] || ! kill -0 "$o" 2>/dev/null; then
      netpath_down "$n"
    fi
  done
  # namespaces without a record (their owner died inside netpath_up/down)
  for n in $(ip netns list 2>/dev/null | awk '{print $1}' | grep "^$pre" |
    sed -E 's/-[ab]$//' | sort -u); do
    [ -d "$NP_STATE_ROOT/$n" ] || netpath_down "$n"
  done
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  set -euo pipefail
  case "${1:-}" in
  up)
    [ $# -ge 4 ] || { echo "usage: $0 up NAME RTT_MS LOSS_PCT [REORDER_PCT]" >&2; exit 2; }
    netpath_up "$2" "$3" "$4" "${5:-0}"
    echo "A: ip netns exec $2-a ... ($NP_A_IP)  B: ip netns exec $2-b ... ($NP_B_IP)"
    ;;
  down) netpath_down "${2:?usage: $0 down NAME}" ;;
  status) netpath_status "${2:?usage: $0 status NAME}" ;;
  summary) netpath_summary "${2:?usage: $0 summary NAME}" ;;
  reap) netpath_reap "${2:?usage: $0 reap PREFIX}" ;;
  *)
    sed -n '2,/^$/p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
    ;;
  esac
fi
