#!/usr/bin/env bash
# Untrusted applications on the control socket: garbage frames, a lying
# length, an fd attached to a request, unknown pools and operations, a client
# that disconnects with requests in flight, many clients at once — qpoold
# stays up, answers well-formed requests, and leaks no fd. The same on the
# worker sessions qpoold hands out (OP_SESSION), where the sandboxed worker
# reads the application directly: garbage, wrong operations, another pool's
# name, a client that never reads its answers or the stream fds it asked
# for — the worker drops that session only, stays up, leaks no fd.
. "$(dirname "$0")/lib.sh"
port=$(free_port)
export QPOOL_STATUS_FILE="$WORK/q.status"
start_bg q "$QPOOLD" server --name s --listen "127.0.0.1:$port" --max-cap 8 \
  --chroot "$WORK/empty" --control "$WORK/q.sock"
unset QPOOL_STATUS_FILE
wait_for "$WORK/q.log" "in the sandbox" 10
qpid=$(pid_of q)
# a client pool keeps 8 streams ready in s (for takes whose fd is never read)
start_bg c "$QPOOLD" client --name c --target "127.0.0.1:$port" --min-cap 8 \
  --max-cap 8 --min-interval 100ms --max-interval 100ms --chroot "$WORK/empty" \
  --control "$WORK/c.sock"
check "the client pool filled s" wait_status "$WORK/q.status" s idle_streams 8 20
wpid=$(status_of "$WORK/q.status" s pid)
fds_before=$(ls /proc/$qpid/fd | wc -l)
wfds_before=$(ls /proc/$wpid/fd | wc -l)
python3 - "$WORK/q.sock" >"$WORK/py.log" 2>&1 <<'PY'
import os, socket, struct, sys, time
path = sys.argv[1]
def conn():
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    s.connect(path)
    return s
def frame(t, payload):
    return struct.pack(">IH", len(payload), t) + payload
def varint(n):
    out = b""
    while True:
        b = n & 0x7f; n >>= 7
        out += bytes([b | (0x80 if n else 0)])
        if not n: return out
def request(tag, op, pool, timeout=0, sid=None):
    p = b"\x08" + varint(tag) + b"\x10" + varint(op) + b"\x1a" + varint(len(pool)) + pool
    if sid is not None: p += b"\x20" + varint(sid)
    p += b"\x28" + varint(timeout)
    return frame(1, p)
# 1. garbage, lying length, oversize, wrong type: each client is dropped
for junk in (b"", b"\x00", b"\xff" * 10, struct.pack(">IH", 999, 1) + b"abc",
             frame(7, b"\x08\x01"), frame(1, b"\xff\xff\xff"), b"x" * 300000):
    s = conn()
    try:
        s.send(junk)
        s.settimeout(2)
        print("junk", len(junk), "->", "closed" if s.recv(100) == b"" else "answered")
    except Exception as e:
        print("junk", len(junk), "->", type(e).__name__)
    s.close()
# 2. an fd attached to a request is not kept
s = conn()
r, w = os.pipe()
s.sendmsg([request(1, 1, b"s", 0)], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, struct.pack("i", r))])
os.close(r); os.close(w)
s.settimeout(5); print("with fd:", len(s.recv(1000)) > 0); s.close()
# 3. unknown pool, unknown op, missing stream id: answered with an error
s = conn(); s.settimeout(5)
s.send(request(2, 1, b"nosuch", 0)); print("unknown pool answered:", b"no pool named" in s.recv(1000))
s.send(request(3, 2, b"s", 0)); print("missing id answered:", b"stream_id" in s.recv(1000))
s.send(request(4, 1, b"s", 0)); print("empty pool answered:", len(s.recv(1000)) > 0)
s.close()
# 4. requests in flight, then disconnect (their answers must be dropped)
for i in range(20):
    s = conn()
    for t in range(50):
        s.send(request(t, 1, b"s", 500))
    s.close()
# 4b. takes through qpoold whose stream fds are never read, then close
s = conn()
for t in range(4):
    s.send(request(200 + t, 1, b"s", 1000))
