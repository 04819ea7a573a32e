#!/usr/bin/env bash
# qpool-tunnel with clients and servers nobody here wrote: curl fetches
# files of 1 KiB to 256 MiB from nginx through the tunnel (SHA-256 equal),
# 200 curls at once, iperf3 both directions. The control stream is 00000000
# on both ends (checked with qpoolctl as the peer). Bad input: a wrong
# pre-shared key, garbage on the control stream (both directions), an
# unreachable forward target, a user connection cut mid-transfer — each ends
# with a clear log line and the tunnel keeps serving. The client reconnects
# when the server end restarts. No fd leak.
. "$(dirname "$0")/lib.sh"
TUN="$QP_BIN/qpool-tunnel"
CTL="$QP_BIN/qpoolctl"
for t in nginx curl iperf3; do
  command -v "$t" >/dev/null || [ -x "/usr/sbin/$t" ] ||
    { echo "SKIP: $t not installed (scripts/setup installs it)"; exit 77; }
done
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
tcp_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
export XDG_RUNTIME_DIR="$WORK/run"
mkdir -p "$XDG_RUNTIME_DIR" "$WORK/www" "$WORK/nginx/logs" "$WORK/empty"

# --- nginx on loopback, serving generated files
# nginx's workers run as another user: let them in
chmod 711 "$WORK"
chmod 755 "$WORK/www"
for spec in 1k:1024 64k:65536 1m:1048576 16m:16777216 256m:268435456; do
  head -c "${spec#*:}" /dev/urandom >"$WORK/www/${spec%%:*}"
