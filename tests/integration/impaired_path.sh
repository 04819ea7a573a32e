#!/usr/bin/env bash
# Issue 10's acceptance on a real long, lossy path: two hosts in network
# namespaces made by bench/netpath.sh (A 10.77.0.1, B 10.77.0.2), 40 ms
# round trip and 1% loss on every datagram both ways (nftables drops at
# ingress, nfq-delay holds each packet 20 ms). Over it:
#   1. a qpoold server pool in B and a qpoold client pool in A: 4 MiB of
#      random data B->A and another 4 MiB A->B, each on a taken stream
#      (qpoolctl incoming / outgoing), SHA-256 equal on the receiving side;
#   2. qpool-tunnel (server end in B, client end in A forwarding to nginx in
#      A): curl in B downloads a 4 MiB random file and uploads another (PUT),
#      SHA-256 equal;
#   3. pacing is on: qpoolctl conn --json of each sending pool shows the
#      controller (bbr, the default) with pacing_rate_sec > 0, a smoothed RTT
#      of the path's 40 ms, pacing_waits > 0 (passes held at the pacing
#      deadline: sends spaced) and max_burst (bytes sent without a 100 us
#      gap) reported;
#   4. the impairment happened: drops on both hosts, measured RTT >= 35 ms.
# Needs root, network namespaces, nft/iptables/ethtool, nfq-delay built,
# nginx and curl; otherwise SKIP (exit 77). Every transfer is bounded by
# 60 s; processes and namespaces are removed on exit, also on failure.
. "$(dirname "$0")/lib.sh"
. "$QP_SRC/bench/netpath.sh"
CTL="$QP_BIN/qpoolctl"
TUN="$QP_BIN/qpool-tunnel"
export NP_NFQ_DELAY="$QP_BIN/tests/nfq-delay"
PY=python3
[ -x /usr/bin/python3 ] && PY=/usr/bin/python3 # a pyenv shim starts in ~1 s
SIZE=4194304
XFER_SECS=60

need_root
[ -x "$NP_NFQ_DELAY" ] ||
  { echo "SKIP: $NP_NFQ_DELAY not built (cmake --build BUILD --target nfq-delay)"; exit 77; }
netpath_can ||
  { echo "SKIP: no network namespaces, or ip/nft/iptables/ethtool missing (scripts/setup installs them)"; exit 77; }
for t in nginx curl; do
  command -v "$t" >/dev/null || [ -x "/usr/sbin/$t" ] ||
    { echo "SKIP: $t not installed (scripts/setup installs it)"; exit 77; }
done
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

NS_PREFIX=qpt-imp-
NS=$NS_PREFIX$$
netpath_reap "$NS_PREFIX" # paths of runs that were killed
# on exit the namespaces' processes stop first (netpath_down), then lib.sh's
# cleanup runs with the script's status in $? (set +e: a failed status must
# not cut the handler short). A SIGTERM that lands while bash 5.2 parses a
# $(...) makes it fail to parse the TERM trap ("trap: line 2: unexpected EOF
# while looking for matching `)'") and exit 2 instead of 143: the EXIT
# handler still runs.
status_is() { return "$1"; }
on_exit() {
  local rc=$?
  set +e
  netpath_down "$NS" >/dev/null 2>&1
  status_is $rc
  cleanup
}
trap on_exit EXIT
trap 'exit 143' TERM INT
T0=$(date +%s%N)
ms_since() { echo $((($(date +%s%N) - $1) / 1000000)); }

check "path up: 40 ms RTT, 1% loss both ways ($NS-a $NP_A_IP, $NS-b $NP_B_IP)" \
  netpath_up "$NS" 40 1