time.sleep(1.0); s.close()
# 5. many clients at once
socks = [conn() for _ in range(200)]
for s in socks: s.close()
# 6. worker sessions: the worker reads the application itself
def session(tag):
    s = conn(); s.settimeout(5)
    s.send(request(tag, 8, b"s", 0))
    msg, anc, flags, addr = s.recvmsg(1000, socket.CMSG_SPACE(4))
    fds = [struct.unpack("i", d[:4])[0] for (l, t, d) in anc if t == socket.SCM_RIGHTS]
    s.close()
    ss = socket.socket(fileno=fds[0]); ss.setblocking(True); ss.settimeout(5)
    return ss
n = 0
for junk in (b"\x00", b"\xff" * 10, struct.pack(">IH", 999, 1) + b"abc",
             frame(7, b"\x08\x01"), frame(1, b"\xff\xff\xff")):
    ss = session(10)
    ss.send(junk)
    try:
        n += ss.recv(100) == b""
    except Exception as e:
        print("session junk:", type(e).__name__)
    ss.close()
print("session junk closed:", n)
ss = session(11)
ss.send(request(1, 3, b"s")); print("session stats refused:", b"takes streams only" in ss.recv(1000))
ss.send(request(2, 1, b"other")); print("session other pool refused:", b"another pool" in ss.recv(1000))
ss.send(request(3, 1, b"", 0)); print("session take answered:", len(ss.recv(1000)) > 0)
ss.close()
# takes whose stream fds are never read, then the session closes
ss = session(12)
for t in range(8):
    ss.send(request(100 + t, 1, b"s", 1000))
time.sleep(1.5); ss.close()
# a session that never reads its answers
ss = session(13); ss.setblocking(False)
sent, dropped = 0, False
for t in range(20000):
    try:
        ss.send(request(t, 2, b"s", 0, sid=0xfffffff0)); sent += 1
    except BlockingIOError:
        time.sleep(0.001)
    except (BrokenPipeError, ConnectionResetError):
        dropped = True
        break
print("flood: sent", sent, "dropped by the worker:", dropped); ss.close()
# many sessions at once
many = [session(14) for _ in range(300)]
for ss in many: ss.close()
time.sleep(1.5)
print("done")
PY
cat "$WORK/py.log"
check "qpoold survived hostile clients" kill -0 "$qpid"
check "garbage frames: each such client was dropped" test "$(grep -c -- '-> closed' "$WORK/py.log")" -ge 5
check "a request carrying an fd was answered (fd discarded)" grep -q "with fd: True" "$WORK/py.log"
check "unknown pool answered by name" grep -q "unknown pool answered: True" "$WORK/py.log"
check "OutgoingGet without an ID answered" grep -q "missing id answered: True" "$WORK/py.log"
check "an empty pool answers at the deadline" grep -q "empty pool answered: True" "$WORK/py.log"
sleep 1
fds_after=$(ls /proc/$qpid/fd | wc -l)
check "no fd leaked ($fds_before before, $fds_after after)" test "$fds_after" -le "$fds_before"
check "the worker is still the first one (never restarted)" test "$(status_of "$WORK/q.status" s worker_restarts)" = 0
check "garbage on a worker session: the worker dropped each of those sessions" grep -q "session junk closed: 5" "$WORK/py.log"
check "a session refuses other operations and other pools by name" \
  bash -c "grep -q 'session stats refused: True' '$WORK/py.log' && grep -q 'session other pool refused: True' '$WORK/py.log'"
check "a take on a session is answered" grep -q "session take answered: True" "$WORK/py.log"
check "a session that never reads its answers is dropped" grep -q "dropped by the worker: True" "$WORK/py.log"
check "the worker survived hostile sessions (pid $wpid)" kill -0 "$wpid"
wfds_after=$(ls /proc/$wpid/fd | wc -l)
check "the worker leaked no fd ($wfds_before before, $wfds_after after)" test "$wfds_after" -le "$wfds_before"
# the client side keeps the streams the hostile takers closed (finished
# streams stay idle until taken or flushed, as in the reference): flush it
check "the client pool flushes its finished streams" \
  env QPOOL_CONTROL="$WORK/c.sock" "$QP_BIN/qpoolctl" flush c
check "the pool refilled after the unread takes" wait_status "$WORK/q.status" s idle_streams 8 20
kill -TERM "$qpid" "$(pid_of c)"
check "qpoold stops cleanly" wait "$qpid"
finish
