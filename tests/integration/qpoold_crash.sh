#!/usr/bin/env bash
# Failure model: SIGKILL of one worker -> qpoold restarts it after 100 ms, its
# pool serves again (the client reconnects and refills) and the pool in the
# other worker is untouched. SIGKILL of qpoold -> every worker exits
# (parent-death signal). A hostile "worker" sending malformed frames is
# killed and restarted; qpoold stays up. A worker of another version is
# refused with a message that says so.
. "$(dirname "$0")/lib.sh"
p1=$(free_port); p2=$(free_port); pc=$(free_port)
cat >"$WORK/q.conf" <<CONF
[global]
workers = 0
chroot = $WORK/empty
control = $WORK/q.sock

[pool a]
mode = server
listen = 127.0.0.1:$p1
max_cap = 8

[pool b]
mode = server
listen = 127.0.0.1:$p2
max_cap = 8

[pool c]
mode = server
listen = 127.0.0.1:$pc
max_cap = 16
CONF
export QPOOL_STATUS_FILE="$WORK/q.status"
start_bg q "$QPOOLD" --config "$WORK/q.conf"
unset QPOOL_STATUS_FILE
wait_for "$WORK/q.log" "running 3 pool" 10
start_bg ca "$PEER" client --target "127.0.0.1:$p1" --min-cap 4 --max-cap 4 \
  --min-interval 100ms --max-interval 200ms --keep-alive 300ms --report 100 --timeout 60s --duration 30s
start_bg cb "$PEER" client --target "127.0.0.1:$p2" --min-cap 4 --max-cap 4 \
  --min-interval 100ms --max-interval 200ms --keep-alive 300ms --report 100 --timeout 60s --duration 30s
check "pool a filled" wait_status "$WORK/q.status" a idle_streams 4 15
check "pool b filled" wait_status "$WORK/q.status" b idle_streams 4 15
wa=$(status_of "$WORK/q.status" a pid); wb=$(status_of "$WORK/q.status" b pid)
check "pools run in different workers ($wa, $wb)" test "$wa" != "$wb"
nb=$(grep -c "^stats" "$WORK/cb.log")
# data keeps moving through pool c (a third worker) while a's worker dies:
# np-test with the server side's streams taken from qpoold
start_bg xb_srv "$PEER" server --control "$WORK/q.sock" --pool c --streams 8 \
  --bytes 33554432 --timeout 120s
start_bg xb_cli "$PEER" client --target "127.0.0.1:$pc" --min-cap 8 --max-cap 16 \
  --streams 8 --bytes 33554432 --timeout 120s
sleep 0.5
t0=$(date +%s%N)
kill -9 "$wa"
xfer_alive=0; kill -0 "$(pid_of xb_cli)" 2>/dev/null && xfer_alive=1
restarted() { local p; p=$(status_of "$WORK/q.status" a pid); [ -n "$p" ] && [ "$p" != 0 ] && [ "$p" != "$wa" ]; }
for i in $(seq 1 100); do restarted && break; sleep 0.05; done
t1=$(date +%s%N)
# the contract is the first back-off (100 ms, in qpoold's log); the time seen
# here adds the status file's 200 ms period and, on a loaded machine,
# scheduling (1088 ms once with four suites on 2 cores): only bounded at 5 s
check "qpoold restarts the worker after its first back-off" \
  wait_for "$WORK/q.log" "worker [0-9]+: restarting in 100 ms" 5
check "worker of pool a restarted ($(( (t1 - t0) / 1000000 )) ms)" restarted
check "qpoold logged the death" grep -q "killed by signal 9" "$WORK/q.log"
check "pool a's client reconnected and refilled" \
  wait_for "$WORK/ca.log" "^stats.* active=4 .*conns_failed=[0-9]+ connected=1" 20
check "pool a serves again (qpoold view)" wait_status "$WORK/q.status" a idle_streams 4 10
check "pool b's worker is the same process" test "$(status_of "$WORK/q.status" b pid)" = "$wb"
check "pool b's client never lost its connection" \
  bash -c "tail -n +$nb '$WORK/cb.log' | grep '^stats' | grep -vq 'connected=1' && exit 1 || exit 0"

check "pool c moved 8 x 32 MiB both ways byte-exactly across the crash (client)" wait "$(pid_of xb_cli)"
check "... (server side, streams from qpoold)" wait "$(pid_of xb_srv)"
check "the transfer was still running when worker a died" test "$xfer_alive" = 1

# a hostile worker: malformed frames must end it, never the supervisor
cat >"$WORK/evil-worker" <<'PY'
#!/usr/bin/env python3
import socket, os, time
s = socket.socket(fileno=3)
s.send(b"\x00\x00\xff\xff\x00\xc9garbage")   # length field lies
s.send(b"\x00\x00\x00\x02\x00\xcb\xff\xff")  # bad protobuf
time.sleep(5)
PY
chmod +x "$WORK/evil-worker"
p3=$(free_port)
QPOOL_WORKER="$WORK/evil-worker" start_bg evil "$QPOOLD" server --name e \
  --listen "127.0.0.1:$p3" --chroot "$WORK/empty" --control "$WORK/e.sock"
check "qpoold kills a worker that sends malformed frames" \
  wait_for "$WORK/evil.log" "malformed frame.*killing it" 10
check "... and restarts it" wait_for "$WORK/evil.log" "restarting in" 5
check "qpoold itself is still running" kill -0 "$(pid_of evil)"
kill -TERM "$(pid_of evil)"; wait "$(pid_of evil)" || true

# a worker of another build (a half-upgraded install): a well-formed Hello
# with another version is refused by name, never served
cat >"$WORK/old-worker" <<'PY'
#!/usr/bin/env python3
import socket, struct, time, os
s = socket.socket(fileno=3)
v = b"9.9.9"
hello = b"\x08" + bytes([os.getpid() & 0x7f]) + b"\x12" + bytes([len(v)]) + v
s.send(struct.pack(">IH", len(hello), 201) + hello)
time.sleep(5)
PY
chmod +x "$WORK/old-worker"
p4=$(free_port)
QPOOL_WORKER="$WORK/old-worker" start_bg old "$QPOOLD" server --name o \
  --listen "127.0.0.1:$p4" --chroot "$WORK/empty" --control "$WORK/o.sock"
check "qpoold refuses a worker of another version, saying why" \
  wait_for "$WORK/old.log" "is version 9\.9\.9, qpoold is [0-9.]+: install qpoold and qpool-worker from one build: killing it" 10
check "... and tries a new one after its back-off" wait_for "$WORK/old.log" "worker 0: restarting in" 5
kill -TERM "$(pid_of old)"; wait "$(pid_of old)" || true

# SIGKILL of the supervisor: every worker exits by the parent-death signal
workers=$(pgrep -P "$(pid_of q)" || true)
kill -9 "$(pid_of q)"
gone() { for w in $workers; do [ -e /proc/$w ] && [ "$(awk '{print $3}' /proc/$w/stat)" != Z ] && return 1; done; return 0; }
for i in $(seq 1 40); do gone && break; sleep 0.05; done
check "SIGKILL of qpoold: all workers ($workers) exit" gone
finish
