#!/usr/bin/env bash
# qpoolctl against a qpoold server pool and a qpoold client pool: incoming /
# outgoing pair up and carry 1 MiB each way byte-exactly (stdin EOF gives the
# peer EOF); status, stats --json and metrics (promtool, prometheus_client)
# agree; flush empties and the pool refills; add-error / reset-errors; watch;
# usage errors exit 2, runtime errors exit 1, each with a clear message.
. "$(dirname "$0")/lib.sh"
CTL="$QP_BIN/qpoolctl"
port=$(free_port)
export QPOOL_STATUS_FILE="$WORK/srv.status"
start_bg srv "$QPOOLD" server --name srv --listen "127.0.0.1:$port" --max-cap 16 \
  --chroot "$WORK/empty" --control "$WORK/srv.sock"
wait_for "$WORK/srv.log" "running 1 pool" 10
export QPOOL_STATUS_FILE="$WORK/cli.status"
start_bg cli "$QPOOLD" client --name cli --target "127.0.0.1:$port" --min-cap 4 \
  --max-cap 4 --chroot "$WORK/empty" --control "$WORK/cli.sock"
unset QPOOL_STATUS_FILE
check "client pool filled to 4" wait_status "$WORK/cli.status" cli idle_streams 4 15
export QPOOL_CONTROL="$WORK/cli.sock"

# ---- streams: incoming on the client pool, outgoing on the server pool ----
head -c 1048576 /dev/urandom >"$WORK/up"
head -c 1048576 /dev/urandom >"$WORK/down"
"$CTL" incoming --timeout 10s cli <"$WORK/up" >"$WORK/up.back" 2>"$WORK/in.err" &
inpid=$!
PIDS+=("$inpid")
wait_for "$WORK/in.err" '^[0-9a-f]{8}$' 10 || true
id=$(grep -E '^[0-9a-f]{8}$' "$WORK/in.err" | head -1)
check "incoming printed the stream ID on stderr ($id)" test -n "$id"
rc=0
timeout 60 "$CTL" --control "$WORK/srv.sock" outgoing --timeout 10s srv "$id" \
  <"$WORK/down" >"$WORK/down.back" 2>"$WORK/out.err" || rc=$?
check "outgoing takes that stream on the server pool and finishes (exit $rc)" test "$rc" = 0
check "incoming exits 0 once both directions are done" wait "$inpid"
sum() { sha256sum <"$1" | cut -d' ' -f1; }
check "1 MiB client -> server arrived byte-exactly" test "$(sum "$WORK/up")" = "$(sum "$WORK/down.back")"
check "1 MiB server -> client arrived byte-exactly" test "$(sum "$WORK/down")" = "$(sum "$WORK/up.back")"

# stdin EOF half-closes: an empty stdin on one end gives the other EOF while
# data still flows the other way
"$CTL" incoming cli </dev/null >"$WORK/h.back" 2>"$WORK/h.err" &
hpid=$!
PIDS+=("$hpid")
wait_for "$WORK/h.err" '^[0-9a-f]{8}$' 10 || true
hid=$(grep -E '^[0-9a-f]{8}$' "$WORK/h.err" | head -1)
echo "hello from the server" >"$WORK/h.msg"
check "stdin EOF on one end gives the peer EOF (outgoing reads 0 bytes and exits)" logrun \
  "$WORK/h.out" timeout 20 "$CTL" --control "$WORK/srv.sock" outgoing srv "$hid" <"$WORK/h.msg"
check "... and the other direction still carried its data" wait "$hpid"
check "... byte-exactly" cmp -s "$WORK/h.msg" "$WORK/h.back"
check "outgoing for an unknown stream times out (exit 1)" bash -c \
  "! '$CTL' --control '$WORK/srv.sock' outgoing --timeout 300ms srv 7fffff01 </dev/null >/dev/null 2>'$WORK/to.err'"
check "... saying which request failed" grep -q "outgoing srv 7fffff01: " "$WORK/to.err"
check "client pool refilled to 4" wait_status "$WORK/cli.status" cli idle_streams 4 15

