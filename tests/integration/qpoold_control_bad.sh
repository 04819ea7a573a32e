#!/usr/bin/env bash
# Untrusted applications on the control socket: garbage frames, a lying
# length, an fd attached to a request, unknown pools and operations, a client
# that disconnects with requests in flight, many clients at once — qpoold
# stays up, answers well-formed requests, and leaks no fd.
. "$(dirname "$0")/lib.sh"
port=$(free_port)
export QPOOL_STATUS_FILE="$WORK/q.status"
start_bg q "$QPOOLD" server --name s --listen "127.0.0.1:$port" --max-cap 8 \
  --chroot "$WORK/empty" --control "$WORK/q.sock"
unset QPOOL_STATUS_FILE
wait_for "$WORK/q.log" "in the sandbox" 10
qpid=$(pid_of q)
fds_before=$(ls /proc/$qpid/fd | wc -l)
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
# 5. many clients at once
socks = [conn() for _ in range(200)]
for s in socks: s.close()
time.sleep(1.0)
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
check "the worker is still the first one (never restarted)" test "$(status_of "$WORK/q.status" s restarts)" = 0
kill -TERM "$qpid"
check "qpoold stops cleanly" wait "$qpid"
finish
