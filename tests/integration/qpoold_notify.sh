#!/usr/bin/env bash
# qpoold speaks the sd_notify protocol (what systemd's Type=notify and
# libqpool's embedded mode wait for): READY=1 once it serves, RELOADING=1 /
# READY=1 around SIGHUP, STOPPING=1 on SIGTERM, ERRNO= when it cannot start.
# The test plays systemd: a Unix datagram socket in NOTIFY_SOCKET.
. "$(dirname "$0")/lib.sh"
mkdir -p "$WORK/empty"
python3 - "$WORK/notify" >"$WORK/notify.log" 2>&1 <<'PY' &
import socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1]); s.settimeout(30)
end = time.time() + 60
while time.time() < end:
    try:
        m = s.recv(4096).decode()
    except socket.timeout:
        break
    print(m.replace("\n", " | "), flush=True)
PY
PIDS+=($!)
for _ in $(seq 1 100); do [ -S "$WORK/notify" ] && break; sleep 0.05; done
port=$(free_port)
NOTIFY_SOCKET="$WORK/notify" start_bg q "$QPOOLD" server --name s --listen "127.0.0.1:$port" \
  --chroot "$WORK/empty" --control "$WORK/q.sock"
check "READY=1 with a status line once qpoold serves" wait_for "$WORK/notify.log" "READY=1 \| STATUS=1 pool\(s\) in 1 worker\(s\)" 10
check "... only after the control socket exists" test -S "$WORK/q.sock"
kill -HUP "$(pid_of q)"
check "SIGHUP: RELOADING=1, then READY=1 again" wait_for "$WORK/notify.log" "RELOADING=1" 10
wait_for "$WORK/notify.log" "READY=1.*" 10
check "... READY twice in all" bash -c "[ \$(grep -c READY=1 '$WORK/notify.log') -ge 2 ]"
kill -TERM "$(pid_of q)"
check "SIGTERM: STOPPING=1" wait_for "$WORK/notify.log" "STOPPING=1" 10
check "qpoold exits 0" wait "$(pid_of q)"
# the port is busy: qpoold says why, in the protocol too
python3 -u -c "import socket,time; s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM); s.bind(('127.0.0.1',0)); print(s.getsockname()[1]); time.sleep(20)" >"$WORK/holder" &
PIDS+=($!)
for _ in $(seq 1 100); do [ -s "$WORK/holder" ] && break; sleep 0.05; done
port=$(cat "$WORK/holder")
set +e
NOTIFY_SOCKET="$WORK/notify" timeout 20 "$QPOOLD" server --name s --listen "127.0.0.1:$port" \
  --chroot "$WORK/empty" --control "$WORK/q2.sock" >"$WORK/q2.log" 2>&1
rc=$?
set -e
check "a start that fails exits non-zero ($rc)" test "$rc" -ne 0
check "... with ERRNO=98 (EADDRINUSE) and the reason in STATUS" \
  wait_for "$WORK/notify.log" "ERRNO=98 \| STATUS=pool s: cannot listen on 127.0.0.1:$port" 10
finish
