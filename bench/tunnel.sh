#!/usr/bin/env bash
# Tunnel benchmark (run by scripts/bench): iperf3 with 1 and 8 parallel TCP
# connections, and wrk requests/s against nginx, each measured directly on
# loopback and through qpool-tunnel in the same run; prints a table with
# the ratios. Usage: bench/tunnel.sh BUILD_DIR [SECONDS]
# Every process is stopped on exit; every wait is bounded.
set -euo pipefail
build=$(cd "${1:?usage: bench/tunnel.sh BUILD_DIR [SECONDS]}" && pwd)
secs=${2:-5}
for t in iperf3 wrk curl; do
  command -v "$t" >/dev/null || { echo "tunnel bench: $t missing (scripts/setup installs it)" >&2; exit 1; }
done
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
work=$(mktemp -d "${TMPDIR:-/tmp}/qpool-tbench.XXXXXX")
chmod 711 "$work"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
export XDG_RUNTIME_DIR="$work"
tcp_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
udp_port() { python3 -c 'import socket; s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_tcp() { for _ in $(seq 1 200); do python3 -c "import socket; socket.create_connection(('127.0.0.1',$1),1)" 2>/dev/null && return 0; sleep 0.05; done; return 1; }
wait_log() { for _ in $(seq 1 400); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.05; done; echo "tunnel bench: timed out waiting for '$2' in $1" >&2; cat "$1" >&2; return 1; }

# targets: nginx (1 KiB file) and an iperf3 server
mkdir -p "$work/www" "$work/nginx"
head -c 1024 /dev/urandom >"$work/www/1k"
chmod 755 "$work/www"
chmod 644 "$work/www/1k"
nport=$(tcp_port)
"$(dirname "$0")/../tests/helpers/nginx-conf" "$work/nginx" "$nport" "$work/www" >"$work/nginx/nginx.conf"
"$NGINX" -p "$work/nginx" -c "$work/nginx/nginx.conf" >/dev/null 2>&1 &
pids+=($!)
iport=$(tcp_port)
iperf3 -s -B 127.0.0.1 -p "$iport" >/dev/null 2>&1 &
pids+=($!)
wait_tcp "$nport"
wait_tcp "$iport"

# one tunnel pair per target, started one at a time
head -c 32 /dev/urandom | base64 >"$work/psk"
tunnel() { # NAME TARGET_PORT -> prints the listen port
  local name=$1 target=$2 tp lp
  tp=$(udp_port)
  lp=$(tcp_port)
  "$build/qpool-tunnel" server --tunnel "127.0.0.1:$tp" --listen "127.0.0.1:$lp" \
    --max-cap 256 --psk-file "$work/psk" >"$work/$name-s.log" 2>&1 &
  pids+=($!)
  "$build/qpool-tunnel" client --tunnel "127.0.0.1:$tp" --forward "127.0.0.1:$target" \
    --min-cap 64 --max-cap 256 --psk-file "$work/psk" >"$work/$name-c.log" 2>&1 &
  pids+=($!)
  wait_log "$work/$name-s.log" "tunnel client authenticated"
  echo "$lp"
}

iperf() { # PORT PARALLEL -> Mbit/s received
  iperf3 -c 127.0.0.1 -p "$1" -t "$secs" -P "$2" --json >"$work/iperf.json" 2>/dev/null ||
    { echo 0; return; }
  python3 -c "import json,sys; print(round(json.load(open(sys.argv[1]))['end']['sum_received']['bits_per_second']/1e6))" "$work/iperf.json"
}
wrk_rps() { # URL -> requests/s
  wrk -t2 -c64 -d"${secs}s" "$1" 2>/dev/null | awk '/^Requests\/sec:/ {printf "%d\n", $2}'
}

ilp=$(tunnel iperf "$iport")
d1=$(iperf "$iport" 1)
t1=$(iperf "$ilp" 1)
d8=$(iperf "$iport" 8)
t8=$(iperf "$ilp" 8)
wlp=$(tunnel web "$nport")
curl -sf -o /dev/null "http://127.0.0.1:$wlp/1k" # warm: the first stream pair
dw=$(wrk_rps "http://127.0.0.1:$nport/1k")
tw=$(wrk_rps "http://127.0.0.1:$wlp/1k")

ratio() { python3 -c "import sys; a,b=float(sys.argv[1] or 0),float(sys.argv[2] or 0); print('%.0f%%' % (100*b/a) if a else '-')" "$1" "$2"; }
printf '\n%-44s %12s %12s %8s\n' "tunnel (qpool-tunnel, ${secs} s each)" "direct" "tunnel" "ratio"
printf '%-44s %12s %12s %8s\n' "iperf3, 1 TCP connection (Mbit/s)" "$d1" "$t1" "$(ratio "$d1" "$t1")"
printf '%-44s %12s %12s %8s\n' "iperf3, 8 TCP connections (Mbit/s)" "$d8" "$t8" "$(ratio "$d8" "$t8")"
printf '%-44s %12s %12s %8s\n' "wrk -t2 -c64, nginx 1 KiB file (requests/s)" "$dw" "$tw" "$(ratio "$dw" "$tw")"
echo "direct: loopback TCP to iperf3 -s / nginx; tunnel: qpool-tunnel server+client"
echo "(Release, server --max-cap 256, client --min-cap 64) on the same 2 cores,"
echo "so the tunnel's 6 processes (2 tunnel ends, 2 qpoolds, 2 workers) share"
echo "them with the load generator and the target."
