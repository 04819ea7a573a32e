#!/usr/bin/env bash
# Peer identity of a taken stream (qp_conn_info, qpoolctl conn): a qpoold
# server with the test certificate chain (leaf + CA) and a qpoold client in
# TLS mode 1. The client application takes stream ID X and gets the server's
# chain as DER whose SHA-256 is the test certificate's (openssl/certtool),
# ALPN np-quic, TLS 1.3, an AES suite, and addresses that match the ports;
# the server side shows the client's address and no certificate; the same
# through qpoold (no session), from qpoolctl (text, --json, --pem) and from
# an embedded client pool on ::1; on a server with two connections, a
# stream's own connection and the newest one; unknown pool / ID and a
# closed stream give clear errors; a session flooding requests without
# reading the answers is dropped, the worker stays up.
. "$(dirname "$0")/lib.sh"
LQP="$QP_BIN/tests/libqpool-peer"
CTL="$QP_BIN/qpoolctl"
[ -x "$LQP" ] || { echo "SKIP: $LQP not built"; exit 77; }
ensure_certs
mkdir -p "$WORK/empty"
cat "$TESTDATA/server.pem" "$TESTDATA/ca.pem" >"$WORK/chain.pem"
der_sha() { # PEM file (first certificate) -> SHA-256 of its DER
  if command -v openssl >/dev/null; then
    openssl x509 -in "$1" -outform DER | sha256sum | cut -d' ' -f1
  else
    certtool --certificate-info --infile "$1" --outder | sha256sum | cut -d' ' -f1
  fi
}
export -f der_sha
leaf=$(der_sha "$TESTDATA/server.pem")
ca=$(der_sha "$TESTDATA/ca.pem")
field() { sed -nE "s/.* $2=([^ ]*).*/\1/p" <<<" $1"; }
line() { grep "^info: side=$2 what=$3 " "$1" | head -1; }
ctl_field() { sed -nE "s/^$2 +//p" "$1" | head -1; } # qpoolctl conn text

port=$(free_port)
export QPOOL_STATUS_FILE="$WORK/srv.status"
start_bg srv "$QPOOLD" server --name srv --listen "127.0.0.1:$port" --max-cap 8 \
  --cert "$WORK/chain.pem" --key "$TESTDATA/server.key" \
  --chroot "$WORK/empty" --control "$WORK/srv.sock"
wait_for "$WORK/srv.log" "running 1 pool" 10
export QPOOL_STATUS_FILE="$WORK/cli.status"
start_bg cli "$QPOOLD" client --name cli --target "127.0.0.1:$port" --min-cap 4 \
  --max-cap 4 --tls-mode 1 --chroot "$WORK/empty" --control "$WORK/cli.sock"
unset QPOOL_STATUS_FILE
check "client pool (TLS mode 1) filled to 4" wait_status "$WORK/cli.status" cli idle_streams 4 15

# ---- libqpool, on the worker sessions: the two ends of stream X ----------
start_bg info "$LQP" info --control "$WORK/srv.sock" --pool srv \
  --peer-control "$WORK/cli.sock" --peer-pool cli --timeout-ms 20000 --hold "$WORK/release"
wait_for "$WORK/info.log" "^info: holding" 20 || true
sed 's/^/# /' "$WORK/info.log"
id=$(sed -nE 's/^info: take rc=0 id=([0-9a-f]{8})$/\1/p' "$WORK/info.log")
check "the server application took stream X, the client application the same ID ($id)" test -n "$id"
c=$(line "$WORK/info.log" client id)
s=$(line "$WORK/info.log" server id)
cli_local=$(field "$c" local)
check "client, stream X: answered (rc=0)" test "$(field "$c" rc)" = 0
check "... the server's chain, 2 certificates" test "$(field "$c" certs)" = 2
check "... leaf first: SHA-256 of its DER = the test certificate's ($leaf)" \
  test "$(field "$c" sha256)" = "$leaf,$ca"
