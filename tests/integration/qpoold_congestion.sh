#!/usr/bin/env bash
# congestion_control = cubic | bbr | bbr2 (default bbr), set by the config
# file, by the flag, by qpool-tunnel (libqpool's embedded mode), or left to
# the default, on server and client pools. What the worker gave ngtcp2 is
# read back (qpoolctl conn, status, stats --json), and checked against
# independent evidence: ngtcp2 0.12's BBR and BBR v2 set a pacing rate from
# their first packet on, CUBIC never sets one (ngtcp2 then paces by cwnd and
# RTT itself and reports 0). A bad name is refused by --check, at start and
# on reload, naming the key or flag and the names allowed. A changed
# controller re-creates the pool on SIGHUP; an unchanged pool stays.
. "$(dirname "$0")/lib.sh"
CTL="$QP_BIN/qpoolctl"
TUN="$QP_BIN/qpool-tunnel"
ALLOWED="is not a congestion controller: use cubic, bbr or bbr2"

# conn_text SOCK POOL FILE: qpoolctl conn of the pool's connection
conn_text() { "$CTL" --control "$1" conn "$2" >"$3" 2>"$3.err"; }
# field FILE KEY: the first number (or word) after KEY in qpoolctl conn's text
field() { sed -nE "s/^$2 +([^ ]+).*/\1/p" "$1" | head -1; }
# cc_is SOCK POOL NAME: the connection's controller is NAME, and its pacing
# rate is what that controller implies (0 for cubic, > 0 for bbr and bbr2)
cc_is() {
  local f="$WORK/conn.$2.txt" cc pace cwnd
  conn_text "$1" "$2" "$f" || { cat "$f.err" >&2; return 1; }
  cc=$(field "$f" congestion)
  pace=$(field "$f" pacing)
  cwnd=$(field "$f" cwnd)
  echo "# $2: congestion=$cc pacing=$pace cwnd=$cwnd"
  [ "$cc" = "$3" ] && [ "${cwnd:-0}" -gt 0 ] || return 1
  if [ "$3" = cubic ]; then [ "$pace" = 0 ]; else [ "${pace:-0}" -gt 0 ]; fi
}
# wait_cc SOCK POOL NAME SECONDS: polls cc_is until it holds
wait_cc() {
  local i
  for ((i = 0; i < $4 * 10; i++)); do
    cc_is "$1" "$2" "$3" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  cc_is "$1" "$2" "$3"
}
# both_cc SOCK1 POOL1 SOCK2 POOL2 NAME: cc_is for both ends of a pair
both_cc() { cc_is "$1" "$2" "$5" && cc_is "$3" "$4" "$5"; }
# refused NAME EXPECTED cmd...: exits 2 within 10 s, EXPECTED on stderr
refused() {
  local name=$1 want=$2 rc=0
  shift 2
  timeout 10 "$@" >"$WORK/$name.out" 2>"$WORK/$name.err" || rc=$?
  sed 's/^/# /' "$WORK/$name.err"
  [ "$rc" = 2 ] && grep -qF -- "$want" "$WORK/$name.err"
}

# ---- help -------------------------------------------------------------------
"$QPOOLD" --help >"$WORK/help.txt"
check "qpoold --help: the flag, its default and every name" \
  bash -c "grep -q -- '--congestion-control NAME' '$WORK/help.txt' &&
           grep -q '(default bbr)' '$WORK/help.txt' &&
           grep -qE '^ +cubic +CUBIC' '$WORK/help.txt' &&
           grep -qE '^ +bbr +BBR v1' '$WORK/help.txt' &&
           grep -qE '^ +bbr2 +BBR v2' '$WORK/help.txt'"
check "qpool-tunnel --help: the same names" \
  bash -c "'$TUN' --help | grep -qE '^ +bbr2 +BBR v2'"