[ "$FAILED" -eq 0 ] || { netpath_status "$NS" 2>&1 | sed 's/^/# /'; finish; exit 1; }
profile=$(cat "$NP_STATE_ROOT/$NS/profile")
echo "# $profile ($(ms_since "$T0") ms)"
IN_A=(ip netns exec "$NS-a") # exec'd: a background PID is the program's own
IN_B=(ip netns exec "$NS-b")
sha() { sha256sum <"$1" | cut -d' ' -f1; }
# check_or_show LOG "description" command...: check, showing LOG on failure
check_or_show() {
  local f=$1
  shift
  local before=$FAILED
  check "$@"
  [ "$FAILED" = "$before" ] || sed 's/^/#   /' "$f" 2>/dev/null || true
}

chmod 711 "$WORK" # nginx's and qpoold's workers (nobody) go through it
mkdir -p "$WORK/empty" "$WORK/run" "$WORK/www/up" "$WORK/nginx"
export XDG_RUNTIME_DIR="$WORK/run" # qpool-tunnel's embedded qpoolds
head -c $SIZE /dev/urandom >"$WORK/b.data"        # B -> A through qpoold
head -c $SIZE /dev/urandom >"$WORK/a.data"        # A -> B through qpoold
head -c $SIZE /dev/urandom >"$WORK/www/bulk"      # tunnel download (A -> B)
head -c $SIZE /dev/urandom >"$WORK/upload.data"   # tunnel upload (B -> A)

# ---- 1. qpoold pools: server in B, client in A ------------------------------
port=4433
export QPOOL_STATUS_FILE="$WORK/srv.status"
start_bg srv "${IN_B[@]}" "$QPOOLD" server --name s --listen "$NP_B_IP:$port" --max-cap 8 \
  --chroot "$WORK/empty" --control "$WORK/srv.sock"
wait_for "$WORK/srv.log" "running 1 pool" 15
export QPOOL_STATUS_FILE="$WORK/cli.status"
start_bg cli "${IN_A[@]}" "$QPOOLD" client --name c --target "$NP_B_IP:$port" --min-cap 2 \
  --max-cap 2 --min-interval 200ms --chroot "$WORK/empty" --control "$WORK/cli.sock"
unset QPOOL_STATUS_FILE
check "qpoold client pool in A filled from the server pool in B across the path" \
  wait_status "$WORK/cli.status" c idle_streams 2 20

# xfer NAME SRC_FILE(B sends)|"" SRC_FILE(A sends)|"": one stream taken by
# qpoolctl incoming in B and outgoing in A; each end's stdin is its file (or
# /dev/null), its stdout goes to $WORK/NAME.{b,a}.out. Bounded by $XFER_SECS.
xfer() {
  local n=$1 bin=${2:-/dev/null} ain=${3:-/dev/null} bpid id="" i rc=0 brc=0
  timeout -k 3 $XFER_SECS "${IN_B[@]}" "$CTL" --control "$WORK/srv.sock" \
    incoming --timeout 20s s <"$bin" >"$WORK/$n.b.out" 2>"$WORK/$n.b.err" &
  bpid=$!
  PIDS+=("$bpid")
  for ((i = 0; i < 400; i++)); do
    id=$(grep -m1 -oE '^[0-9a-f]{8}$' "$WORK/$n.b.err" 2>/dev/null) && break
    kill -0 "$bpid" 2>/dev/null || break
    sleep 0.05
  done
  if [ -z "$id" ]; then
    echo "# $n: no stream taken in B:" >&2
    sed 's/^/#   /' "$WORK/$n.b.err" >&2
    wait "$bpid" || true
    return 1
  fi
  timeout -k 3 $XFER_SECS "${IN_A[@]}" "$CTL" --control "$WORK/cli.sock" \
    outgoing --timeout 20s c "$id" <"$ain" >"$WORK/$n.a.out" 2>"$WORK/$n.a.err" || rc=$?
  wait "$bpid" || brc=$?
  [ $rc != 0 ] || rc=$brc
  [ $rc = 0 ] || { echo "# $n: qpoolctl exit $rc" >&2; sed 's/^/#   /' "$WORK/$n".?.err >&2; }
  return $rc
}

