#!/usr/bin/env bash
# One UDP address, one qpool server. A second qpoold server on an address a
# qpool server listens on (127.0.0.1, ::1, or an overlapping 0.0.0.0 in a
# namespace of the test's own) fails at start, exits non-zero and says who
# holds the address; a second embedded server pool gets -EADDRINUSE with
# qpoold's reason on stderr; a SIGHUP that adds pools on taken addresses
# fails those pools alone (again at the next SIGHUP, until the address is
# free) while a pool changed on its own address keeps its socket. After each
# refusal the first server still hands connections off and streams flow;
# once it has stopped, a new server takes the address at once.
. "$(dirname "$0")/lib.sh"
LQP="$QP_BIN/tests/libqpool-peer"
mkdir -p "$WORK/empty"
me=$(id -u)
# One python3 (each start costs a good part of a second here) finds six
# free ports and then stays as "a plain program" holding a seventh,
# 127.0.0.1:$hport, without SO_REUSEPORT, until it is killed.
python3 -u - >"$WORK/holder" <<'PY' &
import os, random, socket, time
ports = []
while len(ports) < 6:
    p = random.randint(int(os.environ["QP_PORT_LO"]), int(os.environ["QP_PORT_HI"]))
    try:
        for fam, host in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
            with socket.socket(fam, socket.SOCK_DGRAM) as s:
                s.bind((host, p))
    except OSError:
        continue
    if p not in ports:
        ports.append(p)
hold = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
hold.bind(("127.0.0.1", 0))
print(*ports, hold.getsockname()[1])
time.sleep(120)
PY
PIDS+=($!)
hpid=$!
wait_for "$WORK/holder" "^[0-9 ]+$" 10
read -r p4 p6 pemb pa pb pe hport <"$WORK/holder"
hcomm=$(cat /proc/$hpid/comm)

# flows NAME ADDR SOCK POOL [ip netns exec NS]: the np-test exchange (4
# streams x 64 KiB each way) between an np-peer client dialling ADDR and
# streams taken from pool POOL of the qpoold behind SOCK (once per pool: the
# exchange starts with stream 00000000)
flows() {
  local n=$1 addr=$2 sock=$3 pool=$4
  shift 4
  start_bg "fs$n" "$PEER" server --control "$sock" --pool "$pool" --streams 4 \
    --bytes 65536 --timeout 30s
  logrun "$WORK/fc$n.log" "$@" "$PEER" client --target "$addr" --min-cap 8 \
    --max-cap 8 --streams 4 --bytes 65536 --timeout 30s &&
    wait "$(pid_of "fs$n")"
}
# fills ADDR [N]: N (default 1) fresh client connections in a row are each
# accepted and filled (2 streams)
fills() {
  local i
  for ((i = 0; i < ${2:-1}; i++)); do
    "$PEER" client --target "$1" --min-cap 2 --max-cap 2 --wait-active 2 \
      --timeout 15s >>"$WORK/fills.log" 2>&1 || return 1
  done
}
# count_ge FILE PATTERN MIN SECONDS: PATTERN (ERE) on >= MIN lines of FILE
count_ge() {
  local i
  for ((i = 0; i < $4 * 20; i++)); do
    [ "$(grep -cE "$2" "$1" || true)" -ge "$3" ] && return 0
    sleep 0.05
  done
  echo "timed out: fewer than $3 lines /$2/ in $1" >&2
  return 1
}
# second NAME ADDR [ip netns exec NS]: a qpoold server pool NAME on ADDR;
# prints its exit status (124: it ran, and was stopped after 10 s)
second() {
  local n=$1 addr=$2 rc=0
  shift 2
  "$@" timeout 10 "$QPOOLD" server --name "$n" --listen "$addr" \
    --chroot "$WORK/empty" --control "$WORK/$n.sock" >"$WORK/$n.log" 2>&1 || rc=$?
  echo "$rc"
}
# first NAME ADDR [ip netns exec NS]: a qpoold server pool "first" on ADDR,
# status in $WORK/NAME.status, control socket $WORK/NAME.sock
first() {
  local n=$1 addr=$2
  shift 2
  export QPOOL_STATUS_FILE="$WORK/$n.status"
  start_bg "$n" "$@" "$QPOOLD" server --name first --listen "$addr" \
    --max-cap 8 --chroot "$WORK/empty" --control "$WORK/$n.sock"
  unset QPOOL_STATUS_FILE
  wait_for "$WORK/$n.log" "running 1 pool" 10
}

