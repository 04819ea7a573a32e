#!/usr/bin/env bash
# libqpool in embedded mode (include/qpool.h only): each program makes its
# own pool (qp_server_pool_new / qp_client_pool_new) and starts it with the
# manager, which runs a private qpoold + sandboxed worker for it. Both ends
# embedded: the np-test exchange over 100 streams byte-exactly; waiting
# IncomingGet and OutgoingGet wake together when the first stream appears;
# errors (address in use, manager twice); qp_close stops the private qpoold;
# an application killed with SIGKILL takes its qpoold down (lifeline); none
# of the application's fds leak into qpoold. qpoold is found beside
# libqpool in the build tree (no QPOOL_QPOOLD).
. "$(dirname "$0")/lib.sh"
LQP="$QP_BIN/tests/libqpool-peer"
[ -x "$LQP" ] || { echo "SKIP: $LQP not built"; exit 77; }
unset QPOOL_QPOOLD QPOOL_CONTROL
# the private directories go here (short enough for socket paths)
export XDG_RUNTIME_DIR="$WORK/run"
mkdir -p "$XDG_RUNTIME_DIR"
private() { pgrep -f -- "--control=$XDG_RUNTIME_DIR/qpool-" || true; }
# alive PIDS...: those of PIDS still running (other tests' processes do not
# count: only the pids recorded here are looked at)
alive() { local p out=""; for p in "$@"; do kill -0 "$p" 2>/dev/null && out="$out $p"; done; echo "$out"; }
gone_within() { # SECONDS PIDS...: 0 once none of PIDS runs
  local s=$1 i; shift
  for ((i = 0; i < s * 20; i++)); do [ -z "$(alive "$@")" ] && return 0; sleep 0.05; done
  return 1
}

# --- np-test, both ends embedded. The server program waits for the control
# stream 00000000 on its empty pool; the client program's pool brings it.
port=$(free_port)
echo marker >"$WORK/marker"
# fd 7, open in the application, must not reach its qpoold
start_bg ntsrv "$LQP" server --embedded --listen "127.0.0.1:$port" --max-cap 128 \
  --streams 100 --bytes 262144 --timeout-ms 60000 7<"$WORK/marker"
wait_for "$WORK/ntsrv.log" "embedded: qpoold started" 20
srv_qpoold=$(private)
check "the server program started a private qpoold ($srv_qpoold)" test -n "$srv_qpoold"
leaked=$(for q in $srv_qpoold; do ls -l /proc/"$q"/fd 2>/dev/null; done | grep -c "$WORK/marker" || true)
check "no application fd leaked into the private qpoold ($leaked)" test "$leaked" -eq 0
workers=$(for q in $srv_qpoold; do pgrep -P "$q" -x qpool-worker; done || true)
check "... which runs a worker ($workers)" test -n "$workers"
check "np-test, embedded client: 100 streams x 256 KiB each way" logrun "$WORK/ntcli.log" \
  "$LQP" client --embedded --target "127.0.0.1:$port" --min-cap 64 --max-cap 64 \
  --streams 100 --bytes 262144 --timeout-ms 60000
check "np-test, embedded server (waited for 00000000) verified every stream" wait "$(pid_of ntsrv)"
sed 's/^/# cli: /' "$WORK/ntcli.log" | grep -v "INFO" || true
sed 's/^/# srv: /' "$WORK/ntsrv.log" | grep -v "INFO" || true
left=$(private)
check "qp_close stopped both private qpoolds (left: '${left}')" test -z "$left"
check "... and the server's worker ($workers; left:$(alive $workers))" gone_within 10 $workers
check "... and removed their private directories" \
  test -z "$(ls -A "$XDG_RUNTIME_DIR")"

# --- wake-up: an IncomingGet (server) and an OutgoingGet(00000000) (client)
# both wait before the client pool exists; when the first stream appears
# both return, together (no polling: the reference polls every 50 ms).
port=$(free_port)
check "waiting IncomingGet and OutgoingGet(00000000) both return the stream" \
  logrun "$WORK/wake.log" "$LQP" wake --embedded --listen "127.0.0.1:$port"
out=$(grep "^wake:" "$WORK/wake.log" || true)
echo "# $out"
skew=$(stat_of "$out" skew_ms)
srv_ms=$(stat_of "$out" server_ms)
check "... within 50 ms of each other (skew $skew ms)" test "${skew:-999}" -le 50
check "... within 5 s of the client pool's start, far before the 20 s timeout ($srv_ms ms)" \
  test "${srv_ms:-99999}" -lt 5000

# --- errors
port=$(free_port)
check "embedded errors: address in use -> -EADDRINUSE; manager twice -> -EALREADY; qp_close during the manager -> it returns first" \
  logrun "$WORK/errors.log" "$LQP" errors --embedded --listen "127.0.0.1:$port"
grep "^errors:" "$WORK/errors.log" | sed 's/^/# /'
check "qpoold's own reason is in the application's log" \
  grep -q "cannot listen on 127.0.0.1:$port: Address already in use" "$WORK/errors.log"

# --- an application killed with SIGKILL: its qpoold sees the lifeline end
port=$(free_port)
start_bg victim "$LQP" server --embedded --listen "127.0.0.1:$port" --max-cap 8 \
  --streams 1 --bytes 1 --timeout-ms 60000
wait_for "$WORK/victim.log" "embedded: qpoold started" 20
q=$(private)
check "the victim's private qpoold runs ($q)" test -n "$q"
vworkers=$(for x in $q; do pgrep -P "$x" -x qpool-worker; done || true)
kill -9 "$(pid_of victim)"
gone=0
for _ in $(seq 1 200); do
  if [ -z "$(private)" ]; then gone=1; break; fi
  sleep 0.05
done
check "after the application's SIGKILL its qpoold and worker exit (lifeline)" test "$gone" -eq 1
check "... with no worker left behind ($vworkers; left:$(alive $vworkers))" gone_within 10 $vworkers
finish