# paced SOCK POOL REMOTE_IP: qpoolctl conn --json of the sending pool's
# connection: it goes to REMOTE_IP, its controller paces (bbr, the default:
# pacing_rate_sec > 0), its smoothed RTT is the path's; pacing_waits > 0 and
# max_burst reported. Prints what it saw as "# " lines.
paced() {
  local f="$WORK/conn.$2.json"
  "$CTL" --control "$1" conn --json "$2" >"$f" 2>"$f.err" ||
    { sed 's/^/# qpoolctl conn: /' "$f.err"; return 1; }
  "$PY" - "$f" "$3" <<'EOF'
import json, sys
c = json.load(open(sys.argv[1]))
bad = []
note = ["controller %s pacing_rate_sec %s cwnd %s rtt %.1f ms remote %s" % (
    c.get("congestion_control"), c.get("pacing_rate_sec"), c.get("cwnd"),
    (c.get("rtt_ns") or 0) / 1e6, c.get("remote"))]
if c.get("congestion_control") != "bbr":
    bad.append("controller %r, not the default bbr" % c.get("congestion_control"))
if not (c.get("pacing_rate_sec") or 0) > 0:
    bad.append("pacing_rate_sec is not > 0")
if not str(c.get("remote", "")).startswith(sys.argv[2] + ":"):
    bad.append("remote is not %s" % sys.argv[2])
if not (c.get("rtt_ns") or 0) >= 35e6:
    bad.append("smoothed RTT below 35 ms")
note.append("pacing_waits %s max_burst %s" % (c.get("pacing_waits"),
                                              c.get("max_burst")))
# pacing_waits: write passes that stopped at ngtcp2's pacing deadline with
# data, window and credit left, i.e. sends held back to be spaced
if not (c.get("pacing_waits") or 0) > 0:
    bad.append("pacing_waits is not > 0")
# max_burst: the most bytes sent with no gap of 100 us, measured at each
# send: reported (how large it may be depends on the rate: under 1 ms per
# quantum ngtcp2 lets quanta go back to back, docs/performance.md)
if not (c.get("max_burst") or 0) > 0:
    bad.append("max_burst not reported")
if "read_ahead" in c:
    note.append("read_ahead %s" % c["read_ahead"])
for n in note:
    print("# " + n)
for b in bad:
    print("# FAIL: " + b)
sys.exit(1 if bad else 0)
EOF
}

t=$(date +%s%N)
check "4 MiB B->A through the qpoold pools within ${XFER_SECS} s" xfer ba "$WORK/b.data" ""
echo "# B->A: $(ms_since "$t") ms"
check "... byte-exact: SHA-256 of what A received equals B's file" \
  test "$(sha "$WORK/ba.a.out")" = "$(sha "$WORK/b.data")"
check "... and B's end read A's end of file (nothing else)" test ! -s "$WORK/ba.b.out"
check "the sender (server pool in B) paces: bbr, pacing_rate_sec > 0, RTT of the path" \
  paced "$WORK/srv.sock" s "$NP_A_IP"

t=$(date +%s%N)
check "4 MiB A->B through the qpoold pools within ${XFER_SECS} s" xfer ab "" "$WORK/a.data"
echo "# A->B: $(ms_since "$t") ms"
check "... byte-exact: SHA-256 of what B received equals A's file" \
  test "$(sha "$WORK/ab.b.out")" = "$(sha "$WORK/a.data")"
check "... and A's end read B's end of file (nothing else)" test ! -s "$WORK/ab.a.out"
check "the sender (client pool in A) paces: bbr, pacing_rate_sec > 0, RTT of the path" \
  paced "$WORK/cli.sock" c "$NP_B_IP"
if ! grep -q pacing_waits "$WORK/conn.c.json" 2>/dev/null; then
  echo "# pacing_waits not reported yet (qpoolctl conn --json): only pacing_rate_sec checked"
