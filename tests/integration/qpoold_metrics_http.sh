#!/usr/bin/env bash
# qpoold's optional Prometheus endpoint (metrics_listen): off by default;
# when on, GET /metrics serves what `qpoolctl metrics` prints (promtool
# passes, the numbers agree); other paths, methods, malformed or oversized
# requests and idle connections get HTTP errors or are closed; qpoold stays
# up and leaks no fd. curl is the scraper.
. "$(dirname "$0")/lib.sh"
CTL="$QP_BIN/qpoolctl"
command -v curl >/dev/null || { echo "SKIP: curl not installed"; exit 77; }
tcp_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
mkdir -p "$WORK/empty"

# --- off by default: no TCP socket at all
port=$(free_port)
start_bg plain "$QPOOLD" server --name p --listen "127.0.0.1:$port" \
  --chroot "$WORK/empty" --control "$WORK/plain.sock"
wait_for "$WORK/plain.log" "running 1 pool" 10
check "without metrics_listen qpoold listens on no TCP port" \
  bash -c "! ss -ltnpH | grep -q 'pid=$(pid_of plain),'"
kill -TERM "$(pid_of plain)"; wait "$(pid_of plain)" || true

# --- a bad value is refused at start with the reason
out=$("$QPOOLD" server --name p --listen "127.0.0.1:$port" --metrics-listen 127.0.0.1 2>&1 || true)
check "metrics_listen without a port is refused ($out)" grep -q "not a numeric address with a port" <<<"$out"

# --- on: a server pool filled by a client pool, both in one qpoold
port=$(free_port)
mport=$(tcp_port)
cat >"$WORK/q.conf" <<EOF
[global]
control = $WORK/q.sock
chroot = $WORK/empty
metrics_listen = 127.0.0.1:$mport

[pool srv]
mode = server
listen = 127.0.0.1:$port
max_cap = 4

[pool cli]
mode = client
target = 127.0.0.1:$port
min_cap = 4
max_cap = 4
EOF
export QPOOL_STATUS_FILE="$WORK/q.status"
start_bg q "$QPOOLD" --config "$WORK/q.conf"
unset QPOOL_STATUS_FILE
qpid=$(pid_of q)
wait_for "$WORK/q.log" "metrics on http://127.0.0.1:$mport/metrics" 10
check "the pools fill" wait_status "$WORK/q.status" cli idle_streams 4 20
check "... server side too" wait_status "$WORK/q.status" srv idle_streams 4 20
url="http://127.0.0.1:$mport/metrics"
check "curl GET /metrics: 200" logrun "$WORK/m.txt" curl -sS -f -D "$WORK/m.hdr" "$url"
check "... Content-Type is the 0.0.4 text format" grep -qi "^content-type: text/plain; version=0.0.4" "$WORK/m.hdr"
if command -v promtool >/dev/null; then
  check "... promtool check metrics passes" logrun "$WORK/promtool.log" promtool check metrics <"$WORK/m.txt"
fi
"$CTL" --control "$WORK/q.sock" metrics >"$WORK/ctl.txt"
same() { # the samples that cannot move while the pools are steady
  grep -E '^qpool_(active|capacity|conns|ready|pool_info|worker_restarts_total)' "$1" | sort
}
check "... the same numbers as qpoolctl metrics (active, capacity, conns, ...)" \
  diff <(same "$WORK/m.txt") <(same "$WORK/ctl.txt")
check "... the same metric families as qpoolctl metrics" \
  diff <(grep '^# TYPE' "$WORK/m.txt") <(grep '^# TYPE' "$WORK/ctl.txt")
check "HEAD /metrics: 200 without a body" \
  bash -c "[ \"\$(curl -sS -I -o /dev/null -w '%{http_code}' '$url')\" = 200 ]"

fds_before=$(ls /proc/$qpid/fd | wc -l)
code() { curl -sS -o /dev/null -w '%{http_code}' "$@" || true; }
check "GET / -> 404" test "$(code "http://127.0.0.1:$mport/")" = 404
check "POST /metrics -> 405" test "$(code -X POST -d x "$url")" = 405
python3 - "$mport" >"$WORK/raw.log" 2>&1 <<'PY'
import socket, sys, time
port = int(sys.argv[1])
def ask(data, wait=3):
    s = socket.create_connection(("127.0.0.1", port)); s.settimeout(wait)
    s.sendall(data)
    try:
        r = s.recv(200)
    except socket.timeout:
        r = b"(timeout)"
    s.close()
    return r.split(b"\r\n")[0].decode(errors="replace")
print("garbage:", ask(b"\x00\xff hello\r\n\r\n"))
print("http2:", ask(b"GET /metrics HTTP/2.0\r\n\r\n"))
print("huge:", ask(b"GET /metrics HTTP/1.1\r\n" + b"X-Pad: " + b"a" * 8000 + b"\r\n\r\n"))
# idle connections: more than the endpoint keeps; all closed within 5 s
idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(24)]
t0 = time.time(); closed = 0
for s in idle:
    s.settimeout(8)
    try:
        closed += s.recv(10) == b""
    except (socket.timeout, ConnectionResetError):
        closed += 1
    s.close()
print("idle closed:", closed, "in %.1f s" % (time.time() - t0))
print("after:", ask(b"GET /metrics HTTP/1.0\r\n\r\n"))
PY
cat "$WORK/raw.log" | sed 's/^/# /'
check "garbage -> 400" grep -q "^garbage: HTTP/1.1 400" "$WORK/raw.log"
check "HTTP/2.0 request line -> 400" grep -q "^http2: HTTP/1.1 400" "$WORK/raw.log"
check "an 8 KB request head -> 431" grep -q "^huge: HTTP/1.1 431" "$WORK/raw.log"
check "24 idle connections are all closed (limit 16, 5 s deadline)" grep -q "^idle closed: 24 " "$WORK/raw.log"
check "... and the endpoint serves again" grep -q "^after: HTTP/1.1 200" "$WORK/raw.log"
sleep 0.5
fds_after=$(ls /proc/$qpid/fd | wc -l)
check "qpoold leaked no fd ($fds_before -> $fds_after)" test "$fds_after" -le "$fds_before"
check "qpoold is up" kill -0 "$qpid"
kill -TERM "$qpid"
check "qpoold stops cleanly" wait "$qpid"
finish