# ---- status / stats --json / metrics ----
check "status lists the pool" logrun "$WORK/status.txt" "$CTL" status
check "... with its name, role and state" grep -qE '^cli +client +[0-9]+ +ready +4 +4 ' "$WORK/status.txt"
check "status of the server pool too" bash -c "'$CTL' --control '$WORK/srv.sock' status | grep -qE '^srv +server '"
check "stats --json parses" bash -c "'$CTL' stats --json >'$WORK/stats.json' && python3 -m json.tool '$WORK/stats.json' >/dev/null"
jget() { python3 -c "import json,sys; p=json.load(open(sys.argv[1]))['pools'][0]; print(p[sys.argv[2]])" "$WORK/stats.json" "$1"; }
check "stats --json numbers match (4 idle, capacity 4, 1s interval, 1 connection)" \
  test "$(jget idle_streams)/$(jget capacity)/$(jget interval_seconds)/$(jget connections)/$(jget name)" = "4/4/1.0/1/cli"
check "stats --json has the attributes and every counter and gauge" python3 -c "
import json,sys
p=json.load(open('$WORK/stats.json'))['pools'][0]
want='name role worker worker_pid failed ready idle_streams capacity interval_seconds app_errors connected connections streams_created streams_taken streams_failed streams_refused setup_errors in_bytes out_bytes rejected_ips dropped_datagrams handoffs sessions stateless_resets worker_restarts congestion_control max_stream_window last_error'.split()
missing=[k for k in want if k not in p]
print('missing:', missing) if missing else None
sys.exit(1 if missing else 0)"
check "the status file has the same keys as stats --json" python3 -c "
import json,sys
p=json.load(open('$WORK/stats.json'))['pools'][0]
line=[l for l in open('$WORK/cli.status') if l.startswith('pool=cli ')][0]
keys={kv.split('=')[0] for kv in line.split() if '=' in kv}
skip={'name','role','worker_pid','congestion_control','max_stream_window','last_error'}
missing=[k for k in p if k not in keys and k not in skip]
print('missing:', missing) if missing else None
sys.exit(1 if missing else 0)"
check "the taken stream counted (streams_taken >= 2, in_bytes >= 1 MiB)" \
  test "$(jget streams_taken)" -ge 2 -a "$(jget in_bytes)" -ge 1048576
"$CTL" --control "$WORK/srv.sock" metrics >"$WORK/srv.prom"
check "metrics printed" logrun "$WORK/cli.prom" "$CTL" metrics
if command -v promtool >/dev/null; then
  check "promtool check metrics passes (client)" logrun "$WORK/promtool1.log" promtool check metrics <"$WORK/cli.prom"
  check "promtool check metrics passes (server)" logrun "$WORK/promtool2.log" promtool check metrics <"$WORK/srv.prom"
else
  echo "SKIP: promtool not installed (Debian package prometheus): promtool check skipped"
fi
# python3-prometheus-client is Debian's: use the system python when the
# python3 on PATH (pyenv, venv) does not have it
PYPROM=python3
python3 -c 'import prometheus_client' 2>/dev/null || PYPROM=/usr/bin/python3
promparse() { # FILE: name{pool} value lines, via prometheus_client
  "$PYPROM" - "$1" <<'PY'
import sys
from prometheus_client.parser import text_string_to_metric_families
for fam in text_string_to_metric_families(open(sys.argv[1]).read()):
    for s in fam.samples:
        print(s.name, s.labels.get("pool", ""), repr(s.value))
PY
}
if "$PYPROM" -c 'import prometheus_client' 2>/dev/null; then
  check "prometheus_client parses the output" logrun "$WORK/cli.parsed" promparse "$WORK/cli.prom"
  pv() { awk -v n="$1" '$1 == n && $2 == "cli" { print $3 }' "$WORK/cli.parsed"; }
  "$CTL" stats --json >"$WORK/stats.json"
  check "... same idle streams / capacity as stats --json" \
    test "$(pv qpool_idle_streams)/$(pv qpool_capacity)" = "$(jget idle_streams).0/$(jget capacity).0"
  check "... interval in seconds, connections and taken counter as in stats --json" \
    test "$(pv qpool_interval_seconds)/$(pv qpool_connections)/$(pv qpool_streams_taken_total)" = "1.0/$(jget connections).0/$(jget streams_taken).0"
  check "... every metric is a stats --json key without qpool_ and _total" python3 -c "
import json,re,sys
p=json.load(open('$WORK/stats.json'))['pools'][0]
names={re.sub(r'^qpool_|_total$','',l.split()[2]) for l in open('$WORK/cli.prom') if l.startswith('# TYPE ')}
names.discard('pool_info')
missing=sorted(n for n in names if n not in p)
print('not in JSON:', missing) if missing else None
sys.exit(1 if missing or len(names) < 15 else 0)"
  check "... counters end in _total and are typed counter" \
    bash -c "grep -q '^# TYPE qpool_in_bytes_total counter' '$WORK/cli.prom' && ! grep -E '^# TYPE [a-z_]+ counter' '$WORK/cli.prom' | grep -v '_total counter'"