check "... ALPN np-quic" test "$(field "$c" alpn)" = np-quic
check "... TLS 1.3" test "$(field "$c" version)" = TLS1.3
check "... an AES cipher suite ($(field "$c" cipher))" grep -q AES <<<"$(field "$c" cipher)"
check "... remote = the server's address (127.0.0.1:$port)" test "$(field "$c" remote)" = "127.0.0.1:$port"
check "... local = a 127.0.0.1 port of its own ($cli_local)" \
  bash -c "[[ '$cli_local' =~ ^127\.0\.0\.1:[0-9]+$ ]] && [ '$cli_local' != '127.0.0.1:$port' ]"
check "... not truncated, an RTT measured ($(field "$c" rtt_ns) ns)" \
  bash -c "[ '$(field "$c" truncated)' = 0 ] && [ '$(field "$c" rtt_ns)' -gt 0 ]"
check "... the default congestion controller, bbr: a window, a pacing rate" \
  bash -c "[ '$(field "$c" cc)' = bbr ] && [ '$(field "$c" cwnd)' -gt 0 ] &&
    [ '$(field "$c" pacing)' -gt 0 ] && [ '$(field "$s" cc)' = bbr ]"
check "server, stream X: local = its listen address, remote = the client's ($cli_local)" \
  bash -c "[ '$(field "$s" local)' = '127.0.0.1:$port' ] && [ '$(field "$s" remote)' = '$cli_local' ]"
check "... no certificate from a client, same ALPN and suite" \
  bash -c "[ '$(field "$s" certs)' = 0 ] && [ '$(field "$s" alpn)' = np-quic ] &&
    [ '$(field "$s" cipher)' = '$(field "$c" cipher)' ]"
c0=$(line "$WORK/info.log" client pool)
check "client, no ID: the current connection is stream X's" \
  bash -c "[ '$(field "$c0" local)' = '$cli_local' ] && [ '$(field "$c0" sha256)' = '$leaf,$ca' ]"
check "server, no ID: its only connection" test "$(field "$(line "$WORK/info.log" server pool)" remote)" = "$cli_local"
check "an unknown ID: -ESRCH on both sides" \
  bash -c "[ '$(field "$(line "$WORK/info.log" client unknown)" rc)' = -3 ] &&
    [ '$(field "$(line "$WORK/info.log" server unknown)" rc)' = -3 ]"

# ---- qpoolctl (through qpoold) while both ends hold stream X --------------
check "qpoolctl conn cli X" logrun "$WORK/ctl.txt" "$CTL" --control "$WORK/cli.sock" conn cli "$id"
sed 's/^/# /' "$WORK/ctl.txt"
check "... prints the leaf's SHA-256 fingerprint" grep -qE "^ +sha256 +$leaf$" "$WORK/ctl.txt"
check "... and the CA's" grep -qE "^ +sha256 +$ca$" "$WORK/ctl.txt"
check "... subject and issuer" grep -qE "^ +\[0\] subject CN=qpool.test" "$WORK/ctl.txt"
check "... addresses, ALPN, version" bash -c "[ '$(ctl_field "$WORK/ctl.txt" local)' = '$cli_local' ] &&
  [ '$(ctl_field "$WORK/ctl.txt" remote)' = '127.0.0.1:$port' ] &&
  [ '$(ctl_field "$WORK/ctl.txt" alpn)' = np-quic ] && [ '$(ctl_field "$WORK/ctl.txt" version)' = TLS1.3 ]"
