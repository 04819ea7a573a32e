#!/usr/bin/env bash
# TLS files that are wrong fail loudly and never fall back: a server's
# --cert/--key that are missing, empty, a directory, not PEM, a mismatched
# pair, or one without the other, and a client's CA file (or system bundle)
# that is unreadable, empty or holds no certificate, are refused by
# `qpoold --check` (exit 2, the file named) and at start (exit 2, logged at
# ERROR, no worker started, no self-signed certificate served); a good pair
# is what the pool serves (a client verifying against the test CA fills);
# the same through the config file; a reload with a bad file keeps the
# running pool; libqpool's embedded server with a bad qp_tls gets -EINVAL
# from its manager, with qpoold's reason on its stderr.
. "$(dirname "$0")/lib.sh"
ensure_certs
LQP="$QP_BIN/tests/libqpool-peer"
C="$TESTDATA/server.pem" K="$TESTDATA/server.key"
: >"$WORK/empty.pem"
mkdir -p "$WORK/dir.pem"
echo "not a certificate" >"$WORK/garbage.pem"

# expect_refused NAME FILE-IN-MESSAGE qpoold-args...: --check and a real
# start both refuse, naming the file (at start in an ERROR line, unless
# PARSE=1: the flags themselves are wrong, told as a usage error)
expect_refused() {
  local name=$1 file=$2; shift 2
  local rc=0
  "$QPOOLD" "$@" --check >"$WORK/$name.check" 2>&1 || rc=$?
  if [ "$rc" -eq 2 ] && grep -qF -- "$file" "$WORK/$name.check" &&
    ! grep -q "configuration ok" "$WORK/$name.check"; then
    ok "$name: --check exits 2 naming $(basename -- "$file")"
  else
    not_ok "$name: --check (rc $rc)"; cat "$WORK/$name.check"
  fi
  rc=0
  timeout 20 "$QPOOLD" "$@" --chroot "$WORK/empty" --control "$WORK/$name.sock" \
    >"$WORK/$name.start" 2>&1 || rc=$?
  if [ "$rc" -eq 2 ] && grep -qF -- "$file" "$WORK/$name.start" &&
    { [ "${PARSE:-0}" = 1 ] || grep -q "ERROR: pool s\?c\?: .*$(basename -- "$file")" "$WORK/$name.start"; } &&
    ! grep -q "worker 0 started" "$WORK/$name.start"; then
    ok "$name: start exits 2 naming it${PARSE:+ (usage error)}, no worker"
  else
    not_ok "$name: start (rc $rc)"; cat "$WORK/$name.start"
  fi
}
# nothing listens: every start below must fail before its listener opens
# (one free port for all; a start that wrongly succeeds fails its check)
NOPORT=$(free_port)
srv() { echo server --name s --listen "127.0.0.1:$NOPORT" "$@"; }

# shellcheck disable=SC2046
expect_refused missing "/nonexistent/server.pem" $(srv --cert /nonexistent/server.pem --key "$K")
check "... saying it does not exist" grep -q "No such file or directory" "$WORK/missing.check"
expect_refused missing_key "/nonexistent/server.key" $(srv --cert "$C" --key /nonexistent/server.key)
expect_refused empty "$WORK/empty.pem" $(srv --cert "$WORK/empty.pem" --key "$K")
check "... saying it is empty" grep -q "empty.pem is empty" "$WORK/empty.check"
expect_refused empty_key "$WORK/empty.pem" $(srv --cert "$C" --key "$WORK/empty.pem")
expect_refused directory "$WORK/dir.pem" $(srv --cert "$WORK/dir.pem" --key "$K")
check "... saying it is a directory" grep -q "dir.pem is a directory" "$WORK/directory.check"
expect_refused not_pem "$WORK/garbage.pem" $(srv --cert "$WORK/garbage.pem" --key "$K")
check "... saying it holds no certificate" grep -q "holds no PEM certificate" "$WORK/not_pem.check"
expect_refused key_not_pem "$C" $(srv --cert "$C" --key "$C")
check "... saying the key file holds no key" grep -q "holds no PEM private key" "$WORK/key_not_pem.check"
expect_refused mismatch "$TESTDATA/other-ca.key" $(srv --cert "$C" --key "$TESTDATA/other-ca.key")
check "... saying the key does not match the certificate" \
  grep -qF "the key file $TESTDATA/other-ca.key does not match the certificate file $C" "$WORK/mismatch.check"
PARSE=1 expect_refused cert_only "$C" $(srv --cert "$C")
check "... saying the key is missing" grep -q "needs --key too" "$WORK/cert_only.check"
PARSE=1 expect_refused key_only "$K" $(srv --key "$K")
check "... saying the certificate is missing" grep -q "needs --cert too" "$WORK/key_only.check"

