#!/usr/bin/env bash
# TLS mode 2 against the system trust store, for real: server pools whose
# certificate chains to the test CA; the test CA is installed into a
# system-style bundle (the machine's bundle + the test CA) that is
# bind-mounted over /etc/ssl/certs/ca-certificates.crt in a private mount
# namespace, where a qpoold client pool in mode 2 without --ca verifies the
# server and streams flow (np-test, SHA-256 checked). The same via
# $SSL_CERT_FILE; an embedded client pool naming the CA with qp_tls.ca_file
# (qp_client_pool_tls); a mode-2 pool added by SIGHUP to a worker already in
# its sandbox (it can open no file: the bundle comes as an fd); an embedded
# client in mode 2 with the system store ($SSL_CERT_FILE); and a wrong
# host name refused with the reason in `qpoolctl status` and in the log.
# Without the installed CA the same client is refused (so the trust really
# comes from the installed bundle).
. "$(dirname "$0")/lib.sh"
need_root # the mount namespace, and workers in their chroot as nobody
ensure_certs
CTL="$QP_BIN/qpoolctl"
LQP="$QP_BIN/tests/libqpool-peer"
SYSTEM=/etc/ssl/certs/ca-certificates.crt
[ -f "$SYSTEM" ] || { echo "SKIP: no $SYSTEM (package ca-certificates)"; exit 77; }
cat "$SYSTEM" "$TESTDATA/ca.pem" >"$WORK/bundle.crt"
unset SSL_CERT_FILE

# one server pool per client (each np-test needs its own control stream)
p1=$(free_port) p2=$(free_port) p3=$(free_port) p4=$(free_port) p5=$(free_port)
{
  echo "[global]"
  echo "workers = 0"
  for i in 1 2 3 4 5; do
    eval "port=\$p$i"
    printf '[pool s%d]\nmode = server\nlisten = 127.0.0.1:%s\nmax_cap = 32\ncert = %s\nkey = %s\n' \
      "$i" "$port" "$TESTDATA/server.pem" "$TESTDATA/server.key"
  done
} >"$WORK/srv.conf"
start_bg srv "$QPOOLD" --config "$WORK/srv.conf" --chroot "$WORK/empty" --control "$WORK/srv.sock"
wait_for "$WORK/srv.log" "running 5 pool" 10

# a client pool in mode 2 without --ca; extra qpoold flags after NAME PORT
client_args() {
  local name=$1 port=$2; shift 2
  echo client --name "$name" --target "127.0.0.1:$port" --min-cap 8 --max-cap 8 \
    --tls-mode 2 --hostname qpool.test --chroot "$WORK/empty" --control "$WORK/$name.sock" "$@"
}
# np_test SERVER-POOL CLIENT-SOCKET CLIENT-POOL: 8 streams x 256 KiB each way
np_test() {
  start_bg "nt_$1" "$PEER" server --control "$WORK/srv.sock" --pool "$1" --streams 8 \
    --bytes 262144 --timeout 60s
  logrun "$WORK/ntcli_$1.log" "$PEER" client --control "$2" --pool "$3" --streams 8 \
    --bytes 262144 --timeout 60s && wait "$(pid_of "nt_$1")"
}

# --- without the test CA in the store: refused (the control experiment)
export QPOOL_STATUS_FILE="$WORK/plain.status"
# shellcheck disable=SC2046
start_bg plain "$QPOOLD" $(client_args plain "$p1")
unset QPOOL_STATUS_FILE
check "mode 2 with the machine's own store does not trust the test CA" \
  wait_for "$WORK/plain.log" "certificate verification failed: .*issuer is unknown" 15
check "... and never fills" test "$(status_of "$WORK/plain.status" plain idle_streams)" = 0
kill -TERM "$(pid_of plain)"; wait "$(pid_of plain)" || true

# --- the test CA installed in the system bundle, in a private mount namespace
export QPOOL_STATUS_FILE="$WORK/ns.status"
# shellcheck disable=SC2016,SC2046
start_bg ns unshare --mount --propagation private bash -c \
  'mount --bind "$1" /etc/ssl/certs/ca-certificates.crt && shift && exec env -u SSL_CERT_FILE "$@"' \
  _ "$WORK/bundle.crt" "$QPOOLD" $(client_args ns "$p1")
unset QPOOL_STATUS_FILE
check "system store with the test CA (namespace): the mode 2 pool fills to 8" \
  wait_status "$WORK/ns.status" ns idle_streams 8 20
check "... the bundle really is mounted in qpoold's namespace only" \
  bash -c "grep -qF \"\$(sed -n 2p '$TESTDATA/ca.pem')\" /proc/$(pid_of ns)/root$SYSTEM &&
           ! grep -qF \"\$(sed -n 2p '$TESTDATA/ca.pem')\" $SYSTEM"
check "... and streams flow: np-test 8 x 256 KiB each way" np_test s1 "$WORK/ns.sock" ns
check "... qpoolctl status shows it ready, no error" \
  bash -c "'$CTL' --control '$WORK/ns.sock' status | grep -qE '^ns +client +[0-9]+ +ready +[0-9]+ +8 .* -\$'"

# --- $SSL_CERT_FILE names the bundle (as for OpenSSL and Go)
export QPOOL_STATUS_FILE="$WORK/env.status"
# shellcheck disable=SC2046
start_bg env env SSL_CERT_FILE="$WORK/bundle.crt" "$QPOOLD" $(client_args env "$p2")
unset QPOOL_STATUS_FILE
check "\$SSL_CERT_FILE: the mode 2 pool fills to 8" wait_status "$WORK/env.status" env idle_streams 8 20
check "... and streams flow: np-test 8 x 256 KiB each way" np_test s2 "$WORK/env.sock" env

