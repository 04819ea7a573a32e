#!/usr/bin/env bash
# A client pool whose server is down: it says why (the ICMP "connection
# refused", not libuv's "bad file descriptor"), in its status and in the
# log; it backs off (500 ms, 1 s, 2 s, 4 s, then every 5 s) instead of
# retrying every 500 ms; it logs the failure once (then at most every 30 s),
# not once per attempt; and once the server starts it connects and says
# after how many failed attempts. Stopping it during a handshake is not a
# failed attempt.
. "$(dirname "$0")/lib.sh"
CTL="$QP_BIN/qpoolctl"
port=$(free_port)
export QPOOL_STATUS_FILE="$WORK/c.status"
start_bg c "$QPOOLD" client --name c --target "127.0.0.1:$port" --min-cap 2 \
  --max-cap 2 --log-level debug --chroot "$WORK/empty" --control "$WORK/c.sock"
unset QPOOL_STATUS_FILE
check "the pool dials" wait_for "$WORK/c.log" "dialing 127.0.0.1:$port \\(attempt 0 since" 10

# watch the attempts for 6.5 s, noting when each one is made
declare -a at=()
t0=$(date +%s%N)
seen=0
while (( $(date +%s%N) - t0 < 6500000000 )); do
  n=$(grep -c "dialing 127.0.0.1:$port" "$WORK/c.log" || true)
  while (( seen < n )); do at+=("$(( ($(date +%s%N) - t0) / 1000000 ))"); seen=$((seen + 1)); done
  sleep 0.02
done
echo "attempts at (ms, first one counted at 0): ${at[*]}"
check "attempts back off: 3 to 6 in 6.5 s (500 ms fixed would make 13)" \
  test "$seen" -ge 3 -a "$seen" -le 6
# a retry every 500 ms would space attempts 3 and 4 by 0.5 s; the back-off
# by 2 s
check "the 4th attempt comes >= 1.5 s after the 3rd" \
  test "${#at[@]}" -ge 4 -a "$(( ${at[3]:-0} - ${at[2]:-0} ))" -ge 1500
check "the status says why: connection refused" \
  bash -c "grep -qE '^pool=c .*error=\"connection refused' '$WORK/c.status'"
check "qpoolctl status shows it" \
  bash -c "'$CTL' --control '$WORK/c.sock' status | grep -qE '^c +client .*connection refused \(no server at that address\)'"
check "no \"bad file descriptor\" anywhere in the log" \
  bash -c "! grep -i 'bad file descriptor' '$WORK/c.log'"
nfail=$(grep -c "pool c: connection to 127.0.0.1:$port failed" "$WORK/c.log" || true)
check "the failure is logged once ($nfail), not once per attempt" test "$nfail" -eq 1
check "... with its cause" \
  grep -q "pool c: connection to 127.0.0.1:$port failed: connection refused (no server at that address)" "$WORK/c.log"

# the server comes up: the pool connects within its back-off and fills
start_bg s "$QPOOLD" server --name s --listen "127.0.0.1:$port" --max-cap 4 \
  --chroot "$WORK/empty" --control "$WORK/s.sock"
check "the pool connects once the server is up" \
  wait_status "$WORK/c.status" c connected 1 15
check "... and fills" wait_status "$WORK/c.status" c idle_streams 2 10
check "... saying after how many failed attempts" \
  grep -qE "pool c: connected again after [0-9]+ failed attempts" "$WORK/c.log"
check "... and its last error is cleared" \
  bash -c "grep -qE '^pool=c .*error=\"\"' '$WORK/c.status'"

# the connection is lost (server gone): reconnecting starts at 500 ms again
kill -TERM "$(pid_of s)"; wait "$(pid_of s)" || true
check "a lost connection is logged as lost" \
  wait_for "$WORK/c.log" "pool c: connection to 127.0.0.1:$port lost" 15
kill -TERM "$(pid_of c)"; wait "$(pid_of c)" || true

# a server that never answers (a bound UDP socket nobody reads): stopping
# the pool during its handshake is no failed attempt and logs no warning
bh=$(free_port)
start_bg hole python3 -c "import socket, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(('127.0.0.1', $bh)); print('bound', flush=True); time.sleep(60)"
wait_for "$WORK/hole.log" "bound" 10
start_bg h "$QPOOLD" client --name h --target "127.0.0.1:$bh" --log-level debug \
  --chroot "$WORK/empty" --control "$WORK/h.sock"
wait_for "$WORK/h.log" "dialing 127.0.0.1:$bh" 10
sleep 0.5
kill -TERM "$(pid_of h)"; wait "$(pid_of h)" || true
check "stopping during a handshake logs no failure" \
  bash -c "! grep -E 'WARN|ERROR' '$WORK/h.log'"
finish
