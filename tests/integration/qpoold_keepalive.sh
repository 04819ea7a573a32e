#!/usr/bin/env bash
# keep-alive and idle timeout, as the reference (quic-go) has them: the idle
# timeout is 3 x keep-alive, and keep-alive 0 means no PINGs but quic-go's
# default idle timeout of 30 s (not "no idle timeout"). Read back from the
# connection (the negotiated value: the smaller of both sides'), and seen
# at work: a client with a 1 s keep-alive drops a peer that went silent
# after about 3 s. idle_timeout (--idle-timeout) sets it outright: a 1 s
# keep-alive client with a 5 s idle timeout drops the same peer after about
# 5 s. The help text says the same.
. "$(dirname "$0")/lib.sh"
port=$(free_port)
export QPOOL_STATUS_FILE="$WORK/s.status"
start_bg s "$QPOOLD" server --name s --listen "127.0.0.1:$port" --max-cap 4 \
  --keep-alive 0 --chroot "$WORK/empty" --control "$WORK/s.sock"
unset QPOOL_STATUS_FILE
wait_for "$WORK/s.log" "in the sandbox" 10

check "--help: idle timeout 0 means 3x keep-alive, or 30s" \
  bash -c "'$QPOOLD' --help | tr -s ' \n' '  ' |
           grep -q -- '--idle-timeout DUR .*(default 0: 3x --keep-alive, or 30s when that is 0'"
# refused SECONDS MESSAGE: --check of a 2 s keep-alive client with that
# idle timeout exits 2 with MESSAGE
refused() {
  local out rc
  out=$("$QPOOLD" client --name x --target 127.0.0.1:1 --keep-alive 2s \
    --idle-timeout "$1" --check 2>&1)
  rc=$?
  echo "$out" | head -1
  [ "$rc" = 2 ] && echo "$out" | grep -q -- "$2"
}
check "--check refuses an idle timeout not longer than the keep-alive" \
  refused 2s "--idle-timeout: 2s must be longer than --keep-alive 2s"
check "... and accepts a longer one" \
  "$QPOOLD" client --name x --target 127.0.0.1:1 --keep-alive 2s \
    --idle-timeout 2100ms --check

# QPOOL_NGTCP2_DEBUG=1 at the debug level: ngtcp2's own trace in the log
QPOOL_LOG=debug QPOOL_NGTCP2_DEBUG=1 start_bg dbg "$QPOOLD" client --name dbg \
  --target "127.0.0.1:$port" --chroot "$WORK/empty" --control "$WORK/dbg.sock"
check "QPOOL_NGTCP2_DEBUG=1: ngtcp2's packet trace in the worker's log" \
  wait_for "$WORK/dbg.log" "DEBUG: pool dbg: ngtcp2: .* pkt rx " 10
kill "$(pid_of dbg)"

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
check "the pool filled" wait_status "$WORK/c1.status" c1 idle_streams 2 10
# the same keep-alive with --idle-timeout 5s: 5 s
start_bg c5 "$QPOOLD" client --name c5 --target "127.0.0.1:$port" \
  --keep-alive 1s --idle-timeout 5s --chroot "$WORK/empty" \
  --control "$WORK/c5.sock"
check "keep-alive 1s, idle timeout 5s: idle timeout 5s" \
  wait_for "$WORK/c5.log" "pool c5: connected \(.*, idle timeout 5s\)" 10
sleep 4 # PINGs keep the idle connection up past its 3 s idle timeout
check "PINGs keep an idle connection up (no loss after 4 s idle)" \
  bash -c "! grep -q 'pool c1: connection to .* lost' '$WORK/c1.log'"
spid=$(pid_of s)
swpid=$(status_of "$WORK/s.status" s pid)
kill -STOP "$spid" "$swpid" # the server goes silent
t0=$(date +%s%N)
wait_for "$WORK/c1.log" "pool c1: connection to .* lost: idle timeout" 20
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
echo "silent peer dropped after $ms ms"
check "the silent peer is dropped after about 3 s ($ms ms: 2-8 s)" \
  test "$ms" -ge 2000 -a "$ms" -le 8000
wait_for "$WORK/c5.log" "pool c5: connection to .* lost: idle timeout" 20
ms5=$(( ($(date +%s%N) - t0) / 1000000 ))
kill -CONT "$spid" "$swpid"
echo "... and after $ms5 ms with --idle-timeout 5s"
check "with --idle-timeout 5s, after about 5 s ($ms5 ms: 4-10 s, later than 3 s)" \
  test "$ms5" -ge 4000 -a "$ms5" -le 10000 -a "$ms5" -gt "$ms"
check "... as an idle timeout (peer silent)" \
  grep -q "pool c1: connection to 127.0.0.1:$port lost: idle timeout (peer silent)" "$WORK/c1.log"
check "the keep-alive 0 client is still connected (30 s, not 3 s)" \
  bash -c "! grep -q 'pool c0: connection to .* lost' '$WORK/c0.log'"
check "... and it reconnects once the server answers again" \
  wait_status "$WORK/c1.status" c1 connected 1 15
finish