# --- the same address, IPv4 and IPv6
for fam in v4 v6; do
  host=127.0.0.1
  [ $fam = v6 ] && host="[::1]"
  port=$p4
  [ $fam = v6 ] && port=$p6
  first "first$fam" "$host:$port"
  fpid=$(pid_of "first$fam")
  rc=$(second "second$fam" "$host:$port")
  check "$fam: a second qpoold server on $host:$port fails at start ($rc)" \
    test "$rc" -ne 0 -a "$rc" -ne 124
  check "... saying the address is in use, by another qpool server (qpoold $fpid)" \
    grep -qF "ERROR: pool second$fam: cannot listen on $host:$port: Address already in use (held by another qpool server: qpoold, pid $fpid, uid $me)" \
    "$WORK/second$fam.log"
  check "... before starting any worker" \
    bash -c "! grep -q 'worker 0 started' '$WORK/second$fam.log'"
  check "$fam: the first server still serves: streams flow through its hand-off" \
    flows "$fam" "$host:$port" "$WORK/first$fam.sock" first
  check "$fam: ... and it accepts another connection" fills "$host:$port"
  check "$fam: ... both handed off by the first qpoold" \
    wait_status_ge "$WORK/first$fam.status" first handoffs 2 5
done

# --- after the first stops, a new server takes the address at once
kill -TERM "$(pid_of firstv4)"
check "the first qpoold stops (exit 0)" wait "$(pid_of firstv4)"
first again "127.0.0.1:$port"
check "a new qpoold takes 127.0.0.1:$port at once" kill -0 "$(pid_of again)"
check "... and serves streams" flows again "127.0.0.1:$port" "$WORK/again.sock" first

# --- a plain program holds the port: named as such
rc=$(second plain "127.0.0.1:$hport")
check "a port held by another program: fails ($rc), naming it ($hcomm, pid $hpid)" \
  grep -qF "cannot listen on 127.0.0.1:$hport: Address already in use (held by $hcomm, pid $hpid, uid $me)" \
  "$WORK/plain.log"

# --- embedded mode: a second server pool on the first one's address
port=$pemb
start_bg emb1 "$LQP" server --embedded --listen "127.0.0.1:$port" --max-cap 8 \
  --streams 4 --bytes 65536 --timeout-ms 30000
wait_for "$WORK/emb1.log" "embedded: qpoold started" 20
set +e
"$LQP" server --embedded --listen "127.0.0.1:$port" --max-cap 8 --streams 4 \
  --bytes 65536 --timeout-ms 5000 >"$WORK/emb2.log" 2>&1
rc=$?
set -e
check "a second embedded server pool on 127.0.0.1:$port fails ($rc)" test "$rc" -ne 0
check "... its manager returns -EADDRINUSE (qp_strerror: \"the listen address is in use\")" \
  grep -qF "FAIL qp_server_manager: the listen address is in use" "$WORK/emb2.log"
check "... with qpoold's reason on stderr (another qpool server)" \
  grep -qF "cannot listen on 127.0.0.1:$port: Address already in use (held by another qpool server: qpoold, pid" \
  "$WORK/emb2.log"
check "the first embedded pool still serves: np-test from an embedded client" \
  logrun "$WORK/emb1c.log" "$LQP" client --embedded --target "127.0.0.1:$port" \
  --min-cap 8 --max-cap 8 --streams 4 --bytes 65536 --timeout-ms 30000
check "... verified on the first's side" wait "$(pid_of emb1)"

# --- SIGHUP adding pools on taken addresses
# pool a on $pa; b on $pb, taken by another qpoold; d on $hport, taken by
# the python program; e on $pe, free
conf() { # conf MAXCAP_OF_A POOL...
  printf '[global]\nworkers = 0\nchroot = %s\ncontrol = %s\n' "$WORK/empty" "$WORK/r.sock"
  printf '\n[pool a]\nmode = server\nlisten = 127.0.0.1:%s\nmax_cap = %s\n' "$pa" "$1"
  shift
  local p
  for p in "$@"; do
    case $p in
    b) printf '\n[pool b]\nmode = server\nlisten = 127.0.0.1:%s\nmax_cap = 4\n' "$pb" ;;
    d) printf '\n[pool d]\nmode = server\nlisten = 127.0.0.1:%s\nmax_cap = 4\n' "$hport" ;;
    e) printf '\n[pool e]\nmode = server\nlisten = 127.0.0.1:%s\nmax_cap = 4\n' "$pe" ;;
    esac
  done
}
conf 4 >"$WORK/r.conf"
QPOOL_STATUS_FILE="$WORK/r.status" start_bg r "$QPOOLD" --config "$WORK/r.conf"
wait_for "$WORK/r.log" "running 1 pool" 10
first other "127.0.0.1:$pb"
opid=$(pid_of other)
check "pool a fills" fills "127.0.0.1:$pa"
wa=$(status_of "$WORK/r.status" a pid)
conf 4 b d e >"$WORK/r.conf"
kill -HUP "$(pid_of r)"
check "reload: pool b (address of another qpoold) not added, saying why" \
  wait_for "$WORK/r.log" "ERROR: reload: pool b not added: pool b: cannot listen on 127.0.0.1:$pb: Address already in use \(held by another qpool server: qpoold, pid $opid, uid $me\)" 10