# --- embedded: qp_client_pool_new(..., "2", "qpool.test", ...) and
# qp_client_pool_tls with qp_tls.ca_file
if [ -x "$LQP" ]; then
  export XDG_RUNTIME_DIR="$WORK/run"
  mkdir -p "$XDG_RUNTIME_DIR"
  start_bg nt_s3 "$PEER" server --control "$WORK/srv.sock" --pool s3 --streams 8 \
    --bytes 262144 --timeout 60s
  check "embedded client, mode 2, qp_tls.ca_file = the test CA: np-test 8 x 256 KiB" logrun "$WORK/emb.log" \
    "$LQP" client --embedded --target "127.0.0.1:$p3" --min-cap 8 --max-cap 8 --tls-mode 2 \
    --hostname qpool.test --ca "$TESTDATA/ca.pem" --streams 8 --bytes 262144 --timeout-ms 60000
  check "... the server side verified every stream" wait "$(pid_of nt_s3)"
  # qp_client_pool_new(..., "2", ...) alone: the system store, located by
  # $SSL_CERT_FILE (the private qpoold has the application's environment)
  start_bg nt_s5 "$PEER" server --control "$WORK/srv.sock" --pool s5 --streams 8 \
    --bytes 262144 --timeout 60s
  check "embedded client, mode 2, no CA file, \$SSL_CERT_FILE = the bundle: np-test 8 x 256 KiB" \
    logrun "$WORK/emb_env.log" env SSL_CERT_FILE="$WORK/bundle.crt" "$LQP" client --embedded \
    --target "127.0.0.1:$p5" --min-cap 8 --max-cap 8 --tls-mode 2 --hostname qpool.test \
    --streams 8 --bytes 262144 --timeout-ms 60000
  check "... the server side verified every stream" wait "$(pid_of nt_s5)"
  rc=0
  timeout 30 "$LQP" client --embedded --target "127.0.0.1:$p3" --tls-mode 2 --hostname qpool.test \
    --ca "$WORK/bundle.crt.missing" --streams 1 --bytes 1 --timeout-ms 5000 >"$WORK/emb_bad.log" 2>&1 || rc=$?
  check "embedded client with a CA file that does not exist: the manager returns -EINVAL, naming it" \
    bash -c "grep -q 'embedded: manager rc=-22 ' '$WORK/emb_bad.log' && grep -q 'ERROR: .*bundle.crt.missing' '$WORK/emb_bad.log'"
  unset XDG_RUNTIME_DIR
else
  echo "SKIP: $LQP not built: embedded cases skipped"
fi

# --- a mode 2 pool added by SIGHUP to a worker that is in its sandbox
cat >"$WORK/reload.conf" <<EOF
[global]
workers = 1
[pool first]
mode = client
target = 127.0.0.1:$p4
EOF
export QPOOL_STATUS_FILE="$WORK/reload.status"
start_bg reload env SSL_CERT_FILE="$WORK/bundle.crt" "$QPOOLD" --config "$WORK/reload.conf" \
  --chroot "$WORK/empty" --control "$WORK/reload.sock"
unset QPOOL_STATUS_FILE
check "reload: the first pool (mode 1) runs" wait_status "$WORK/reload.status" first connected 1 20
wpid=$(status_of "$WORK/reload.status" first pid)
check "... its worker ($wpid) is in its chroot as nobody" \
  bash -c "[ \"\$(readlink /proc/$wpid/root)\" = '$WORK/empty' ] && [ \"\$(awk '/^Uid:/ {print \$2}' /proc/$wpid/status)\" = $(id -u nobody) ]"
cat >>"$WORK/reload.conf" <<EOF
[pool late]
mode = client
target = 127.0.0.1:$p4
tls_mode = 2
hostname = qpool.test
min_cap = 4
max_cap = 4
EOF
kill -HUP "$(pid_of reload)"
check "... SIGHUP adds a mode 2 pool without ca: it fills to 4 in that worker" \
  wait_status "$WORK/reload.status" late idle_streams 4 20
check "... the same sandboxed worker runs it ($wpid)" test "$(status_of "$WORK/reload.status" late pid)" = "$wpid"

# --- a wrong host name: refused, and said so in qpoolctl status and the log
export QPOOL_STATUS_FILE="$WORK/wrong.status"
start_bg wrong env SSL_CERT_FILE="$WORK/bundle.crt" "$QPOOLD" client --name wrong \
  --target "127.0.0.1:$p4" --tls-mode 2 --hostname wrong.test --chroot "$WORK/empty" \
  --control "$WORK/wrong.sock"
unset QPOOL_STATUS_FILE
check "wrong host name: the handshake is refused, the log says the name does not match" \
  wait_for "$WORK/wrong.log" "ERROR: pool wrong: connection to .*certificate verification failed: .*does not match" 15
status_says() { # within 5 s (a report follows a new error at once)
  local i
  for ((i = 0; i < 100; i++)); do
    "$CTL" --control "$WORK/wrong.sock" status >"$WORK/wrong.table" 2>&1 || true
    grep -qE "$1" "$WORK/wrong.table" && return 0
    sleep 0.05
  done
  sed 's/^/# /' "$WORK/wrong.table"
  return 1
}
check "... qpoolctl status shows the pool not connected, with that reason" \
  status_says '^wrong +client +[0-9]+ +connecting .*certificate verification failed: .*does not match'
sed 's/^/# /' "$WORK/wrong.table"
check "... and it never got a stream" test "$(status_of "$WORK/wrong.status" wrong idle_streams)" = 0
finish
