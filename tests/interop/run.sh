#!/usr/bin/env bash
# Wire-compatibility tests: the C np-peer (qpool) against nppeer, an
# independent Go implementation of np-quic built on quic-go (nppeer/main.go).
# Both run the np-test exchange of docs/np-test.md.
#
# Run by ctest with QP_BIN (build dir, holding tests/np-peer) and QP_SRC.
# Exit 0: all cases passed; 1: a case failed; 77: Go or quic-go missing.
# Optional: QP_GOPATH (default /usr/share/gocode), QP_INTEROP_TIMEOUT (120 s).
set -euo pipefail

QP_SRC=${QP_SRC:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
QP_BIN=${QP_BIN:?QP_BIN (the build directory) must be set}
GOPATH_DIR=${QP_GOPATH:-/usr/share/gocode}
CASE_TIMEOUT=${QP_INTEROP_TIMEOUT:-120}

if ! command -v go >/dev/null 2>&1 ||
	[ ! -d "$GOPATH_DIR/src/github.com/lucas-clemente/quic-go" ]; then
	echo "SKIP: Go or quic-go missing (install golang-go golang-github-lucas-clemente-quic-go-dev)"
	exit 77
fi

OUT=$QP_BIN/interop
LOGS=$OUT/logs
NPPEER=$OUT/nppeer
NPC=$QP_BIN/tests/np-peer
mkdir -p "$OUT" "$LOGS"

PIDS=()
cleanup() {
	local pid
	for pid in ${PIDS[@]+"${PIDS[@]}"}; do
		kill "$pid" 2>/dev/null || true
	done
	for pid in ${PIDS[@]+"${PIDS[@]}"}; do
		wait "$pid" 2>/dev/null || true
	done
}
trap cleanup EXIT

PASSED=0
FAILED=0
pass() {
	echo "ok - $1"
	PASSED=$((PASSED + 1))
}
fail() { # name reason log...
	local name=$1 reason=$2 f
	shift 2
	echo "not ok - $name ($reason)"
	for f in "$@"; do
		[ -f "$f" ] || continue
		echo "#   --- $(basename "$f")"
		tail -n 20 "$f" | sed 's/^/#   /'
	done
	FAILED=$((FAILED + 1))
}

# --- build the Go peer (GOPATH mode, no network) ---------------------------
if ! (cd "$QP_SRC" &&
	env GO111MODULE=off GOPATH="$GOPATH_DIR" GOCACHE="$OUT/gocache" \
		GOFLAGS= GOPROXY=off HOME="${HOME:-$OUT}" \
		go build -o "$NPPEER" ./tests/interop/nppeer/main.go) >"$LOGS/build.log" 2>&1; then
	fail "build nppeer" "go build failed" "$LOGS/build.log"
	echo "$PASSED passed, $FAILED failed"
	exit 1
fi

# free_port HOST: a UDP port that is free right now on HOST.
free_port() {
	if command -v python3 >/dev/null 2>&1; then
		python3 - "$1" <<'EOF'
import socket, sys
host = sys.argv[1]
s = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_DGRAM)
s.bind((host, 0))
print(s.getsockname()[1])
EOF
	else
		echo $((20000 + RANDOM % 40000))
	fi
}

# start_server LOG CMD...: run CMD in the background, wait for its
# "listening on ADDR" line, set SERVER_PID and SERVER_ADDR. Fails (1) if the
# server dies or does not listen within 15 s.
start_server() {
	local log=$1
	shift
	timeout "$CASE_TIMEOUT" "$@" >"$log" 2>&1 &
	SERVER_PID=$!
	PIDS+=("$SERVER_PID")
	SERVER_ADDR=
	for _ in $(seq 150); do
		SERVER_ADDR=$(sed -n 's/.*listening on \([^ ]*\).*/\1/p' "$log" | head -n 1)
		[ -n "$SERVER_ADDR" ] && return 0
		kill -0 "$SERVER_PID" 2>/dev/null || return 1
		sleep 0.1
	done
	return 1
}

stop_server() {
	kill "$SERVER_PID" 2>/dev/null || true
	wait "$SERVER_PID" 2>/dev/null || true
}

