#!/usr/bin/env bash
# TLS: mode 2 against a CA made at test time succeeds; a wrong hostname or an
# unknown CA fails with a clear error; a wrong ALPN is refused; TLS 1.3 with
# AES-GCM is what gets negotiated.
. "$(dirname "$0")/lib.sh"
ensure_certs
port=$(free_port)
start_bg srv "$PEER" server --listen "127.0.0.1:$port" --max-cap 8 \
  --cert "$TESTDATA/server.pem" --key "$TESTDATA/server.key" --timeout 100s
wait_for "$WORK/srv.log" "listening on" 10

cli() { "$PEER" client --target "127.0.0.1:$port" --min-cap 2 --max-cap 2 "$@"; }

if cli --tls-mode 2 --hostname qpool.test --ca "$TESTDATA/ca.pem" \
  --wait-active 2 --timeout 20s >"$WORK/good.log" 2>&1; then
  ok "mode 2 with the test CA and hostname qpool.test"
else
  not_ok "mode 2 with the test CA"; cat "$WORK/good.log"
fi
check "TLS 1.3 negotiated" grep -q "TLS1.3" "$WORK/good.log"
check "AES-GCM negotiated (not ChaCha20)" grep -qE "AES-(128|256)-GCM" "$WORK/good.log"

check "mode 2 with a wrong hostname fails" logrun "$WORK/badhost.log" cli --tls-mode 2 --hostname wrong.test --ca "$TESTDATA/ca.pem" \
  --expect-error "certificate verification failed" --timeout 20s
check "... and says the hostname does not match" \
  grep -qi "does not match" "$WORK/badhost.log"

check "mode 2 with an unrelated CA fails with a verification error" logrun "$WORK/badca.log" cli --tls-mode 2 --hostname qpool.test --ca "$TESTDATA/other-ca.pem" \
  --expect-error "certificate verification failed" --timeout 20s
check "... naming the untrusted signer" grep -qi "not trusted\|signer" "$WORK/badca.log"

check "mode 1 (no verification) connects to the same server" logrun "$WORK/mode1.log" cli --tls-mode 1 --wait-active 2 --timeout 20s
check "mode 0 connects too" logrun "$WORK/mode0.log" cli --tls-mode 0 --wait-active 2 --timeout 20s

check "a client offering ALPN h3 is refused (no_application_protocol)" logrun "$WORK/alpn.log" cli --alpn h3 --expect-error "application protocol" \
  --timeout 20s
check "... and never got a stream" grep -q "active=0 " "$WORK/alpn.log"

# a server with an in-memory self-signed certificate (no --cert)
port2=$(free_port)
start_bg selfsigned "$PEER" server --listen "127.0.0.1:$port2" --max-cap 4 --timeout 60s
wait_for "$WORK/selfsigned.log" "listening on" 10
check "self-signed in-memory certificate works in mode 1" logrun "$WORK/ss.log" "$PEER" client --target "127.0.0.1:$port2" --tls-mode 1 --min-cap 2 --max-cap 2 \
  --wait-active 2 --timeout 20s
check "... and is rejected in mode 2" logrun "$WORK/ss2.log" "$PEER" client --target "127.0.0.1:$port2" --tls-mode 2 --hostname qpool \
  --ca "$TESTDATA/ca.pem" --expect-error "certificate verification failed" \
  --timeout 20s
finish
