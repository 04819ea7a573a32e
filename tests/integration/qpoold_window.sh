#!/usr/bin/env bash
# max_stream_window = SIZE (64KiB to 1GiB, default 16MiB), set by the config
# file, by the flag, by libqpool's qp_pool_max_stream_window (libqpool-peer,
# qpool-tunnel) or left to the default, on server and client pools. What the
# worker applied is read back (qpoolctl status column WINDOW, stats --json,
# watch) and checked against independent evidence: a connection's
# read-ahead (qpoolctl conn) is capped by the window the worker gave it, so
# before any transfer it is exactly min(1 MiB, max_stream_window). After
# transfers of some MiB on 127.0.0.1 qpoolctl conn --json has numeric
# pacing_waits, max_burst > 0 and 64 KiB <= read_ahead <= the cap. Bad values
# are refused by --check, at start, on reload and by qpool-tunnel, naming the
# key or flag and the range; a changed window re-creates the pool on SIGHUP.
. "$(dirname "$0")/lib.sh"
CTL="$QP_BIN/qpoolctl"
TUN="$QP_BIN/qpool-tunnel"
LQP="$QP_BIN/tests/libqpool-peer"
RANGE="is out of range: use 64KiB to 1GiB"
NOTSIZE="is not a size: use 64KiB to 1GiB, in bytes or with KiB, MiB or GiB (e.g. 512KiB, 16MiB)"
unset QPOOL_QPOOLD QPOOL_CONTROL
export XDG_RUNTIME_DIR="$WORK/run" # embedded pools' private directories
mkdir -p "$XDG_RUNTIME_DIR"

# refused NAME EXPECTED cmd...: exits 2 within 10 s, EXPECTED on stderr
refused() {
  local name=$1 want=$2 rc=0
  shift 2
  timeout 10 "$@" >"$WORK/$name.out" 2>"$WORK/$name.err" || rc=$?
  sed 's/^/# /' "$WORK/$name.err"
  [ "$rc" = 2 ] && grep -qF -- "$want" "$WORK/$name.err"
}
# conn_json SOCK POOL FILE: qpoolctl conn --json of the pool's connection
conn_json() { "$CTL" --control "$1" conn --json "$2" >"$3" 2>"$3.err"; }
# jget FILE KEY: a member of a JSON object
jget() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1" "$2"; }
# read_ahead_is SOCK POOL BYTES: the connection's read-ahead is BYTES
read_ahead_is() {
  local f="$WORK/ra.$2.json" v
  conn_json "$1" "$2" "$f" || return 1
  v=$(jget "$f" read_ahead)
  echo "# $2: read_ahead=$v"
  [ "$v" = "$3" ]
}
# wait_read_ahead SOCK POOL BYTES SECONDS: polls read_ahead_is
wait_read_ahead() {
  local i
  for ((i = 0; i < $4 * 10; i++)); do
    read_ahead_is "$1" "$2" "$3" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  read_ahead_is "$1" "$2" "$3"
}
# window_is SOCK POOL TEXT: qpoolctl status shows TEXT in column WINDOW
window_is() {
  "$CTL" --control "$1" status "$2" >"$WORK/st.$2.txt" 2>&1 &&
    grep -qE "^$2 +(server|client) .* (bbr|cubic|bbr2) +$3 +-\$" "$WORK/st.$2.txt"
}
# wait_window SOCK POOL TEXT SECONDS: polls window_is
wait_window() {
  local i
  for ((i = 0; i < $4 * 10; i++)); do
    window_is "$1" "$2" "$3" && return 0
    sleep 0.1
  done
  sed 's/^/# /' "$WORK/st.$2.txt"
  return 1
}
# counters_ok FILE CAP: after a transfer: numeric pacing_waits, max_burst > 0,
# 64 KiB <= read_ahead <= CAP
counters_ok() {
  python3 - "$1" "$2" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
cap = int(sys.argv[2])
print("# %s: pacing_waits=%r max_burst=%r read_ahead=%r (cap %d)" % (
    sys.argv[1].rsplit("/", 1)[-1], c.get("pacing_waits"), c.get("max_burst"),
    c.get("read_ahead"), cap))
num = lambda v: isinstance(v, int) and not isinstance(v, bool)
ok = (num(c.get("pacing_waits")) and c["pacing_waits"] >= 0
      and num(c.get("max_burst")) and c["max_burst"] > 0
      and num(c.get("read_ahead")) and 65536 <= c["read_ahead"] <= cap)
sys.exit(0 if ok else 1)
PY
}
np_test() { # np_test SRV_POOL CLI_SOCK CLI_POOL BYTES
  start_bg "nt_$1" "$PEER" server --control "$WORK/srv.sock" --pool "$1" \
    --streams 4 --bytes "$4" --timeout 60s
  logrun "$WORK/ntcli_$1.log" "$PEER" client --control "$2" --pool "$3" \
    --streams 4 --bytes "$4" --timeout 60s && wait "$(pid_of "nt_$1")"
}