# run_client LOG CMD...: run CMD in the foreground, set CLIENT_RC.
run_client() {
	local log=$1
	shift
	CLIENT_RC=0
	timeout "$CASE_TIMEOUT" "$@" >"$log" 2>&1 || CLIENT_RC=$?
}

# exchange NAME STREAMS BYTES SERVER-CMD -- CLIENT-CMD: a full np-test run;
# the client command gets the server's address appended as its target.
exchange() {
	local name=$1 streams=$2 bytes=$3 slog clog src=0 scmd=() ccmd=()
	local want="np-test: $streams streams ok, $bytes bytes each way"
	shift 3
	while [ "$1" != "--" ]; do
		scmd+=("$1")
		shift
	done
	shift
	ccmd=("$@")
	slog="$LOGS/${name// /_}.server.log"
	clog="$LOGS/${name// /_}.client.log"
	if ! start_server "$slog" "${scmd[@]}"; then
		stop_server
		fail "$name" "server did not start" "$slog"
		return 0
	fi
	run_client "$clog" "${ccmd[@]}" "$SERVER_ADDR"
	if [ "$CLIENT_RC" -ne 0 ]; then
		# the server may be waiting for streams that never come
		for _ in $(seq 20); do
			kill -0 "$SERVER_PID" 2>/dev/null || break
			sleep 0.1
		done
		kill "$SERVER_PID" 2>/dev/null || true
	fi
	wait "$SERVER_PID" || src=$?
	if [ "$CLIENT_RC" -ne 0 ] || [ "$src" -ne 0 ]; then
		fail "$name" "client exit $CLIENT_RC, server exit $src" "$slog" "$clog"
	elif ! grep -qxF "$want" "$slog" || ! grep -qxF "$want" "$clog"; then
		fail "$name" "success line missing" "$slog" "$clog"
	else
		pass "$name"
	fi
}

have_c_peer() {
	if [ -x "$NPC" ]; then
		return 0
	fi
	fail "$1" "C peer $NPC missing"
	return 1
}

MiB4=4194304

# 1. the Go peer against itself
exchange "Go server <-> Go client, 8 x 1 MiB" 8 1048576 \
	"$NPPEER" server -listen 127.0.0.1:0 -streams 8 -bytes 1048576 -max-cap 32 -- \
	"$NPPEER" client -streams 8 -bytes 1048576 -max-cap 32 -target

# 2. Go server, C client
name="Go server <-> C client, 16 x 4 MiB"
if have_c_peer "$name"; then
	exchange "$name" 16 $MiB4 \
		"$NPPEER" server -listen 127.0.0.1:0 -streams 16 -bytes $MiB4 -max-cap 32 -- \
		"$NPC" client --streams 16 --bytes $MiB4 --min-cap 8 --max-cap 32 --target
fi

# 3./4. C server, Go client, over IPv4 and IPv6
for host in 127.0.0.1 ::1; do
	name="C server <-> Go client, 16 x 4 MiB, $host"
	if have_c_peer "$name"; then
		port=$(free_port "$host")
		[ "$host" = ::1 ] && addr="[::1]:$port" || addr="$host:$port"
		exchange "$name" 16 $MiB4 \
			"$NPC" server --listen "$addr" --streams 16 --bytes $MiB4 --max-cap 32 -- \
			"$NPPEER" client -streams 16 -bytes $MiB4 -max-cap 32 -target
	fi
done

# 5. a client offering the wrong ALPN must be refused by the C server
name="C server refuses ALPN h3"
if have_c_peer "$name"; then
	slog=$LOGS/alpn.server.log
	clog=$LOGS/alpn.client.log
	port=$(free_port 127.0.0.1)
	if ! start_server "$slog" "$NPC" server --listen "127.0.0.1:$port" \
		--streams 1 --bytes 1 --max-cap 32; then
		fail "$name" "server did not start" "$slog"
	else
		run_client "$clog" "$NPPEER" client -alpn h3 -timeout 30s -target "$SERVER_ADDR"
		refusal=$(grep '^np-test: FAIL' "$clog" | grep -iE 'no.application.protocol|0x178|alpn' |
			grep -F '(from peer)' || true)
		if [ "$CLIENT_RC" -eq 0 ]; then
			fail "$name" "the Go client connected" "$clog" "$slog"
		elif [ -z "$refusal" ]; then
			fail "$name" "no ALPN refusal from the server in the client's output" "$clog" "$slog"
		else
			pass "$name"
		fi
	fi
	stop_server