# ---- bad names: --check, start, both sources ----------------------------------
p0=$(free_port)
check "--check refuses a bad --congestion-control" \
  refused chk_flag "--congestion-control: \"reno\" $ALLOWED" \
  "$QPOOLD" server --name s --listen "127.0.0.1:$p0" \
  --congestion-control reno --check
cat >"$WORK/bad.conf" <<EOF
[pool s]
mode = server
listen = 127.0.0.1:$p0
congestion_control = BBR
EOF
check "--check refuses a bad congestion_control, naming file and line" \
  refused chk_file "$WORK/bad.conf:4: congestion_control: \"BBR\" $ALLOWED" \
  "$QPOOLD" --config "$WORK/bad.conf" --check
check "a start with a bad flag fails the same way" \
  refused start_flag "--congestion-control: \"bbr3\" $ALLOWED" \
  "$QPOOLD" client --name c --target "127.0.0.1:$p0" \
  --congestion-control bbr3 --chroot "$WORK/empty" --control "$WORK/x.sock"
check "a start with a bad key fails the same way" \
  refused start_file "$WORK/bad.conf:4: congestion_control: \"BBR\" $ALLOWED" \
  "$QPOOLD" --config "$WORK/bad.conf" --chroot "$WORK/empty" \
  --control "$WORK/x.sock"
check "... and nothing ran (no control socket)" test ! -e "$WORK/x.sock"
check "an empty value is refused too" \
  refused start_empty "--congestion-control: \"\" $ALLOWED" \
  "$QPOOLD" server --name s --listen "127.0.0.1:$p0" --congestion-control= \
  --check
check "the flag is for one-pool command lines, not with --config" \
  refused with_config "--congestion-control: not with --config (set congestion_control in the file)" \
  "$QPOOLD" --config "$WORK/bad.conf" --congestion-control cubic --check
check "qpool-tunnel refuses a bad name" \
  refused tun_bad "--congestion-control: \"vegas\" $ALLOWED" \
  "$TUN" server --tunnel "127.0.0.1:$p0" --listen 127.0.0.1:1 --psk x \
  --congestion-control vegas

# ---- server pools from a file: cubic, bbr2 and the default ------------------
p1=$(free_port)
p2=$(free_port)
p3=$(free_port)
server_conf() { # $1: scubic's controller
  cat >"$WORK/srv.conf" <<EOF
[pool scubic]
mode = server
listen = 127.0.0.1:$p1
max_cap = 4
congestion_control = $1

[pool sbbr2]
mode = server
listen = 127.0.0.1:$p2
max_cap = 4
congestion_control = bbr2   ; BBR v2

[pool sdef]
mode = server
listen = 127.0.0.1:$p3
max_cap = 8   ; cbbr and cdef: 4 idle streams each
EOF
}
server_conf cubic
check "--check accepts the file" \
  bash -c "'$QPOOLD' --config '$WORK/srv.conf' --check | grep -q 'configuration ok: 3 pool'"
start_bg srv "$QPOOLD" --config "$WORK/srv.conf" --chroot "$WORK/empty" \
  --control "$WORK/srv.sock"
wait_for "$WORK/srv.log" "in the sandbox" 15

# ---- client pools: flags (cubic, bbr), a file (bbr2, the default) -----------
export QPOOL_STATUS_FILE="$WORK/ccubic.status"
start_bg ccubic "$QPOOLD" client --name ccubic --target "127.0.0.1:$p1" \
  --min-cap 4 --max-cap 4 --congestion-control cubic --chroot "$WORK/empty" \
  --control "$WORK/ccubic.sock"
export QPOOL_STATUS_FILE="$WORK/cbbr.status"
start_bg cbbr "$QPOOLD" client --name cbbr --target "127.0.0.1:$p3" \
  --min-cap 4 --max-cap 4 --congestion-control=bbr --chroot "$WORK/empty" \
  --control "$WORK/cbbr.sock"