# ---- help -------------------------------------------------------------------
"$QPOOLD" --help | tr -s ' \n' '  ' >"$WORK/help.txt"
check "qpoold --help: the flag, its range and default, the size syntax" \
  bash -c "grep -q -- '--max-stream-window SIZE' '$WORK/help.txt' &&
           grep -q '64KiB to 1GiB (default 16MiB)' '$WORK/help.txt' &&
           grep -q 'Sizes are bytes or a whole' '$WORK/help.txt'"
check "qpool-tunnel --help: the flag too" \
  bash -c "'$TUN' --help | grep -q -- '--max-stream-window SIZE'"

# ---- bad values: --check, start, both sources, qpool-tunnel -----------------
p0=$(free_port)
check "--check refuses --max-stream-window 32KiB, with the range" \
  refused chk_flag "--max-stream-window: \"32KiB\" $RANGE" \
  "$QPOOLD" server --name s --listen "127.0.0.1:$p0" \
  --max-stream-window 32KiB --check
cat >"$WORK/bad.conf" <<EOF
[pool s]
mode = server
listen = 127.0.0.1:$p0
max_stream_window = 16MB
EOF
check "--check refuses max_stream_window = 16MB, naming file and line" \
  refused chk_file "$WORK/bad.conf:4: max_stream_window: \"16MB\" $NOTSIZE" \
  "$QPOOLD" --config "$WORK/bad.conf" --check
check "a start with a bad flag fails the same way" \
  refused start_flag "--max-stream-window: \"2GiB\" $RANGE" \
  "$QPOOLD" client --name c --target "127.0.0.1:$p0" \
  --max-stream-window 2GiB --chroot "$WORK/empty" --control "$WORK/x.sock"
check "a start with a bad key fails the same way" \
  refused start_file "$WORK/bad.conf:4: max_stream_window: \"16MB\" $NOTSIZE" \
  "$QPOOLD" --config "$WORK/bad.conf" --chroot "$WORK/empty" \
  --control "$WORK/x.sock"
check "... and nothing ran (no control socket)" test ! -e "$WORK/x.sock"
check "an empty value is refused too" \
  refused start_empty "--max-stream-window: \"\" $NOTSIZE" \
  "$QPOOLD" server --name s --listen "127.0.0.1:$p0" --max-stream-window= \
  --check
check "the flag is for one-pool command lines, not with --config" \
  refused with_config "--max-stream-window: not with --config (set max_stream_window in the file)" \
  "$QPOOLD" --config "$WORK/bad.conf" --max-stream-window 1MiB --check
check "qpool-tunnel refuses a bad size" \
  refused tun_bad "--max-stream-window: \"16M\" $NOTSIZE" \
  "$TUN" server --tunnel "127.0.0.1:$p0" --listen 127.0.0.1:1 --psk x \
  --max-stream-window 16M
check "qpool-tunnel refuses a size out of range" \
  refused tun_range "--max-stream-window: \"65535\" $RANGE" \
  "$TUN" client --tunnel "127.0.0.1:$p0" --forward 127.0.0.1:1 --psk x \
  --max-stream-window 65535

# ---- server pools from a file: 256KiB and the default -----------------------
p1=$(free_port)
p2=$(free_port)
server_conf() { # $1: swin's max_stream_window
  cat >"$WORK/srv.conf" <<EOF
[pool swin]
mode = server
listen = 127.0.0.1:$p1
max_cap = 8
max_stream_window = $1

[pool sdef]
mode = server
listen = 127.0.0.1:$p2
max_cap = 8
EOF
}
server_conf 256KiB
check "--check accepts the file" \
  bash -c "'$QPOOLD' --config '$WORK/srv.conf' --check | grep -q 'configuration ok: 2 pool'"
start_bg srv "$QPOOLD" --config "$WORK/srv.conf" --chroot "$WORK/empty" \
  --control "$WORK/srv.sock"
wait_for "$WORK/srv.log" "in the sandbox" 15

# ---- client pools: the flag (256KiB), a file (plain bytes) -------------------
export QPOOL_STATUS_FILE="$WORK/cwin.status"
start_bg cwin "$QPOOLD" client --name cwin --target "127.0.0.1:$p1" \
  --min-cap 4 --max-cap 4 --max-stream-window 256KiB --chroot "$WORK/empty" \
  --control "$WORK/cwin.sock"
