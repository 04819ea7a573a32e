#!/usr/bin/env bash
# A hostile worker attaching file descriptors where none belong: a GetResult
# with an error status AND an fd, a GetResult with an fd for a request nobody
# made, a Report and a DialRequest with an fd. qpoold kills that worker each
# time (and restarts it), stays up, and keeps none of the fds: each carries
# a marker file, and no fd of qpoold may point at one afterwards.
. "$(dirname "$0")/lib.sh"
cat >"$WORK/evil-worker" <<'PY'
#!/usr/bin/env python3
# Speaks just enough of proto/ipc.proto: Hello, then one bad message with an
# fd, chosen by how many incarnations came before.
import os, socket, struct, sys, time
work = os.path.dirname(os.path.abspath(sys.argv[0]))
count_file = os.path.join(work, "incarnations")
try:
    n = int(open(count_file).read())
except Exception:
    n = 0
open(count_file, "w").write(str(n + 1))
def varint(v):
    v &= (1 << 64) - 1  # negative int32: ten bytes, as protobuf does
    out = b""
    while True:
        b = v & 0x7f; v >>= 7
        out += bytes([b | (0x80 if v else 0)])
        if not v: return out
def frame(t, payload):
    return struct.pack(">IH", len(payload), t) + payload
s = socket.socket(fileno=3)
s.send(frame(201, b"\x08" + varint(os.getpid()) + b"\x12\x05" + b"0.1.0"))
kinds = [
    ("error-status", 206, b"\x08\x01\x10" + varint(-5)),      # GetResult, EIO
    ("unasked", 206, b"\x08\x63\x10\x00\x18\x07"),            # token 99, ok
    ("report", 203, b"\x0a\x01e"),                            # Report
    ("dial", 202, b"\x0a\x01e\x10\x01"),                      # DialRequest
    ("error-status-2", 206, b"\x08\x02\x10" + varint(-110)),  # ETIMEDOUT
]
name, t, payload = kinds[n % len(kinds)]
fd = os.open(os.path.join(work, "marker-" + name), os.O_RDONLY | os.O_CREAT, 0o600)
s.sendmsg([frame(t, payload)], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, struct.pack("i", fd))])
os.close(fd)
time.sleep(30)
PY
chmod +x "$WORK/evil-worker"
port=$(free_port)
QPOOL_WORKER="$WORK/evil-worker" start_bg q "$QPOOLD" server --name e \
  --listen "127.0.0.1:$port" --chroot "$WORK/empty" --control "$WORK/q.sock"
qpid=$(pid_of q)
for i in $(seq 1 200); do
  [ "$(cat "$WORK/incarnations" 2>/dev/null || echo 0)" -ge 6 ] && break
  sleep 0.05
done
check "qpoold restarted the hostile worker 5 times or more" \
  test "$(cat "$WORK/incarnations" 2>/dev/null || echo 0)" -ge 6
check "a GetResult with an error status and an fd ends the worker" \
  grep -q "sent an fd with a failed GetResult: killing it" "$WORK/q.log"
check "a GetResult nobody asked for ends it" \
  grep -q "sent an unasked-for GetResult: killing it" "$WORK/q.log"
check "a Report or DialRequest with an fd ends it" \
  grep -qE "sent (Report|DialRequest) \(type 20[23]\) with a file descriptor: killing it" "$WORK/q.log"
check "qpoold is still running" kill -0 "$qpid"
held=$(ls -l "/proc/$qpid/fd" | grep -c "marker-" || true)
ls -l "/proc/$qpid/fd" | grep "marker-" || true
check "qpoold holds none of the fds the worker sent ($held held)" test "$held" -eq 0
for m in error-status unasked report dial error-status-2; do
  check "marker $m was sent" test -e "$WORK/marker-$m"
done
kill -TERM "$qpid"; wait "$qpid" || true
finish