cat >"$WORK/cli.conf" <<EOF
[pool cbbr2]
mode = client
target = 127.0.0.1:$p2
min_cap = 4
max_cap = 4
congestion_control = bbr2

[pool cdef]
mode = client
target = 127.0.0.1:$p3
min_cap = 4
max_cap = 4
EOF
export QPOOL_STATUS_FILE="$WORK/cli.status"
start_bg cli "$QPOOLD" --config "$WORK/cli.conf" --chroot "$WORK/empty" \
  --control "$WORK/cli.sock"
unset QPOOL_STATUS_FILE
check "ccubic filled" wait_status "$WORK/ccubic.status" ccubic idle_streams 4 20
check "cbbr filled" wait_status "$WORK/cbbr.status" cbbr idle_streams 4 20
check "cbbr2 filled" wait_status "$WORK/cli.status" cbbr2 idle_streams 4 20
check "cdef filled" wait_status "$WORK/cli.status" cdef idle_streams 4 20

# ---- read back from the workers ---------------------------------------------
check "ccubic (flag): cubic, no pacing rate" cc_is "$WORK/ccubic.sock" ccubic cubic
check "scubic (file): cubic, no pacing rate" cc_is "$WORK/srv.sock" scubic cubic
check "cbbr (flag): bbr, paced" cc_is "$WORK/cbbr.sock" cbbr bbr
check "cbbr2 (file): bbr2, paced" cc_is "$WORK/cli.sock" cbbr2 bbr2
check "sbbr2 (file): bbr2, paced" cc_is "$WORK/srv.sock" sbbr2 bbr2
check "cdef (no key): the default, bbr, paced" cc_is "$WORK/cli.sock" cdef bbr
check "sdef (no key): the default, bbr, paced" cc_is "$WORK/srv.sock" sdef bbr
"$CTL" --control "$WORK/ccubic.sock" conn ccubic >"$WORK/conn.txt"
check "qpoolctl conn (text) names the controller and its state" \
  bash -c "grep -qE '^congestion +cubic$' '$WORK/conn.txt' &&
           grep -qE '^cwnd +[1-9][0-9]* bytes$' '$WORK/conn.txt' &&
           grep -qE '^pacing +0 bytes/s \(the controller sets none\)$' '$WORK/conn.txt'"
"$CTL" --control "$WORK/srv.sock" status >"$WORK/status.txt"
sed 's/^/# /' "$WORK/status.txt"
check "qpoolctl status: a CC column with each pool's controller" \
  bash -c "grep -qE '^POOL .* CONNS +CC +WINDOW +LAST ERROR$' '$WORK/status.txt' &&
           grep -qE '^scubic +server .* cubic +16MiB +-$' '$WORK/status.txt' &&
           grep -qE '^sbbr2 +server .* bbr2 +16MiB +-$' '$WORK/status.txt' &&
           grep -qE '^sdef +server .* bbr +16MiB +-$' '$WORK/status.txt'"
"$CTL" --control "$WORK/cli.sock" stats --json >"$WORK/stats.json"
check "qpoolctl stats --json: congestion_control of each pool" \
  python3 -c 'import json,sys
p = {x["name"]: x["congestion_control"] for x in json.load(open(sys.argv[1]))["pools"]}
sys.exit(p != {"cbbr2": "bbr2", "cdef": "bbr"})' "$WORK/stats.json"

# ---- data under each controller ---------------------------------------------
np_test() { # np_test SRV_POOL CLI_SOCK CLI_POOL
  start_bg "nt_$1" "$PEER" server --control "$WORK/srv.sock" --pool "$1" \
    --streams 4 --bytes 1048576 --timeout 60s
  logrun "$WORK/ntcli_$1.log" "$PEER" client --control "$2" --pool "$3" \
    --streams 4 --bytes 1048576 --timeout 60s && wait "$(pid_of "nt_$1")"
}
check "np-test 4 x 1 MiB each way under cubic" \
  np_test scubic "$WORK/ccubic.sock" ccubic