check "reload: pool d (address of a plain program) not added, saying why" \
  wait_for "$WORK/r.log" "ERROR: reload: pool d not added: pool d: cannot listen on 127.0.0.1:$hport: Address already in use \(held by $hcomm, pid $hpid" 5
check "reload: pool e (free address) added, in worker 1 (no slot left behind by b, d)" \
  wait_for "$WORK/r.log" "reload: pool e added \(worker 1\)" 5
check "... and fills" fills "127.0.0.1:$pe"
check "pool a untouched: same worker ($wa)" test "$(status_of "$WORK/r.status" a pid)" = "$wa"
check "... still accepting" fills "127.0.0.1:$pa"
check "the other qpoold's pool still fills" fills "127.0.0.1:$pb"
check "b and d are not in the status" bash -c "! grep -qE '^pool=(b|d) ' '$WORK/r.status'"
# pool a changed on its own address: the socket carries over (its old
# connections still hold the port; a fresh exclusive bind would fail)
conf 8 b d e >"$WORK/r.conf"
kill -HUP "$(pid_of r)"
check "reload: changed pool a keeps its socket" \
  wait_for "$WORK/r.log" "pool a: listening on 127.0.0.1:$pa \(worker [0-9]+, socket kept across the reload\)" 10
check "... b and d refused again" count_ge "$WORK/r.log" "reload: pool [bd] not added" 4 5
check "... new pool a serves streams" flows ra "127.0.0.1:$pa" "$WORK/r.sock" a
# the holders leave: the next SIGHUP adds b and d
kill -TERM "$opid" "$hpid"
wait "$opid" || true
wait "$hpid" 2>/dev/null || true
kill -HUP "$(pid_of r)"
check "once free, the next reload adds b and d" \
  count_ge "$WORK/r.log" "reload: pool [bd] added" 2 5
check "... and b fills" fills "127.0.0.1:$pb"
kill -TERM "$(pid_of r)"
check "qpoold stops cleanly" wait "$(pid_of r)"

# --- overlapping addresses (0.0.0.0 against 127.0.0.1), in a network
# namespace of this test (0.0.0.0 there is its loopback only)
if [ "$(id -u)" -eq 0 ] && command -v ip >/dev/null && ip netns add "qpt$$" 2>/dev/null; then
  NS=qpt$$
  trap 'ip netns del "$NS" 2>/dev/null || true; cleanup' EXIT
  ip -n "$NS" link set lo up
  NSX=(ip netns exec "$NS")
  first wild "0.0.0.0:4433" "${NSX[@]}"
  rc=$(second specific "127.0.0.1:4433" "${NSX[@]}")
  check "ns: 127.0.0.1:4433 while a qpool server has 0.0.0.0:4433: fails ($rc)" \
    grep -qF "cannot listen on 127.0.0.1:4433: Address already in use (0.0.0.0:4433 overlaps it, held by another qpool server: qpoold, pid $(pid_of wild)" \
    "$WORK/specific.log"
  check "ns: ... the wildcard server still serves streams" \
    flows wild "127.0.0.1:4433" "$WORK/wild.sock" first "${NSX[@]}"
  first spec "127.0.0.1:4434" "${NSX[@]}"
  rc=$(second wildcard "0.0.0.0:4434" "${NSX[@]}")
  check "ns: 0.0.0.0:4434 while a qpool server has 127.0.0.1:4434: fails ($rc)" \
    grep -qF "cannot listen on 0.0.0.0:4434: Address already in use (127.0.0.1:4434 overlaps it, held by another qpool server: qpoold, pid $(pid_of spec)" \
    "$WORK/wildcard.log"
else
  echo "# overlap checks skipped: no network namespace (needs root and iproute2)"
fi
finish