# client pools in TLS mode 2: the CA file, or the system bundle
cli() { echo client --name c --target "127.0.0.1:$NOPORT" --tls-mode 2 --hostname qpool.test "$@"; }
expect_refused ca_missing "/nonexistent/ca.pem" $(cli --ca /nonexistent/ca.pem)
expect_refused ca_empty "$WORK/empty.pem" $(cli --ca "$WORK/empty.pem")
expect_refused ca_not_pem "$WORK/garbage.pem" $(cli --ca "$WORK/garbage.pem")
check "... saying it holds no CA certificate" grep -q "holds no PEM CA certificate" "$WORK/ca_not_pem.check"
expect_refused ca_directory "$WORK/dir.pem" $(cli --ca "$WORK/dir.pem")
export SSL_CERT_FILE=/nonexistent/bundle.crt
expect_refused system_missing "/nonexistent/bundle.crt" $(cli)
check "... naming \$SSL_CERT_FILE as where the path came from" grep -qF '($SSL_CERT_FILE)' "$WORK/system_missing.check"
export SSL_CERT_FILE="$WORK/empty.pem"
expect_refused system_empty "$WORK/empty.pem" $(cli)
unset SSL_CERT_FILE
rc=0
"$QPOOLD" $(cli) --check >"$WORK/system_ok.check" 2>&1 || rc=$?
check "without --ca and \$SSL_CERT_FILE, the system bundle (/etc/ssl/certs/ca-certificates.crt) passes --check" \
  test "$rc" -eq 0

# the same through a config file
cat >"$WORK/bad.conf" <<EOF
[pool a]
mode = server
listen = 127.0.0.1:$NOPORT
cert = $WORK/empty.pem
key = $K
EOF
rc=0
"$QPOOLD" --config "$WORK/bad.conf" --check >"$WORK/conf.check" 2>&1 || rc=$?
check "config file: --check exits 2 naming the empty cert" \
  bash -c "[ $rc -eq 2 ] && grep -qF '$WORK/empty.pem is empty' '$WORK/conf.check'"

# a good pair passes and is what the pool serves: a client that verifies
# against the test CA (mode 2) fills from it
port=$(free_port)
check "a matching pair passes --check" logrun "$WORK/good.check" \
  "$QPOOLD" server --name s --listen "127.0.0.1:$port" --cert "$C" --key "$K" --check
cat >"$WORK/run.conf" <<EOF
[pool s]
mode = server
listen = 127.0.0.1:$port
max_cap = 8
cert = $C
key = $K
EOF
export QPOOL_STATUS_FILE="$WORK/s.status"
start_bg good "$QPOOLD" --config "$WORK/run.conf" --chroot "$WORK/empty" --control "$WORK/good.sock"
unset QPOOL_STATUS_FILE
wait_for "$WORK/good.log" "running 1 pool" 10
check "mode 2 client (test CA, qpool.test) fills from the configured certificate" logrun "$WORK/verify.log" \
  "$PEER" client --target "127.0.0.1:$port" --min-cap 2 --max-cap 2 --tls-mode 2 \
  --hostname qpool.test --ca "$TESTDATA/ca.pem" --wait-active 2 --timeout 20s
# reload with a bad key: refused as a whole, the pool keeps its certificate
sed -i "s|^key = .*|key = $TESTDATA/other-ca.key|; s|^max_cap = 8|max_cap = 9|" "$WORK/run.conf"
kill -HUP "$(pid_of good)"
check "a reload with a mismatched key is refused, naming the file" \
  wait_for "$WORK/good.log" "ERROR: reload failed, keeping the running configuration: pool s: the key file $TESTDATA/other-ca.key does not match" 10
check "... and the pool still serves its certificate" logrun "$WORK/verify2.log" \
  "$PEER" client --target "127.0.0.1:$port" --min-cap 2 --max-cap 2 --tls-mode 2 \
  --hostname qpool.test --ca "$TESTDATA/ca.pem" --wait-active 2 --timeout 20s
check "... unchanged (max_cap still 8)" test "$(status_of "$WORK/s.status" s capacity)" = 8

# embedded mode: qp_server_pool_new with a bad qp_tls -> the manager fails
if [ -x "$LQP" ]; then
  export XDG_RUNTIME_DIR="$WORK/run"
  mkdir -p "$XDG_RUNTIME_DIR"
  for c in "empty:$WORK/empty.pem:$K" "mismatch:$C:$TESTDATA/other-ca.key" "missing:/nonexistent/c.pem:$K"; do
    IFS=: read -r what cf kf <<<"$c"
    rc=0
    timeout 30 "$LQP" server --embedded --listen "127.0.0.1:$NOPORT" --cert "$cf" \
      --key "$kf" --streams 1 --bytes 1 --timeout-ms 5000 >"$WORK/emb_$what.log" 2>&1 || rc=$?
    check "embedded server, $what certificate: the manager returns -EINVAL" \
      grep -q "embedded: manager rc=-22 " "$WORK/emb_$what.log"
    check "... and qpoold's reason, naming the file, is on the application's stderr" \
      grep -qF "$cf" "$WORK/emb_$what.log"
  done
  check "... no private qpoold left behind" test -z "$(pgrep -f -- "--control=$XDG_RUNTIME_DIR/qpool-" || true)"
else
  echo "SKIP: $LQP not built: embedded cases skipped"
fi
finish