else
  not_ok "python3-prometheus-client is not installed"
fi

# ---- flush, add-error, reset-errors ----
jfield() { "$CTL" stats --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["pools"][0]["'"$1"'"])'; }
created0=$(jfield streams_created)
check "flush exits 0" "$CTL" flush cli
# the empty pool lasts only until the manager's next round, too short to be
# sure to see it; what must hold: the 4 flushed streams were replaced by 4
# new ones (a full pool that was not flushed creates none)
replaced() { local i; for ((i = 0; i < 150; i++)); do [ "$(jfield streams_created)" -ge $((created0 + 4)) ] && return 0; sleep 0.1; done; return 1; }
replaced || true
created1=$(jfield streams_created)
check "flush empties the pool: its 4 streams are replaced (created $created0 -> $created1)" \
  test "$created1" -ge $((created0 + 4))
check "... and it is back at 4 idle" wait_status "$WORK/cli.status" cli idle_streams 4 15
errs() { "$CTL" stats --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["pools"][0]["app_errors"])'; }
"$CTL" reset-errors cli
check "add-error twice" bash -c "'$CTL' add-error cli && '$CTL' add-error cli"
check "... errors 2" test "$(errs)" = 2
check "... and the status file says so too (it said 0 before)" \
  wait_status "$WORK/cli.status" cli app_errors 2 5
check "... shown in status" bash -c "'$CTL' status | grep -qE '^cli .* 2 +1  '"
check "reset-errors" "$CTL" reset-errors cli
check "... errors 0" test "$(errs)" = 0

# ---- watch ----
timeout 20 "$CTL" watch --count 2 --interval 0 >"$WORK/watch.out" 2>"$WORK/watch.err" &
wpid=$!
wait_for "$WORK/watch.out" "pool=cli" 10 || true
"$CTL" flush cli # a change: active drops, then refills
check "watch --count 2 exits 0 after two updates" wait "$wpid"
check "... printed a line per pool per update, twice" test "$(grep -c 'pool=cli ' "$WORK/watch.out")" = 2

# ---- errors and usage ----
check "--help on every command exits 0" bash -c "for c in status stats metrics watch flush reset-errors add-error incoming outgoing; do '$CTL' \$c --help | grep -q \"Usage: qpoolctl \$c\" || exit 1; done; '$CTL' --help | grep -q Usage"
usage_rc() { "$CTL" "$@" >/dev/null 2>"$WORK/usage.err"; echo $?; }
check "no command: exit 2" test "$(usage_rc)" = 2
check "unknown command: exit 2, named" test "$(usage_rc frobnicate)" = 2 -a -n "$(grep 'unknown command "frobnicate"' "$WORK/usage.err")"
check "flush without POOL: exit 2, says what is missing" test "$(usage_rc flush)" = 2 -a -n "$(grep 'missing POOL' "$WORK/usage.err")"
check "unknown option: exit 2" test "$(usage_rc status --bogus)" = 2
check "bad duration: exit 2, named" test "$(usage_rc incoming --timeout 5 cli)" = 2 -a -n "$(grep -- '--timeout: bad duration "5"' "$WORK/usage.err")"
check "bad stream ID: exit 2" test "$(usage_rc outgoing srv xyz)" = 2
check "unknown pool: exit 1 with qpoold's sentence" test "$(usage_rc flush nosuch)" = 1 -a -n "$(grep 'flush nosuch: no pool named "nosuch"' "$WORK/usage.err")"
check "no qpoold: exit 1, names the socket and suggests --control" \
  test "$(usage_rc --control "$WORK/none.sock" status)" = 1 -a -n "$(grep "cannot connect to $WORK/none.sock: No such file or directory (is qpoold running? use --control)" "$WORK/usage.err")"
check "\$QPOOL_CONTROL picks the socket" bash -c "QPOOL_CONTROL='$WORK/srv.sock' '$CTL' status | grep -q '^srv '"

kill -TERM "$(pid_of cli)" "$(pid_of srv)"
wait "$(pid_of cli)" || true
wait "$(pid_of srv)" || true
finish
