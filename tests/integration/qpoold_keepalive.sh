#!/usr/bin/env bash
# keep-alive and idle timeout, as the reference (quic-go) has them: the idle
# timeout is 3 x keep-alive, and keep-alive 0 means no PINGs but quic-go's
# default idle timeout of 30 s (not "no idle timeout"). Read back from the
# connection (the negotiated value: the smaller of both sides'), and seen
# at work: a client with a 1 s keep-alive drops a peer that went silent
# after about 3 s. The help text says the same.
. "$(dirname "$0")/lib.sh"
port=$(free_port)
export QPOOL_STATUS_FILE="$WORK/s.status"
start_bg s "$QPOOLD" server --name s --listen "127.0.0.1:$port" --max-cap 4 \
  --keep-alive 0 --chroot "$WORK/empty" --control "$WORK/s.sock"
unset QPOOL_STATUS_FILE
wait_for "$WORK/s.log" "in the sandbox" 10

check "--help: keep-alive 0 means idle timeout 30s" \
  bash -c "'$QPOOLD' --help | grep -q '0: no PINGs, idle timeout 30s'"

# both sides 0: 30 s (quic-go's default), not none
start_bg c0 "$QPOOLD" client --name c0 --target "127.0.0.1:$port" \
  --keep-alive 0 --chroot "$WORK/empty" --control "$WORK/c0.sock"
check "keep-alive 0 on both sides: idle timeout 30s" \
  wait_for "$WORK/c0.log" "pool c0: connected \(.*, idle timeout 30s\)" 10
# both sides 0 except a 20 s client: 3 x 20 s is 60 s, the peer's 30 s wins
start_bg c20 "$QPOOLD" client --name c20 --target "127.0.0.1:$port" \
  --keep-alive 20s --chroot "$WORK/empty" --control "$WORK/c20.sock"
check "keep-alive 20s against a server with 0: idle timeout 30s (the smaller)" \
  wait_for "$WORK/c20.log" "pool c20: connected \(.*, idle timeout 30s\)" 10

# a 1 s keep-alive: 3 s; and a silent peer is really dropped after that
export QPOOL_STATUS_FILE="$WORK/c1.status"
start_bg c1 "$QPOOLD" client --name c1 --target "127.0.0.1:$port" \
  --keep-alive 1s --min-cap 2 --max-cap 2 --chroot "$WORK/empty" \
  --control "$WORK/c1.sock"
unset QPOOL_STATUS_FILE
check "keep-alive 1s: idle timeout 3s" \
  wait_for "$WORK/c1.log" "pool c1: connected \(.*, idle timeout 3s\)" 10
check "the pool filled" wait_status "$WORK/c1.status" c1 active 2 10
sleep 4 # PINGs keep the idle connection up past its 3 s idle timeout
check "PINGs keep an idle connection up (no loss after 4 s idle)" \
  bash -c "! grep -q 'pool c1: connection to .* lost' '$WORK/c1.log'"
spid=$(pid_of s)
swpid=$(status_of "$WORK/s.status" s pid)
kill -STOP "$spid" "$swpid" # the server goes silent
t0=$(date +%s%N)
wait_for "$WORK/c1.log" "pool c1: connection to .* lost: idle timeout" 20
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
kill -CONT "$spid" "$swpid"
echo "silent peer dropped after $ms ms"
check "the silent peer is dropped after about 3 s ($ms ms: 2-8 s)" \
  test "$ms" -ge 2000 -a "$ms" -le 8000
check "... as an idle timeout (peer silent)" \
  grep -q "pool c1: connection to 127.0.0.1:$port lost: idle timeout (peer silent)" "$WORK/c1.log"
check "the keep-alive 0 client is still connected (30 s, not 3 s)" \
  bash -c "! grep -q 'pool c0: connection to .* lost' '$WORK/c0.log'"
check "... and it reconnects once the server answers again" \
  wait_status "$WORK/c1.status" c1 connected 1 15
finish