check "... still cubic and unpaced on both ends" \
  both_cc "$WORK/srv.sock" scubic "$WORK/ccubic.sock" ccubic cubic
conn_text "$WORK/srv.sock" scubic "$WORK/after.txt"
check "... with a measured delivery rate" \
  test "$(field "$WORK/after.txt" delivery)" -gt 0
"$CTL" --control "$WORK/srv.sock" conn --json scubic >"$WORK/conn.json"
check "qpoolctl conn --json: the same fields" \
  python3 -c 'import json,sys
c = json.load(open(sys.argv[1]))
sys.exit(not (c["congestion_control"] == "cubic" and c["pacing_rate_sec"] == 0
              and c["cwnd"] > 0 and c["delivery_rate_sec"] > 0
              and "bytes_in_flight" in c))' "$WORK/conn.json"
check "np-test 4 x 1 MiB each way under bbr2" \
  np_test sbbr2 "$WORK/cli.sock" cbbr2
check "... still bbr2 and paced on both ends" \
  both_cc "$WORK/srv.sock" sbbr2 "$WORK/cli.sock" cbbr2 bbr2

# ---- SIGHUP ---------------------------------------------------------------------
server_conf bogus
kill -HUP "$(pid_of srv)"
check "a reload with a bad name is refused, naming it" \
  wait_for "$WORK/srv.log" "reload failed, keeping the running configuration: $WORK/srv.conf:5: congestion_control: \"bogus\" $ALLOWED" 10
check "... and scubic runs on with cubic" cc_is "$WORK/srv.sock" scubic cubic
server_conf bbr
kill -HUP "$(pid_of srv)"
check "a changed controller re-creates the pool" \
  wait_for "$WORK/srv.log" "reload: pool scubic added" 10
wait_for "$WORK/srv.log" "reload done" 10
check "... and only that pool" \
  bash -c "! grep -qE 'reload: pool (sbbr2|sdef) added' '$WORK/srv.log'"
check "... whose new connection is bbr, paced (the client reconnected)" \
  wait_cc "$WORK/srv.sock" scubic bbr 20
check "... while the client's own end stays cubic" \
  wait_cc "$WORK/ccubic.sock" ccubic cubic 20
check "... and status shows bbr for scubic" \
  bash -c "'$CTL' --control '$WORK/srv.sock' status | grep -qE '^scubic +server .* bbr +16MiB +-$'"

# ---- libqpool's embedded mode, through qpool-tunnel ---------------------------
tport=$(free_port)
lport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
head -c 32 /dev/urandom | base64 >"$WORK/psk"
export XDG_RUNTIME_DIR="$WORK/run"
mkdir -p "$XDG_RUNTIME_DIR"
start_bg tsrv "$TUN" server --tunnel "127.0.0.1:$tport" \
  --listen "127.0.0.1:$lport" --psk-file "$WORK/psk" --congestion-control cubic
wait_for "$WORK/tsrv.log" "waiting for the client" 20
start_bg tcli "$TUN" client --tunnel "127.0.0.1:$tport" --forward 127.0.0.1:9 \
  --psk-file "$WORK/psk" --congestion-control bbr2
check "the tunnel's ends authenticate each other" \
  wait_for "$WORK/tsrv.log" "tunnel client authenticated" 20
ssock=$(sed -nE 's/.*pool control socket ([^ ]+) .*/\1/p' "$WORK/tsrv.log" | head -1)
csock=$(sed -nE 's/.*pool control socket ([^ ]+) .*/\1/p' "$WORK/tcli.log" | head -1)
check "tunnel server (qp_pool_congestion_control cubic): cubic, unpaced" \
  cc_is "$ssock" embedded cubic
check "tunnel client (qp_pool_congestion_control bbr2): bbr2, paced" \
  cc_is "$csock" embedded bbr2
finish