cat >"$WORK/cli.conf" <<EOF
[pool cbytes]
mode = client
target = 127.0.0.1:$p2
min_cap = 4
max_cap = 4
max_stream_window = 262144
EOF
export QPOOL_STATUS_FILE="$WORK/cli.status"
start_bg cli "$QPOOLD" --config "$WORK/cli.conf" --chroot "$WORK/empty" \
  --control "$WORK/cli.sock"
unset QPOOL_STATUS_FILE
check "cwin filled" wait_status "$WORK/cwin.status" cwin idle_streams 4 20
check "cbytes filled" wait_status "$WORK/cli.status" cbytes idle_streams 4 20

# ---- read back from the workers ---------------------------------------------
"$CTL" --control "$WORK/srv.sock" status >"$WORK/status.txt"
sed 's/^/# /' "$WORK/status.txt"
check "qpoolctl status: a WINDOW column with each pool's window" \
  bash -c "grep -qE '^POOL .* CONNS +CC +WINDOW +LAST ERROR$' '$WORK/status.txt' &&
           grep -qE '^swin +server .* bbr +256KiB +-$' '$WORK/status.txt' &&
           grep -qE '^sdef +server .* bbr +16MiB +-$' '$WORK/status.txt'"
check "cwin (flag): 256KiB" window_is "$WORK/cwin.sock" cwin 256KiB
check "cbytes (file, 262144): 256KiB" window_is "$WORK/cli.sock" cbytes 256KiB
"$CTL" --control "$WORK/srv.sock" stats --json >"$WORK/stats.json"
check "qpoolctl stats --json: max_stream_window in bytes" \
  python3 -c 'import json,sys
p = {x["name"]: x["max_stream_window"] for x in json.load(open(sys.argv[1]))["pools"]}
print("#", p)
sys.exit(p != {"swin": 262144, "sdef": 16777216})' "$WORK/stats.json"
check "qpoolctl watch: window=256KiB" \
  bash -c "timeout 10 '$CTL' --control '$WORK/cwin.sock' watch --count 1 |
           grep -q ' pool=cwin .* window=256KiB '"
# independent evidence: the worker caps the read-ahead at the window it gave
# the connection (before any transfer: min(1 MiB, max_stream_window))
check "cwin's connection reads ahead 256 KiB, its cap" \
  read_ahead_is "$WORK/cwin.sock" cwin 262144
check "swin's connection too" read_ahead_is "$WORK/srv.sock" swin 262144
check "cbytes's connection too" read_ahead_is "$WORK/cli.sock" cbytes 262144
conn_json "$WORK/srv.sock" sdef "$WORK/sdef0.json"
check "sdef's (default 16MiB) reads ahead 1 MiB or more ($(jget "$WORK/sdef0.json" read_ahead))" \
  test "$(jget "$WORK/sdef0.json" read_ahead)" -ge 1048576

# ---- data, then the counters ------------------------------------------------
check "np-test 4 x 4 MiB each way between swin and cwin (256 KiB windows)" \
  np_test swin "$WORK/cwin.sock" cwin 4194304
conn_json "$WORK/srv.sock" swin "$WORK/swin.json"
conn_json "$WORK/cwin.sock" cwin "$WORK/cwin.json"
check "swin: pacing_waits, max_burst > 0, 64 KiB <= read_ahead <= 256 KiB" \
  counters_ok "$WORK/swin.json" 262144
check "cwin: the same" counters_ok "$WORK/cwin.json" 262144
check "np-test 4 x 2 MiB each way between sdef (16MiB) and cbytes (256KiB)" \
  np_test sdef "$WORK/cli.sock" cbytes 2097152
conn_json "$WORK/srv.sock" sdef "$WORK/sdef.json"
conn_json "$WORK/cli.sock" cbytes "$WORK/cbytes.json"
check "sdef: counters, read_ahead <= 16 MiB" \
  counters_ok "$WORK/sdef.json" 16777216
check "cbytes: counters, read_ahead <= 256 KiB" \
  counters_ok "$WORK/cbytes.json" 262144
"$CTL" --control "$WORK/cwin.sock" conn cwin >"$WORK/conn.txt"
check "qpoolctl conn (text): pacing waits, max burst, read-ahead" \
  bash -c "grep -qE '^pacing waits [0-9]+$' '$WORK/conn.txt' &&
           grep -qE '^max burst [1-9][0-9]* bytes$' '$WORK/conn.txt' &&
           grep -qE '^read-ahead 262144 bytes$' '$WORK/conn.txt'"

# ---- SIGHUP ---------------------------------------------------------------------
server_conf 16MB
kill -HUP "$(pid_of srv)"
check "a reload with a bad size is refused, naming it" \
  wait_for "$WORK/srv.log" "reload failed, keeping the running configuration: $WORK/srv.conf:5: max_stream_window: \"16MB\" is not a size" 10