check "qpoolctl conn --json cli X: the same fingerprint, and PEM that is the certificate" \
  bash -c "'$CTL' --control '$WORK/cli.sock' conn --json cli '$id' >'$WORK/ctl.json' &&
    python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d[\"certs\"][0][\"pem\"], end=\"\"); \
assert d[\"certs\"][0][\"sha256\"]==sys.argv[2] and d[\"stream_id\"]==sys.argv[3] and d[\"alpn\"]==\"np-quic\"' \
      '$WORK/ctl.json' '$leaf' '$id' >'$WORK/leaf.pem' && [ \"\$(der_sha '$WORK/leaf.pem')\" = '$leaf' ]"
check "qpoolctl conn --pem cli: the chain as PEM" bash -c \
  "'$CTL' --control '$WORK/cli.sock' conn --pem cli >'$WORK/chain.out' &&
   [ \$(grep -c 'BEGIN CERTIFICATE' '$WORK/chain.out') = 2 ] && [ \"\$(der_sha '$WORK/chain.out')\" = '$leaf' ]"
check "qpoolctl conn srv X: the client's address" bash -c \
  "'$CTL' --control '$WORK/srv.sock' conn srv '$id' | grep -qE '^remote +$cli_local$'"
check "... and no peer certificate" bash -c \
  "'$CTL' --control '$WORK/srv.sock' conn srv '$id' | grep -q '^peer certificates: 0'"

# a second client connects: the server's newest connection is the pool's,
# stream X still reports its own
export QPOOL_STATUS_FILE="$WORK/cli2.status"
start_bg cli2 "$QPOOLD" client --name cli2 --target "127.0.0.1:$port" --min-cap 2 \
  --max-cap 2 --tls-mode 1 --chroot "$WORK/empty" --control "$WORK/cli2.sock"
unset QPOOL_STATUS_FILE
check "a second client pool filled to 2" wait_status "$WORK/cli2.status" cli2 idle_streams 2 15
"$CTL" --control "$WORK/cli2.sock" conn cli2 >"$WORK/ctl2.txt" || true
cli2_local=$(ctl_field "$WORK/ctl2.txt" local)
check "server, no ID: the newest connection ($cli2_local)" bash -c \
  "[ -n '$cli2_local' ] && [ '$cli2_local' != '$cli_local' ] &&
   '$CTL' --control '$WORK/srv.sock' conn srv | grep -qE '^remote +$cli2_local$'"
check "server, stream X: still its own connection ($cli_local)" bash -c \
  "'$CTL' --control '$WORK/srv.sock' conn srv '$id' | grep -qE '^remote +$cli_local$'"

# ---- errors ----------------------------------------------------------------
rc=0
"$CTL" --control "$WORK/cli.sock" conn nosuch >/dev/null 2>"$WORK/e1.err" || rc=$?
check "qpoolctl conn for an unknown pool: exit 1 ($rc)" test "$rc" = 1
check "... saying so ($(cat "$WORK/e1.err"))" grep -q 'conn nosuch: no pool named "nosuch"' "$WORK/e1.err"
rc=0
"$CTL" --control "$WORK/cli.sock" conn cli 7fffff01 >/dev/null 2>"$WORK/e2.err" || rc=$?
check "qpoolctl conn for an unknown ID: exit 1 ($rc)" test "$rc" = 1
check "... saying so ($(cat "$WORK/e2.err"))" \
  grep -q 'conn cli 7fffff01: no stream 7fffff01 on an open connection of pool cli' "$WORK/e2.err"
rc=0
"$CTL" --control "$WORK/cli.sock" conn cli not-an-id >/dev/null 2>"$WORK/e3.err" || rc=$?
check "qpoolctl conn with a bad ID: usage error, exit 2 ($rc)" test "$rc" = 2

# both ends close stream X: it is gone
touch "$WORK/release"
check "the applications close stream X and exit 0" wait "$(pid_of info)"
closed=$(line "$WORK/info.log" client closed)
echo "# $closed"
check "... then its ID is unknown (-ESRCH)" test "$(field "$closed" rc)" = -3

# ---- the sessionless path: qpoold forwards to the worker -------------------
check "QPOOL_NO_SESSION=1: the same answers through qpoold" logrun "$WORK/info2.log" \
  env QPOOL_NO_SESSION=1 "$LQP" info --control "$WORK/srv.sock" --pool srv \
  --peer-control "$WORK/cli.sock" --peer-pool cli --timeout-ms 20000
sed 's/^/# /' "$WORK/info2.log"
c=$(line "$WORK/info2.log" client id)
check "... the server's chain ($(field "$c" sha256))" test "$(field "$c" sha256)" = "$leaf,$ca"
check "... the server side: the client's address" \
  test "$(field "$(line "$WORK/info2.log" server id)" remote)" = "$(field "$c" local)"

# ---- a session that asks for descriptions and never reads them ---------
wpid=$(status_of "$WORK/cli.status" cli pid)
python3 - "$WORK/cli.sock" >"$WORK/flood.log" 2>&1 <<'PY'
import socket, struct, sys, time
def varint(n):
    out = b""
    while True:
        b = n & 0x7f; n >>= 7
        out += bytes([b | (0x80 if n else 0)])
        if not n: return out
def request(tag, op, pool, sid=None):
    p = b"\x08" + varint(tag) + b"\x10" + varint(op) + b"\x1a" + varint(len(pool)) + pool
    if sid is not None: p += b"\x20" + varint(sid)
    return struct.pack(">IH", len(p), 1) + p
c = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET); c.settimeout(5)
c.connect(sys.argv[1])
c.send(request(1, 8, b"cli"))  # OP_SESSION
msg, anc, flags, addr = c.recvmsg(1000, socket.CMSG_SPACE(4))
fds = [struct.unpack("i", d[:4])[0] for (l, t, d) in anc if t == socket.SCM_RIGHTS]
ss = socket.socket(fileno=fds[0]); ss.settimeout(5)
ss.send(request(2, 9, b"cli"))  # OP_CONN_INFO, read: answered with the chain
print("answered:", b"np-quic" in ss.recv(300000))
ss.setblocking(False)
sent, dropped = 0, False
for t in range(20000):
    try:
        ss.send(request(t, 9, b"cli")); sent += 1
    except BlockingIOError:
        time.sleep(0.001)
    except (BrokenPipeError, ConnectionResetError):
        dropped = True
        break
print("flood: sent", sent, "dropped by the worker:", dropped)
PY
sed 's/^/# /' "$WORK/flood.log"
check "OP_CONN_INFO on a raw session is answered" grep -q "answered: True" "$WORK/flood.log"
check "a session that never reads its descriptions is dropped" grep -q "dropped by the worker: True" "$WORK/flood.log"
check "... by the worker, which stays up (pid $wpid)" kill -0 "$wpid"
check "... and still answers" bash -c "'$CTL' --control '$WORK/cli.sock' conn cli | grep -qE '^ +sha256 +$leaf$'"

# ---- embedded mode, IPv6: a fresh server's first stream is 00000000 --------
port6=$(free_port)
start_bg srv6 "$QPOOLD" server --name srv6 --listen "[::1]:$port6" --max-cap 4 \
  --cert "$WORK/chain.pem" --key "$TESTDATA/server.key" \
  --chroot "$WORK/empty" --control "$WORK/srv6.sock"
wait_for "$WORK/srv6.log" "running 1 pool" 10
check "embedded client pool on ::1: qp_conn_info" logrun "$WORK/emb.log" \
  "$LQP" info --embedded --target "[::1]:$port6" --tls-mode 1 --min-cap 2 --max-cap 2 \
  --id 00000000 --timeout-ms 20000
sed 's/^/# /' "$WORK/emb.log"
e=$(line "$WORK/emb.log" embedded pool)
check "... the pool's connection: the server's chain, remote [::1]:$port6" \
  bash -c "[ '$(field "$e" sha256)' = '$leaf,$ca' ] && [ '$(field "$e" remote)' = '[::1]:$port6' ]"
e=$(line "$WORK/emb.log" embedded id)
check "... stream 00000000's: the same connection" \
  bash -c "[ '$(field "$e" sha256)' = '$leaf,$ca' ] && [[ '$(field "$e" local)' =~ ^\[::1\]:[0-9]+$ ]]"

kill -TERM "$(pid_of cli)" "$(pid_of cli2)" "$(pid_of srv)" "$(pid_of srv6)"
for n in cli cli2 srv srv6; do wait "$(pid_of $n)" || true; done
check "no worker was killed for a bad answer" \
  bash -c "! grep -h 'ConnInfoResult' '$WORK'/srv.log '$WORK'/cli.log '$WORK'/srv6.log"
finish