fi
kill -TERM "$(pid_of cli)" "$(pid_of srv)" 2>/dev/null || true

# ---- 2. qpool-tunnel: server end in B, client end in A, nginx in A ----------
"$QP_SRC/tests/helpers/nginx-conf" "$WORK/nginx" 8080 "$WORK/www" |
  sed -E 's#^( *server \{ listen [^;]*; root [^;]*;) \}$#\1 location /up/ { dav_methods PUT; client_max_body_size 64m; } }#' \
    >"$WORK/nginx/nginx.conf"
chmod 755 "$WORK/www"
chmod 777 "$WORK/www/up" # nginx's worker (nobody) stores the upload there
chmod 644 "$WORK/www/bulk"
check "nginx config takes uploads (PUT) under /up/" grep -q dav_methods "$WORK/nginx/nginx.conf"
start_bg nginx "${IN_A[@]}" "$NGINX" -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf"
head -c 32 /dev/urandom | base64 >"$WORK/psk"
tport=4434 lport=8081
start_bg tsrv "${IN_B[@]}" "$TUN" server --tunnel "$NP_B_IP:$tport" --listen "$NP_B_IP:$lport" \
  --psk-file "$WORK/psk"
wait_for "$WORK/tsrv.log" "waiting for the client" 20
start_bg tcli "${IN_A[@]}" "$TUN" client --tunnel "$NP_B_IP:$tport" --forward "127.0.0.1:8080" \
  --psk-file "$WORK/psk"
check "the tunnel's ends authenticate each other across the path" \
  wait_for "$WORK/tsrv.log" "tunnel client authenticated" 30
wait_for "$WORK/tcli.log" "connected to the tunnel server" 10 || true
url="http://$NP_B_IP:$lport"

t=$(date +%s%N)
check_or_show "$WORK/curl-get.log" \
  "curl in B downloads 4 MiB from nginx in A through the tunnel within ${XFER_SECS} s" \
  logrun "$WORK/curl-get.log" "${IN_B[@]}" curl -sS --retry 3 --retry-connrefused \
  --max-time $XFER_SECS -o "$WORK/download" "$url/bulk"
echo "# download: $(ms_since "$t") ms"
check "... SHA-256 equal" test "$(sha "$WORK/download")" = "$(sha "$WORK/www/bulk")"

t=$(date +%s%N)
code=$("${IN_B[@]}" curl -sS --max-time $XFER_SECS -H 'Expect:' -T "$WORK/upload.data" \
  -o /dev/null -w '%{http_code}' "$url/up/upload" 2>"$WORK/curl-put.log" || true)
echo "# upload: $(ms_since "$t") ms"
check_or_show "$WORK/curl-put.log" \
  "curl in B uploads (PUT) 4 MiB to nginx in A through the tunnel (HTTP $code)" \
  test "$code" = 201 -o "$code" = 204
check "... SHA-256 of the stored file equal" \
  test "$(sha "$WORK/www/up/upload" 2>/dev/null)" = "$(sha "$WORK/upload.data")"

# ---- 4. the impairment happened ------------------------------------------------
status=$(netpath_status "$NS" 2>&1) || true
sed 's/^/# /' <<<"$status"
dropped() { sed -nE "s/^host $1: ingress dropped ([0-9]+) .*/\1/p" <<<"$status"; }
da=$(dropped a) db=$(dropped b)
check "datagrams were dropped on the way into A (${da:-?}) and into B (${db:-?})" \
  test "${da:-0}" -gt 0 -a "${db:-0}" -gt 0
rtt=$(sed -nE 's/.*measured_rtt_ms=([0-9.]+).*/\1/p' <<<"$profile")
check "the path's measured RTT (${rtt:-?} ms) is at least 35 ms" \
  awk -v r="${rtt:-0}" 'BEGIN { exit !(r >= 35) }'
echo "# total $(ms_since "$T0") ms"
finish