done
chmod 644 "$WORK"/www/*
nport=$(tcp_port)
"$QP_SRC/tests/helpers/nginx-conf" "$WORK/nginx" "$nport" "$WORK/www" >"$WORK/nginx/nginx.conf"
start_nginx() {
  start_bg nginx "$NGINX" -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf"
  for _ in $(seq 1 100); do curl -sf -o /dev/null "http://127.0.0.1:$nport/1k" && return 0; sleep 0.05; done
  return 1
}
check "nginx serves on 127.0.0.1:$nport" start_nginx

# --- the tunnel
tport=$(free_port)
lport=$(tcp_port)
head -c 32 /dev/urandom | base64 >"$WORK/psk"
start_server() {
  start_bg tsrv "$TUN" server --tunnel "127.0.0.1:$tport" --listen "127.0.0.1:$lport" \
    --psk-file "$WORK/psk"
}
start_server
wait_for "$WORK/tsrv.log" "waiting for the client" 20
start_bg tcli "$TUN" client --tunnel "127.0.0.1:$tport" --forward "127.0.0.1:$nport" \
  --psk-file "$WORK/psk"
check "the ends authenticate each other" wait_for "$WORK/tsrv.log" "tunnel client authenticated" 20
wait_for "$WORK/tcli.log" "connected to the tunnel server" 10
url="http://127.0.0.1:$lport"

for f in 1k 64k 1m 16m 256m; do
  want=$(sha256sum <"$WORK/www/$f" | cut -d' ' -f1)
  got=$(curl -sS --max-time 120 "$url/$f" | sha256sum | cut -d' ' -f1)
  check "curl $f through the tunnel: SHA-256 equal" test "$got" = "$want"
done

# --- 200 concurrent curls
seq 1 200 >"$WORK/n"
start=$(date +%s%3N)
xargs -P 200 -I{} sh -c "curl -sS --max-time 60 -o '$WORK/c.{}' '$url/64k' || echo fail {}" <"$WORK/n" >"$WORK/conc.log" 2>&1
dur=$(($(date +%s%3N) - start))
want=$(sha256sum <"$WORK/www/64k" | cut -d' ' -f1)
okc=0
for i in $(seq 1 200); do
  [ "$(sha256sum <"$WORK/c.$i" 2>/dev/null | cut -d' ' -f1)" = "$want" ] && okc=$((okc + 1))
done
check "200 concurrent curls all complete byte-exact ($okc of 200, ${dur} ms)" test "$okc" -eq 200

# --- iperf3 both directions (its control and data connections both tunnelled)
iport=$(tcp_port)
start_bg iperf "iperf3" -s -B 127.0.0.1 -p "$iport"
sleep 0.5
kill -TERM "$(pid_of tcli)"; wait "$(pid_of tcli)" || true
start_bg tcli2 "$TUN" client --tunnel "127.0.0.1:$tport" --forward "127.0.0.1:$iport" \
  --psk-file "$WORK/psk"
check "the client end reconnects (new control stream) after it restarted" \
  wait_for "$WORK/tcli2.log" "connected to the tunnel server" 30
for dir in "" "-R"; do
  name=${dir:+reverse}
  check "iperf3 ${name:-forward} through the tunnel (2 s)" logrun "$WORK/iperf$dir.json" \
    timeout 60 iperf3 -c 127.0.0.1 -p "$lport" -t 2 $dir --json
  bps=$(python3 -c "import json,sys; print(int(json.load(open(sys.argv[1]))['end']['sum_received']['bits_per_second']))" "$WORK/iperf$dir.json" 2>/dev/null || echo 0)
  echo "# iperf3 ${name:-forward}: $((bps / 1000000)) Mbit/s"
  check "... moved data ($((bps / 1000000)) Mbit/s)" test "$bps" -gt 0
done
kill -TERM "$(pid_of tcli2)"; wait "$(pid_of tcli2)" || true
start_bg tcli3 "$TUN" client --tunnel "127.0.0.1:$tport" --forward "127.0.0.1:$nport" \
  --psk-file "$WORK/psk"
wait_for "$WORK/tcli3.log" "connected to the tunnel server" 30
check "back to nginx" bash -c "curl -sSf --max-time 20 -o /dev/null '$url/1k'"
tpid=$(pid_of tsrv)
fds_before=$(ls /proc/"$tpid"/fd | wc -l)
ls -l /proc/"$tpid"/fd >"$WORK/fds_before.txt" 2>&1 || true

# --- an unreachable forward target: nginx down for a moment
kill -TERM "$(pid_of nginx)"; wait "$(pid_of nginx)" || true
code=$(curl -sS --max-time 20 -o /dev/null -w '%{http_code}' "$url/1k" 2>/dev/null || true)
check "target down: the user connection is closed, not hung (curl got '$code')" test "$code" = 000
check "... with a clear log line on the client end" \
  wait_for "$WORK/tcli3.log" "forward 127.0.0.1:$nport: Connection refused: closing stream" 10
check "nginx back" start_nginx
check "... and the tunnel serves again" bash -c "curl -sSf --max-time 20 -o /dev/null '$url/1m'"

# --- a user connection cut in the middle of 256 MiB
curl -sS --max-time 0.5 --limit-rate 20M -o /dev/null "$url/256m" 2>/dev/null || true
check "a user connection cut mid-transfer is logged" wait_for "$WORK/tsrv.log" "ended early" 10
check "... and the tunnel keeps serving" bash -c "curl -sSf --max-time 20 -o /dev/null '$url/1m'"
# relays close both fds once both directions ended (a few hops): poll
for _ in $(seq 1 100); do
  fds_after=$(ls /proc/"$tpid"/fd | wc -l)
  [ "$fds_after" -le "$fds_before" ] && break
  sleep 0.1
done
ls -l /proc/"$tpid"/fd >"$WORK/fds_after.txt" 2>&1 || true
check "the server end holds no more fds than before ($fds_before -> $fds_after)" \
  test "$fds_after" -le "$fds_before"
if [ "$fds_after" -gt "$fds_before" ]; then
  diff "$WORK/fds_before.txt" "$WORK/fds_after.txt" | sed 's/^/# /' || true
  ss -tanpe 2>/dev/null | grep "pid=$tpid," | sed 's/^/# tcp: /' || true
  ss -xpe 2>/dev/null | grep "pid=$tpid," | sed 's/^/# unix: /' || true
  echo "# threads: $(ls /proc/$tpid/task | wc -l)"
fi

# --- a wrong pre-shared key: refused with a clear message on both ends
kill -TERM "$(pid_of tcli3)"; wait "$(pid_of tcli3)" || true
wait_for "$WORK/tsrv.log" "control stream lost" 20
echo "not the key" >"$WORK/badpsk"
set +e
timeout 30 "$TUN" client --tunnel "127.0.0.1:$tport" --forward "127.0.0.1:$nport" \
  --psk-file "$WORK/badpsk" >"$WORK/bad.log" 2>&1
rc=$?
set -e
check "a client with a wrong key exits 1 ($rc)" test "$rc" -eq 1
check "... saying the keys differ" grep -q "refused our pre-shared key" "$WORK/bad.log"
check "the server logs the mismatch" wait_for "$WORK/tsrv.log" "pre-shared key mismatch" 10

# --- garbage on the control stream, both directions, with qpoolctl as peer
wait_for "$WORK/tsrv.log" "waiting for the client" 10
start_bg qc "$QPOOLD" client --name c --target "127.0.0.1:$tport" --min-cap 1 --max-cap 1 \
  --chroot "$WORK/empty" --control "$WORK/qc.sock"
wait_for "$WORK/qc.log" "running 1 pool" 10
printf 'QPT1 AUTH zz garbage\n' | timeout 20 "$CTL" --control "$WORK/qc.sock" outgoing c 00000000 \
  >"$WORK/garbage.out" 2>"$WORK/garbage.err" || true
check "the server end speaks first on stream 00000000 (HELLO)" grep -q "^QPT1 HELLO [0-9a-f]\{32\}$" "$WORK/garbage.out"
check "garbage AUTH: refused with a clear log line" wait_for "$WORK/tsrv.log" "malformed AUTH" 10
kill -TERM "$(pid_of qc)"; wait "$(pid_of qc)" || true
qport=$(free_port)
start_bg qs "$QPOOLD" server --name s --listen "127.0.0.1:$qport" --max-cap 4 \
  --chroot "$WORK/empty" --control "$WORK/qs.sock"
wait_for "$WORK/qs.log" "running 1 pool" 10
start_bg tcli4 "$TUN" client --tunnel "127.0.0.1:$qport" --forward "127.0.0.1:$nport" \
  --psk-file "$WORK/psk"
printf 'QPT1 NOT-A-HELLO\n' | timeout 20 "$CTL" --control "$WORK/qs.sock" incoming s \
  >"$WORK/garbage2.out" 2>"$WORK/garbage2.err" || true
check "the client end takes 00000000 as its control stream" grep -q "00000000" "$WORK/garbage2.err"
check "garbage HELLO: the client end logs it" wait_for "$WORK/tcli4.log" "malformed HELLO" 10
check "... and keeps running" kill -0 "$(pid_of tcli4)"
kill -TERM "$(pid_of tcli4)" "$(pid_of qs)"; wait "$(pid_of tcli4)" || true

# --- the server end restarts: the client end reconnects and continues
start_bg tcli5 "$TUN" client --tunnel "127.0.0.1:$tport" --forward "127.0.0.1:$nport" \
  --psk-file "$WORK/psk"
wait_for "$WORK/tcli5.log" "connected to the tunnel server" 30
kill -TERM "$tpid"
check "the server end stops cleanly on SIGTERM" wait "$tpid"
start_server
check "after the server end restarted, the client end reconnected" \
  wait_for "$WORK/tcli5.log" "control stream lost" 30
wait_for "$WORK/tsrv.log" "tunnel client authenticated" 30
check "... and the tunnel serves again" bash -c "curl -sSf --max-time 20 -o /dev/null '$url/1m'"
kill -TERM "$(pid_of tcli5)" "$(pid_of tsrv)"
rc1=0; rc2=0
wait "$(pid_of tcli5)" || rc1=$?
wait "$(pid_of tsrv)" || rc2=$?
check "both ends stop cleanly on SIGTERM (exit $rc1, $rc2)" test "$rc1" -eq 0 -a "$rc2" -eq 0
left=""
for _ in $(seq 1 100); do
  left=$(pgrep -af -- "--control=$XDG_RUNTIME_DIR/" || true)
  [ -z "$left" ] && break
  sleep 0.1
done
check "no private qpoold is left behind ('$left')" test -z "$left"
finish