fi

# 6. a server pool with another client IP set must reject the C client
name="Go server with client IP 127.0.0.2 rejects the C client"
if have_c_peer "$name"; then
	slog=$LOGS/clientip.server.log
	clog=$LOGS/clientip.client.log
	if ! start_server "$slog" "$NPPEER" server -listen 127.0.0.1:0 -client-ip 127.0.0.2 \
		-streams 1 -bytes 1 -max-cap 32 -timeout 100s; then
		fail "$name" "server did not start" "$slog"
	else
		run_client "$clog" "$NPC" client --streams 1 --bytes 1 --min-cap 8 --max-cap 32 \
			--target "$SERVER_ADDR"
		if [ "$CLIENT_RC" -eq 0 ]; then
			fail "$name" "the C client succeeded" "$clog" "$slog"
		elif ! grep -qF "unauthorized IP" "$clog"; then
			fail "$name" "the C client did not report \"unauthorized IP\"" "$clog" "$slog"
		else
			pass "$name"
		fi
	fi
	stop_server
fi

# 7. a stream closed by its application before the peer takes it keeps its
#    bytes (docs/np-test.md "early"): the writer takes 00000000, writes a
#    line and closes it (Go: Close = FIN; qpool: close() = FIN +
#    STOP_SENDING); the reader takes it a second later and reads the line,
#    then EOF. SERVER-CMD -- CLIENT-CMD as for exchange.
early_case() {
	local name=$1 slog clog src=0 scmd=()
	shift
	while [ "$1" != "--" ]; do
		scmd+=("$1")
		shift
	done
	shift
	slog="$LOGS/${name// /_}.server.log"
	clog="$LOGS/${name// /_}.client.log"
	if ! start_server "$slog" "${scmd[@]}"; then
		stop_server
		fail "$name" "server did not start" "$slog"
		return 0
	fi
	run_client "$clog" "$@" "$SERVER_ADDR"
	wait "$SERVER_PID" || src=$?
	if [ "$CLIENT_RC" -ne 0 ] || [ "$src" -ne 0 ]; then
		fail "$name" "client exit $CLIENT_RC, server exit $src" "$slog" "$clog"
	elif ! grep -qh "^early: wrote" "$slog" "$clog" ||
		! grep -qh "^early: read" "$slog" "$clog"; then
		fail "$name" "early lines missing" "$slog" "$clog"
	else
		pass "$name"
	fi
}
if have_c_peer "early close"; then
	early_case "Go server closes 00000000 early, C client reads it later" \
		"$NPPEER" server -listen 127.0.0.1:0 -max-cap 4 -early write -linger 10s -- \
		"$NPC" client --min-cap 1 --max-cap 1 --early read --timeout 30s --target
	early_case "C client closes 00000000 early, Go server reads it later" \
		"$NPPEER" server -listen 127.0.0.1:0 -max-cap 4 -early read -- \
		"$NPC" client --min-cap 1 --max-cap 1 --early write --duration 4s --timeout 30s --target
	port=$(free_port 127.0.0.1)
	early_case "C server closes 00000000 early, Go client reads it later" \
		"$NPC" server --listen "127.0.0.1:$port" --max-cap 4 --early write --duration 4s --timeout 30s -- \
		"$NPPEER" client -max-cap 4 -early read -target
	port=$(free_port 127.0.0.1)
	early_case "Go client closes 00000000 early, C server reads it later" \
		"$NPC" server --listen "127.0.0.1:$port" --max-cap 4 --early read --timeout 30s -- \
		"$NPPEER" client -max-cap 4 -early write -linger 10s -target
fi

echo "$PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
