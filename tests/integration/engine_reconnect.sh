#!/usr/bin/env bash
# Reconnect: SIGKILL the server process, start it again on the same port — the
# client pool notices (idle timeout = 3 x keep-alive), reconnects every 500 ms
# and refills by itself.
. "$(dirname "$0")/lib.sh"
port=$(free_port)
start_bg srv1 "$PEER" server --listen "127.0.0.1:$port" --max-cap 16 --timeout 60s
wait_for "$WORK/srv1.log" "listening on" 10
start_bg cli "$PEER" client --target "127.0.0.1:$port" --min-cap 8 --max-cap 8 \
  --min-interval 100ms --max-interval 200ms --keep-alive 500ms --report 100 \
  --duration 40s --timeout 60s
check "client filled to 8" wait_for "$WORK/cli.log" "^stats.* active=8 .*connected=1" 15
kill -9 "$(pid_of srv1)"
check "client saw the connection die" wait_for "$WORK/cli.log" "^stats.* connected=0" 10
check "... and dropped its idle streams" wait_for "$WORK/cli.log" "^stats.* active=0 .*connected=0" 5
n_before=$(grep -c "^stats" "$WORK/cli.log")
start_bg srv2 "$PEER" server --listen "127.0.0.1:$port" --max-cap 16 --timeout 60s
wait_for "$WORK/srv2.log" "listening on" 10
refilled() { tail -n +"$n_before" "$WORK/cli.log" | grep -qE "^stats.* active=8 .*connected=1"; }
for i in $(seq 1 100); do refilled && break; sleep 0.1; done
check "client reconnected to the new server and refilled to 8" refilled
kill "$(pid_of cli)" 2>/dev/null || true
finish