check "... and swin runs on with 256KiB" window_is "$WORK/srv.sock" swin 256KiB
server_conf 512KiB
kill -HUP "$(pid_of srv)"
check "a changed window re-creates the pool" \
  wait_for "$WORK/srv.log" "reload: pool swin added" 10
wait_for "$WORK/srv.log" "reload done" 10
check "... and only that pool" \
  bash -c "! grep -qE 'reload: pool sdef added' '$WORK/srv.log'"
check "... status shows 512KiB for swin" wait_window "$WORK/srv.sock" swin 512KiB 20
check "... whose new connection reads ahead 512 KiB (the client reconnected)" \
  wait_read_ahead "$WORK/srv.sock" swin 524288 20
check "... while the client's own end stays at 256 KiB" \
  wait_read_ahead "$WORK/cwin.sock" cwin 262144 20

# ---- libqpool's embedded call (libqpool-peer) -----------------------------------
p3=$(free_port)
check "qp_pool_max_stream_window refuses 32768 (below 64 KiB)" \
  bash -c "! timeout 10 '$LQP' server --embedded --listen 127.0.0.1:$p3 \
             --max-stream-window 32768 >'$WORK/lqp_low.log' 2>&1 &&
           grep -q 'embedded: max_stream_window rc=-22' '$WORK/lqp_low.log' &&
           ! grep -q 'qpoold started' '$WORK/lqp_low.log'"
check "... and 2 GiB (above 1 GiB)" \
  bash -c "! timeout 10 '$LQP' client --embedded --target 127.0.0.1:$p3 \
             --max-stream-window 2147483648 >'$WORK/lqp_high.log' 2>&1 &&
           grep -q 'embedded: max_stream_window rc=-22' '$WORK/lqp_high.log'"
start_bg lsrv "$LQP" server --embedded --listen "127.0.0.1:$p3" --max-cap 8 \
  --streams 2 --bytes 1048576 --timeout-ms 60000 --max-stream-window 262144
check "it accepts 262144 before the manager starts" \
  wait_for "$WORK/lsrv.log" "embedded: max_stream_window rc=0 " 20
check "... and refuses any value once it started" \
  wait_for "$WORK/lsrv.log" "embedded: max_stream_window after start rc=-22 " 20
wait_for "$WORK/lsrv.log" "embedded: control " 20
lsock=$(sed -nE 's/^embedded: control (.*)$/\1/p' "$WORK/lsrv.log" | head -1)
check "its private qpoold's worker applied 256KiB" \
  wait_window "$lsock" embedded 256KiB 20
check "an embedded client with a 64 KiB window runs np-test against it" \
  logrun "$WORK/lcli.log" "$LQP" client --embedded --target "127.0.0.1:$p3" \
  --min-cap 2 --max-cap 2 --streams 2 --bytes 1048576 --timeout-ms 60000 \
  --max-stream-window 65536
check "... np-test verified on the server end too" wait "$(pid_of lsrv)"

# ---- qpool-tunnel (embedded pools too) ------------------------------------------
tport=$(free_port)
lport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
head -c 32 /dev/urandom | base64 >"$WORK/psk"
start_bg tsrv "$TUN" server --tunnel "127.0.0.1:$tport" \
  --listen "127.0.0.1:$lport" --psk-file "$WORK/psk" --max-stream-window 256KiB
wait_for "$WORK/tsrv.log" "waiting for the client" 20
start_bg tcli "$TUN" client --tunnel "127.0.0.1:$tport" --forward 127.0.0.1:9 \
  --psk-file "$WORK/psk" --max-stream-window=1MiB
check "the tunnel's ends authenticate each other" \
  wait_for "$WORK/tsrv.log" "tunnel client authenticated" 20
ssock=$(sed -nE 's/.*pool control socket ([^ ]+) .*/\1/p' "$WORK/tsrv.log" | head -1)
csock=$(sed -nE 's/.*pool control socket ([^ ]+) .*/\1/p' "$WORK/tcli.log" | head -1)
check "tunnel server (--max-stream-window 256KiB): 256KiB" \
  wait_window "$ssock" embedded 256KiB 20
check "tunnel client (--max-stream-window=1MiB): 1MiB" \
  wait_window "$csock" embedded 1MiB 20
check "... its connection reads ahead 1 MiB, its cap" \
  bash -c "'$CTL' --control '$csock' conn --json embedded >'$WORK/tcli.json' &&
           python3 -c 'import json,sys; sys.exit(json.load(open(sys.argv[1]))[\"read_ahead\"] != 1048576)' '$WORK/tcli.json'"
finish
