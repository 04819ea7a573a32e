#!/usr/bin/env bash
# Impaired-path benchmark (run by scripts/bench): bulk goodput over a path
# with delay and loss, for TCP (cubic, bbr), the Go reference peer
# (quic-go, tests/interop/nppeer), qpool through two qpoold pools, and
# qpool-tunnel carrying an HTTP download. Two hosts: network namespaces A
# (10.77.0.1, the client side) and B (10.77.0.2, the server side) made by
# bench/netpath.sh, both directions impaired alike.
#
# Usage: bench/impaired.sh BUILD_DIR [--quick] [--profiles LIST] [--secs N]
#          [--reps N] [--cc LIST] [--png PATH] [--tunnel-mib N]
#   --profiles  comma list of RTTms/LOSS%[/REORDER%], default
#               40ms/0%,40ms/1%,40ms/5%,0ms/1%,200ms/1%
#   --secs      seconds of sending per transfer (default 10; --quick: 3)
#   --reps      runs of every transfer per profile, interleaved (default 3;
#               --quick: 1); the table shows medians, the spread follows it
#   --quick     3 s transfers, profiles 40ms/0%,40ms/1% (a smoke run)
#   --cc        comma list of qpoold congestion controllers for the qpool
#               columns (cubic, bbr, bbr2; needs qpoold --congestion-control);
#               default: qpoold's own default, labelled "default"
#   --png PATH  also draw the table as grouped bars (gnuplot, log scale)
#   --tunnel-mib  size of the file downloaded through the tunnel (default:
#               what qpool A->B moved in --secs on the same profile, 4 MiB to
#               4 GiB; 64 MiB (--quick: 16) if that row failed)
#
# Prints one table (MB/s = 10^6 bytes/s, one row per profile), writes every
# figure to BUILD_DIR/impaired.tsv. Needs root (namespaces): otherwise it
# prints "impaired paths: skipped: needs root and network namespaces" and
# exits 0. Every wait is bounded; every process is stopped and the
# namespaces are removed on exit, also on failure or ctrl-C; namespaces of an
# earlier run that was killed are removed at start. Exit status: 0 when every
# figure was measured (a transfer cut by its time bound still counts), 1 if
# some row failed (the table says "fail"; logs are kept and named), 2 usage.
# KEEP_WORK=1 keeps the logs (a temporary directory, named on stderr) anyway.
set -uo pipefail

SKIP_MSG="impaired paths: skipped: needs root and network namespaces"
usage() { sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2; }

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
src=$(cd "$here/.." && pwd)
[ $# -ge 1 ] || usage
case "$1" in -h | --help) usage ;; esac
build_arg=$1
shift
quick=0 profiles="" secs="" reps="" cc_list="" png="" tunnel_mib=""
while [ $# -gt 0 ]; do
  case "$1" in
  --quick) quick=1 ;;
  --profiles) profiles=${2:?--profiles LIST}; shift ;;
  --secs) secs=${2:?--secs N}; shift ;;
  --reps) reps=${2:?--reps N}; shift ;;
  --cc) cc_list=${2:?--cc LIST}; shift ;;
  --png) png=${2:?--png PATH}; shift ;;
  --tunnel-mib) tunnel_mib=${2:?--tunnel-mib N}; shift ;;
  -h | --help) usage ;;
  *) echo "impaired: unknown argument '$1'" >&2; usage ;;
  esac
  shift
done
if [ $quick = 1 ]; then
  : "${secs:=3}" "${reps:=1}" "${profiles:=40ms/0%,40ms/1%}"
else
  : "${secs:=10}" "${reps:=3}" "${profiles:=40ms/0%,40ms/1%,40ms/5%,0ms/1%,200ms/1%}"
fi
[[ $reps =~ ^[0-9]+$ ]] && [ "$reps" -ge 1 ] && [ "$reps" -le 20 ] ||
  { echo "impaired: --reps: 1..20" >&2; exit 2; }
[[ $secs =~ ^[0-9]+$ ]] && [ "$secs" -ge 1 ] && [ "$secs" -le 600 ] ||
  { echo "impaired: --secs: 1..600" >&2; exit 2; }
[ -z "$tunnel_mib" ] || [[ $tunnel_mib =~ ^[0-9]+$ ]] ||
  { echo "impaired: --tunnel-mib: a number of MiB" >&2; exit 2; }
[ -z "$png" ] || case "$png" in /*) ;; *) png="$PWD/$png" ;; esac
# each profile: RTT_MS LOSS_PCT REORDER_PCT LABEL
declare -a P_RTT P_LOSS P_REORDER P_LABEL
IFS=, read -r -a plist <<<"$profiles"
for p in "${plist[@]}"; do
  if [[ $p =~ ^([0-9]+(\.[0-9]+)?)ms/([0-9]+(\.[0-9]+)?)%(/([0-9]+(\.[0-9]+)?)%)?$ ]]; then
    P_RTT+=("${BASH_REMATCH[1]}") P_LOSS+=("${BASH_REMATCH[3]}")
    P_REORDER+=("${BASH_REMATCH[6]:-0}") P_LABEL+=("$p")
  else
    echo "impaired: bad profile '$p' (RTTms/LOSS% or RTTms/LOSS%/REORDER%, e.g. 40ms/1%)" >&2
    exit 2
  fi
done

# --- can we run at all? ------------------------------------------------------
# shellcheck source=bench/netpath.sh
. "$here/netpath.sh"
[ "$(id -u)" -eq 0 ] || { echo "$SKIP_MSG"; exit 0; }
for t in ip nft iptables ethtool iperf3 curl timeout; do
  command -v "$t" >/dev/null ||
    { echo "impaired paths: skipped: $t missing (scripts/setup installs it)"; exit 0; }
done
netpath_can || { echo "$SKIP_MSG"; exit 0; }
if [ -n "$png" ] && ! command -v gnuplot >/dev/null; then
  echo "impaired: --png needs gnuplot (gnuplot-nox)" >&2
  exit 2
fi
PY=python3
[ -x /usr/bin/python3 ] && PY=/usr/bin/python3 # a pyenv shim starts in ~1 s
NGINX=$(command -v nginx || { [ -x /usr/sbin/nginx ] && echo /usr/sbin/nginx; } || true)

build=$(cd "$build_arg" 2>/dev/null && pwd) && [ -f "$build/CMakeCache.txt" ] ||
  { echo "impaired: $build_arg is not a CMake build directory" >&2; exit 1; }
echo "impaired: building nfq-delay qpoold qpool-worker qpoolctl qpool-tunnel in $build" >&2
timeout --foreground -k 5 900 cmake --build "$build" -j"$(nproc)" --target nfq-delay qpoold \
  qpool-worker qpoolctl qpool-tunnel >"$build/impaired-build.log" 2>&1 ||
  { echo "impaired: build failed, see $build/impaired-build.log" >&2; exit 1; }
export NP_NFQ_DELAY=$build/tests/nfq-delay

# the Go peer, built as tests/interop/run.sh does (GOPATH mode, offline)
GOPATH_DIR=${QP_GOPATH:-/usr/share/gocode}
NPPEER=$build/impaired/nppeer
have_go=0
mkdir -p "$build/impaired"
if command -v go >/dev/null && [ -d "$GOPATH_DIR/src/github.com/lucas-clemente/quic-go" ]; then
  if (cd "$src" && timeout --foreground -k 5 600 env GO111MODULE=off GOPATH="$GOPATH_DIR" \
    GOCACHE="$build/impaired/gocache" GOFLAGS= GOPROXY=off HOME="${HOME:-$build}" \
    go build -o "$NPPEER" ./tests/interop/nppeer/main.go) >"$build/impaired/go-build.log" 2>&1; then
    have_go=1
  else
    echo "impaired: go build of nppeer failed ($build/impaired/go-build.log): Go column fails" >&2
    have_go=2
  fi
fi

# qpoold's congestion controller: a flag another change adds
has_cc_flag=0
"$build/qpoold" --help 2>&1 | grep -q -- '--congestion-control' && has_cc_flag=1
if [ -z "$cc_list" ]; then
  cc_list=default
elif [ $has_cc_flag = 0 ] && [ "$cc_list" != default ]; then
  echo "impaired: qpoold has no --congestion-control: --cc $cc_list ignored" >&2
  cc_list=default
fi
IFS=, read -r -a CCS <<<"$cc_list"
# what "default" is, for the notes
cc_default=$("$build/qpoold" --help 2>&1 | sed -n '/--congestion-control/,/default/{s/.*(default \([a-z0-9]*\)).*/\1/p}' | head -n 1)
# the tunnel is measured as it ships: with its default controller (the
# ratios below compare it with the qpool columns of that same controller)
tunnel_cc=default

# --- processes, clean-up -----------------------------------------------------
NS_PREFIX=qpimp-
NS=$NS_PREFIX$$
netpath_reap "$NS_PREFIX" # paths of runs that were killed
for d in "${TMPDIR:-/tmp}"/qpool-impaired.*; do # and their files
  [ -f "$d/owner" ] && ! kill -0 "$(cat "$d/owner")" 2>/dev/null && rm -rf "$d"
done
work=$(mktemp -d "${TMPDIR:-/tmp}/qpool-impaired.XXXXXX")
echo $$ >"$work/owner"
chmod 711 "$work" # nginx's and qpoold's workers (nobody) go through it
mkdir -p "$work/empty"
export XDG_RUNTIME_DIR=$work # qpool-tunnel's embedded qpoolds
PIDS=()
failed=0
# PIDS: our background children not yet waited for (so their IDs cannot
# have been reused)
alive() { # PID: running (not a zombie)
  local st
  st=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
  [ -n "$st" ] && [ "$st" != Z ]
}
forget() { # PID: waited for, out of PIDS
  local p keep=()
  for p in "${PIDS[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
  PIDS=("${keep[@]}")
}
cleanup() {
  local p
  trap '' INT TERM # a second ctrl-C must not cut the clean-up short
  for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  netpath_down "$NS" # stops whatever still runs in the namespaces
  for p in "${PIDS[@]}"; do
    for _ in $(seq 1 50); do alive "$p" || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null
  done
  if [ "$failed" -ne 0 ] || [ "${KEEP_WORK:-0}" = 1 ]; then
    echo "impaired: logs kept in $work" >&2
  else
    rm -rf "$work"
  fi
}
trap cleanup EXIT
on_int() { # clean up, then die of SIGINT, so that a calling script stops too
  trap '' INT TERM
  echo "impaired: interrupted" >&2
  trap - EXIT
  cleanup
  trap - INT
  kill -INT $$
}
trap on_int INT
trap 'exit 143' TERM

bg() { # LOG CMD...: start CMD in the background, BGPID
  local log=$1
  shift
  "$@" >"$log" 2>&1 &
  BGPID=$!
  PIDS+=("$BGPID")
}
run() { # SECS OUT CMD...: CMD bounded, stdout to OUT, stderr to OUT.err;
  # waited for with `wait`, so that ctrl-C is handled at once
  local t=$1 out=$2
  shift 2
  timeout -k 3 "$t" "$@" >"$out" 2>"$out.err" &
  local p=$! rc=0
  PIDS+=("$p")
  wait "$p" || rc=$?
  forget "$p"
  return $rc
}
stop() { # PID...: SIGTERM, ≤ 5 s, SIGKILL
  local p
  for p; do kill -TERM "$p" 2>/dev/null || true; done
  for p; do
    for _ in $(seq 1 50); do alive "$p" || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
    forget "$p"
  done
}
wait_log() { # FILE PATTERN SECS [PID]: PATTERN appears in FILE
  local i
  for ((i = 0; i < $3 * 20; i++)); do
    grep -qE "$2" "$1" 2>/dev/null && return 0
    [ -z "${4:-}" ] || alive "$4" || return 1
    sleep 0.05
  done
  return 1
}
wait_listen() { # a|b tcp|udp PORT SECS [PID]: a socket listens on PORT there
  local i opt=-Hltn
  [ "$2" = tcp ] || opt=-Hlun
  for ((i = 0; i < $4 * 20; i++)); do
    [ -n "$(ip netns exec "$NS-$1" ss $opt "sport = :$3" 2>/dev/null)" ] && return 0
    [ -z "${5:-}" ] || alive "$5" || return 1
    sleep 0.05
  done
  return 1
}
note() { printf 'impaired: %s\n' "$*" >&2; }

TSV=$build/impaired.tsv
printf 'profile\trtt_ms\tloss_pct\treorder_pct\trep\tmeasure\tdirection\tcc\tMBps\tbytes\tsecs\tstatus\n' >"$TSV.new"
# R_BYTES R_SECS R_STATUS (ok, timeout, fail, n/a) of the last row
record() { # PROFILE_INDEX MEASURE DIRECTION CC LOGS...
  local i=$1 m=$2 d=$3 c=$4 mbps=""
  shift 4
  if [ "$R_STATUS" = ok ] || [ "$R_STATUS" = timeout ]; then
    mbps=$(awk -v b="$R_BYTES" -v s="$R_SECS" 'BEGIN { if (s > 0) printf "%.4f", b / s / 1e6; else print "" }')
    [ -n "$mbps" ] || R_STATUS=fail
  fi
  if [ "$R_STATUS" = fail ]; then
    failed=$((failed + 1))
    note "${P_LABEL[$i]} #$REP $m $d $c: FAILED; logs: $*"
  else
    note "${P_LABEL[$i]} #$REP $m $d $c: ${mbps:-n/a} MB/s ($R_BYTES bytes in $R_SECS s, $R_STATUS)"
  fi
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "${P_LABEL[$i]}" "${P_RTT[$i]}" \
    "${P_LOSS[$i]}" "${P_REORDER[$i]}" "$REP" "$m" "$d" "$c" "${mbps:-}" "${R_BYTES:-}" \
    "${R_SECS:-}" "$R_STATUS" >>"$TSV.new"
}
# ports: fresh ones for every row, so that nothing of an earlier row's
# connection (a late datagram, a TIME_WAIT) meets the next one
port_seq=20000
next_port() { port_seq=$((port_seq + 1)); }
drain=$((secs + 20)) # a receiver's bound past the sender's --secs

# --- the rows ------------------------------------------------------------------
tcp_row() { # CC: iperf3, server in B, client in A with -R (data B -> A)
  local cc=$1 w=$work/$2 sp
  next_port
  bg "$w-iperf-$cc-s.log" timeout -k 3 $((secs + 60)) \
    ip netns exec "$NS-b" iperf3 -s -B "$NP_B_IP" -p $port_seq -1
  sp=$BGPID
  R_STATUS=fail R_BYTES="" R_SECS=""
  if wait_listen b tcp $port_seq 10 "$sp" &&
    run $((secs + 30)) "$w-iperf-$cc.json" ip netns exec "$NS-a" iperf3 -c "$NP_B_IP" -p $port_seq \
      -t "$secs" -R -C "$cc" --connect-timeout 10000 --json; then
    read -r R_BYTES R_SECS snd < <("$PY" -c '
import json, sys
e = json.load(open(sys.argv[1]))["end"]
r = e["sum_received"]
print(r["bytes"], r["seconds"], e.get("sender_tcp_congestion", "?"))' "$w-iperf-$cc.json" 2>/dev/null) &&
      R_STATUS=ok
    [ "$R_STATUS" != ok ] || [ "$snd" = "$cc" ] ||
      note "iperf3 -C $cc: the sender used $snd"
  fi
  stop "$sp"
  record "$3" "tcp-$cc" "B->A" "$cc" "$w-iperf-$cc.json" "$w-iperf-$cc.json.err" "$w-iperf-$cc-s.log"
}

go_row() { # the Go peer: server pool in B writes, client pool in A reads
  local w=$work/$1 sp line
  R_STATUS=fail R_BYTES="" R_SECS=""
  if [ $have_go = 0 ]; then
    R_STATUS=n/a
    record "$2" go-peer "B->A" quic-go
    return
  fi
  next_port
  if [ $have_go = 1 ]; then
    bg "$w-go-s.log" timeout -k 3 $((drain + 40)) ip netns exec "$NS-b" "$NPPEER" server \
      -listen "$NP_B_IP:$port_seq" -bulk-secs "$secs" -max-cap 4 -timeout $((drain + 30))s
    sp=$BGPID
    if wait_log "$w-go-s.log" "listening on" 15 "$sp" &&
      run $((drain + 15)) "$w-go-c.log" ip netns exec "$NS-a" "$NPPEER" client -target "$NP_B_IP:$port_seq" \
        -bulk -max-cap 4 -timeout "${drain}s"; then
      line=$(grep -m1 '^bulk bytes' "$w-go-c.log")
      if [ -n "$line" ]; then
        R_BYTES=$(awk '{print $3}' <<<"$line") R_SECS=$(awk '{print $5}' <<<"$line")
        R_STATUS=ok
        [ "$(awk '{print $6}' <<<"$line")" != timeout ] || R_STATUS=timeout
      fi
    fi
    stop "$sp"
  fi
  record "$2" go-peer "B->A" quic-go "$w-go-s.log" "$w-go-c.log" "$w-go-c.log.err" \
    "$build/impaired/go-build.log"
}

qpoold_up() { # CC TAG: a qpoold server pool in B, a client pool in A
  local cc=$1 w=$work/$2 ccf=()
  [ "$cc" = default ] || ccf=(--congestion-control "$cc")
  next_port
  QS_SOCK=$w-$cc-s.sock QC_SOCK=$w-$cc-c.sock QS_LOG=$w-$cc-qpoold-s.log QC_LOG=$w-$cc-qpoold-c.log
  bg "$QS_LOG" timeout -k 5 3600 ip netns exec "$NS-b" "$build/qpoold" server --name s \
    --listen "$NP_B_IP:$port_seq" --max-cap 8 --chroot "$work/empty" --control "$QS_SOCK" "${ccf[@]}"
  QS_PID=$BGPID
  QC_PID=""
  wait_log "$QS_LOG" "running 1 pool" 15 "$QS_PID" || return 1
  bg "$QC_LOG" timeout -k 5 3600 ip netns exec "$NS-a" "$build/qpoold" client --name c \
    --target "$NP_B_IP:$port_seq" --min-cap 2 --max-cap 2 --min-interval 200ms \
    --chroot "$work/empty" --control "$QC_SOCK" "${ccf[@]}"
  QC_PID=$BGPID
  wait_log "$QC_LOG" "running 1 pool" 15 "$QC_PID"
}

qpool_row() { # B->A|A->B CC TAG PROFILE_INDEX [UP_OK]: one stream, taken
  # from qpoold as an fd by bench/bulkio.py on each end (IncomingGet in B,
  # OutgoingGet with its ID in A), as an application takes it
  local dir=$1 cc=$2 w=$work/$3-$2-${1/->/}
  local bmode amode rlog slog sent id="" bp i line
  R_STATUS=fail R_BYTES="" R_SECS=""
  if [ "${5:-1}" = 1 ]; then
    if [ "$dir" = "B->A" ]; then bmode=send amode=recv rlog=$w-a.log slog=$w-b.log; else bmode=recv amode=send rlog=$w-b.log slog=$w-a.log; fi
    bg "$w-b.log" timeout -k 3 $((drain + 40)) ip netns exec "$NS-b" "$PY" "$here/bulkio.py" \
      $bmode --secs "$secs" --max-secs $((drain + 25)) --stderr "$w-b.take.log" \
      --take "$QS_SOCK" s
    bp=$BGPID
    for ((i = 0; i < 500; i++)); do
      id=$(grep -m1 -oE '^[0-9a-f]{8}$' "$w-b.take.log" 2>/dev/null)
      [ -n "$id" ] && break
      alive "$bp" || break
      sleep 0.05
    done
    if [ -n "$id" ]; then
      run $((drain + 35)) "$w-a.log" ip netns exec "$NS-a" "$PY" "$here/bulkio.py" $amode --secs "$secs" \
        --max-secs $((drain + 25)) --stderr "$w-a.take.log" --take "$QC_SOCK" c "$id"
      for ((i = 0; i < 200; i++)); do alive "$bp" || break; sleep 0.05; done
      stop "$bp"
      line=$(grep -m1 '^bytes ' "$rlog")
      sent=$(awk '/^sent /{print $2; exit}' "$slog")
      if [ -n "$line" ] && [ "$(awk '{print $2}' <<<"$line")" -gt 0 ]; then
        R_BYTES=$(awk '{print $2}' <<<"$line") R_SECS=$(awk '{print $4}' <<<"$line")
        R_STATUS=ok
        [ "$(awk '{print $5}' <<<"$line")" != timeout ] || R_STATUS=timeout
        # a reader that saw EOF early (the stream ended under it) is a failure
        if [ $R_STATUS = ok ] && [ "$sent" != "$R_BYTES" ]; then
          note "qpool $dir: the reader got $R_BYTES bytes, the writer sent ${sent:-?}"
          R_STATUS=fail
        fi
      fi
    else
      stop "$bp"
    fi
  fi
  record "$4" qpool "$dir" "$cc" "$w-b.log" "$w-b.take.log" "$w-a.log" "$w-a.log.err" \
    "$w-a.take.log" "$QS_LOG" "$QC_LOG"
}

tunnel_row() { # TAG PROFILE_INDEX SIZE_BYTES: curl in B downloads a file from
  # an HTTP server in A through qpool-tunnel (data A -> B)
  local w=$work/$1 size=$3 sp cp np up tport code maxt rc=0 ccf=()
  [ "$tunnel_cc" = default ] || ccf=(--congestion-control "$tunnel_cc")
  R_STATUS=fail R_BYTES="" R_SECS=""
  rm -rf "$work/www"
  mkdir -p "$work/www" "$work/nginx"
  chmod 755 "$work/www"
  truncate -s "$size" "$work/www/bulk" # sparse: no disk, reads as zeros
  head -c 1024 /dev/zero >"$work/www/1k"
  chmod 644 "$work/www/bulk" "$work/www/1k"
  if [ -n "$NGINX" ]; then
    "$src/tests/helpers/nginx-conf" "$work/nginx" 8080 "$work/www" >"$work/nginx/nginx.conf"
    bg "$w-nginx.log" timeout -k 3 600 ip netns exec "$NS-a" "$NGINX" -p "$work/nginx" -c "$work/nginx/nginx.conf"
  else
    bg "$w-nginx.log" timeout -k 3 600 ip netns exec "$NS-a" "$PY" -m http.server \
      --bind 127.0.0.1 --directory "$work/www" 8080
  fi
  np=$BGPID
  next_port
  up=$port_seq tport=$((port_seq + 10000))
  bg "$w-tunnel-s.log" timeout -k 5 600 ip netns exec "$NS-b" "$build/qpool-tunnel" server \
    --tunnel "$NP_B_IP:$up" --listen "$NP_B_IP:$tport" --psk-file "$work/psk" "${ccf[@]}"
  sp=$BGPID
  bg "$w-tunnel-c.log" timeout -k 5 600 ip netns exec "$NS-a" "$build/qpool-tunnel" client \
    --tunnel "$NP_B_IP:$up" --forward 127.0.0.1:8080 --psk-file "$work/psk" "${ccf[@]}"
  cp=$BGPID
  maxt=$((2 * secs + 10))
  if wait_log "$w-tunnel-s.log" "tunnel client authenticated" 30 "$sp" &&
    run 20 "$w-warm.log" ip netns exec "$NS-b" curl -sf --max-time 15 -o /dev/null "http://$NP_B_IP:$tport/1k"; then
    run $((maxt + 10)) "$w-curl.log" ip netns exec "$NS-b" curl -s -o /dev/null --max-time "$maxt" \
      -w '%{http_code} %{size_download} %{time_total} %{speed_download}\n' \
      "http://$NP_B_IP:$tport/bulk" || rc=$?
    read -r code R_BYTES R_SECS _ <"$w-curl.log"
    if [ "$code" = 200 ] && [ "${R_BYTES:-0}" -gt 0 ]; then
      if [ $rc = 0 ] && [ "$R_BYTES" = "$size" ]; then
        R_STATUS=ok
      elif [ $rc = 28 ]; then
        R_STATUS=timeout
      fi
    fi
  fi
  stop "$sp" "$cp" "$np"
  record "$2" tunnel "A->B" "$tunnel_cc" "$w-curl.log" "$w-curl.log.err" "$w-warm.log.err" \
    "$w-tunnel-s.log" "$w-tunnel-c.log" "$w-nginx.log"
}

# --- run ---------------------------------------------------------------------
head -c 32 /dev/urandom | base64 >"$work/psk"
chmod 600 "$work/psk"
SUMMARY=()
t_start=$(date +%s)
note "profiles ${profiles}; ${secs} s per transfer, ${reps} run(s) each; qpool congestion control: ${cc_list} (qpoold's default: ${cc_default:-?}); namespaces $NS-a/$NS-b"
for i in "${!P_LABEL[@]}"; do
  tag=p$i
  t0=$(date +%s)
  note "--- ${P_LABEL[$i]}: setting up the path"
  if ! netpath_up "$NS" "${P_RTT[$i]}" "${P_LOSS[$i]}" "${P_REORDER[$i]}" >"$work/$tag-netpath.log" 2>&1; then
    note "${P_LABEL[$i]}: path set-up failed: $(tail -n 3 "$work/$tag-netpath.log" | tr '\n' ' ')"
    R_STATUS=fail R_BYTES="" R_SECS="" REP=1
    for m in tcp-cubic tcp-bbr; do record "$i" $m "B->A" "${m#tcp-}" "$work/$tag-netpath.log"; done
    record "$i" go-peer "B->A" quic-go "$work/$tag-netpath.log"
    for cc in "${CCS[@]}"; do
      record "$i" qpool "B->A" "$cc" "$work/$tag-netpath.log"
      record "$i" qpool "A->B" "$cc" "$work/$tag-netpath.log"
    done
    record "$i" tunnel "A->B" "$tunnel_cc" "$work/$tag-netpath.log"
    SUMMARY+=("${P_LABEL[$i]}: path set-up failed")
    continue
  fi
  size="" # the tunnel's file: fixed by the first run of the profile
  for ((REP = 1; REP <= reps; REP++)); do
  rtag=$tag-r$REP
  tcp_row cubic "$rtag" "$i"
  tcp_row bbr "$rtag" "$i"
  go_row "$rtag" "$i"
  ab_bytes=""
  for cc in "${CCS[@]}"; do
    up_ok=1
    qpoold_up "$cc" "$rtag" || { up_ok=0; note "qpoold ($cc) did not start: $QS_LOG $QC_LOG"; }
    qpool_row "B->A" "$cc" "$rtag" "$i" $up_ok
    qpool_row "A->B" "$cc" "$rtag" "$i" $up_ok
    [ -n "$ab_bytes" ] || { [ "$R_STATUS" = fail ] || ab_bytes=$R_BYTES; }
    stop "$QS_PID" ${QC_PID:+"$QC_PID"}
  done
  if [ -n "$size" ]; then
    :
  elif [ -n "$tunnel_mib" ]; then
    size=$((tunnel_mib * 1048576))
  elif [ -n "$ab_bytes" ]; then # what qpool moved in $secs, in whole MiB
    size=$(((ab_bytes + 1048575) / 1048576 * 1048576))
    [ $size -ge 4194304 ] || size=4194304
    [ $size -le 4294967296 ] || size=4294967296
  elif [ $quick = 1 ]; then
    size=$((16 * 1048576))
  else
    size=$((64 * 1048576))
  fi
  tunnel_row "$rtag" "$i" "$size"
  done
  SUMMARY+=("${P_LABEL[$i]}: $(netpath_summary "$NS" 2>/dev/null); $(($(date +%s) - t0)) s")
  netpath_down "$NS"
done
mv "$TSV.new" "$TSV"

# --- the table ---------------------------------------------------------------
"$PY" - "$TSV" "$secs" "$cc_list" "${cc_default:-?}" "$tunnel_cc" "$reps" <<'EOF'
import csv, statistics, sys
tsv, secs, ccs = sys.argv[1], sys.argv[2], sys.argv[3].split(",")
cc_default, tunnel_cc, reps = sys.argv[4], sys.argv[5], int(sys.argv[6])
rows = list(csv.DictReader(open(tsv), delimiter="\t"))
profiles = []
for r in rows:
    if r["profile"] not in profiles:
        profiles.append(r["profile"])

def get(p, m, d=None, cc=None):
    """The runs' median as one row (status: fail if every run failed,
    timeout if a counted run hit its bound), with "runs": their figures."""
    rs = [r for r in rows if r["profile"] == p and r["measure"] == m and
          (d is None or r["direction"] == d) and (cc is None or r["cc"] == cc)]
    if not rs:
        return None
    ok = [r for r in rs if r["status"] in ("ok", "timeout") and r["MBps"]]
    if not ok:
        return dict(rs[0], runs=[])
    v = sorted(float(r["MBps"]) for r in ok)
    st = "timeout" if any(r["status"] == "timeout" for r in ok) else "ok"
    return dict(ok[0], MBps=str(statistics.median(v)), status=st, runs=v)

def num(r):
    if r and r["status"] in ("ok", "timeout") and r["MBps"]:
        return float(r["MBps"])
    return None

def fmt(r):
    if r is None:
        return "-"
    if r["status"] == "fail":
        return "fail"
    if r["status"] == "n/a":
        return "n/a"
    v = float(r["MBps"])
    s = "%.0f" % v if v >= 100 else "%.1f" % v if v >= 10 else "%.2f" % v if v >= 1 else "%.3f" % v
    return (">" if r["status"] == "timeout" else "") + s

def ratio(a, b, times=False):
    a, b = num(a), num(b)
    if a is None or not b:
        return "-"
    return "%.0fx" % (a / b) if times and a / b >= 10 else "%.0f%%" % (100 * a / b)

lab = (lambda cc: "") if ccs == ["default"] else (lambda cc: " " + cc)
cols = ["TCP cubic", "TCP bbr", "Go peer"]
for cc in ccs:
    cols += ["qpool B->A" + lab(cc), "qpool A->B" + lab(cc)]
cols += ["tunnel A->B", "q/bbr", "q/Go", "tun/q"]
w = [max(9, len(c)) for c in cols]
print()
print("impaired paths: goodput in MB/s (10^6 bytes/s), %s s per transfer" % secs)
print("%-10s " % "profile" + " ".join("%*s" % (w[i], c) for i, c in enumerate(cols)))
# the ratios are those of the default controller (its column when --cc
# names it, else the first)
ref = "default" if "default" in ccs else cc_default if cc_default in ccs else ccs[0]
for p in profiles:
    q0 = get(p, "qpool", "B->A", ref)
    qa = get(p, "qpool", "A->B", ref)
    vals = [fmt(get(p, "tcp-cubic")), fmt(get(p, "tcp-bbr")), fmt(get(p, "go-peer"))]
    for cc in ccs:
        vals += [fmt(get(p, "qpool", "B->A", cc)), fmt(get(p, "qpool", "A->B", cc))]
    tun = get(p, "tunnel")
    vals += [fmt(tun), ratio(q0, get(p, "tcp-bbr")), ratio(q0, get(p, "go-peer"), True), ratio(tun, qa)]
    print("%-10s " % p + " ".join("%*s" % (w[i], v) for i, v in enumerate(vals)))
print("profile = round-trip time / loss per packet, both directions, on a veth pair between")
print("two namespaces, A (client side) and B (server side). TCP: iperf3 -R (B->A), receiver's")
print("figure. Go peer: quic-go pools (tests/interop/nppeer -bulk), B->A. qpool: one stream")
print("through qpoold pools (server in B, client in A), taken as an fd, time from first byte to")
print("EOF at the reader. tunnel: curl in B downloads from nginx in A through qpool-tunnel.")
print("q/bbr, q/Go: qpool B->A%s / TCP bbr, / Go peer; tun/q: tunnel / qpool A->B%s." % (lab(ref), lab(ref)))
print("qpool congestion control: %s; qpoold's default: %s; the tunnel's: %s." % (
    ", ".join(ccs), cc_default, tunnel_cc if tunnel_cc != "default" else "its default"))
print(">: the transfer hit its time bound; the figure is bytes received / time taken.")
if reps > 1:
    print("each figure is the median of %d runs, interleaved; their spread (min-max):" % reps)
    for p in profiles:
        sp = []
        for label, r in [("TCP bbr", get(p, "tcp-bbr")), ("Go", get(p, "go-peer"))] + \
                [("qpool B->A" + lab(cc), get(p, "qpool", "B->A", cc)) for cc in ccs] + \
                [("qpool A->B" + lab(cc), get(p, "qpool", "A->B", cc)) for cc in ccs] + \
                [("tunnel", get(p, "tunnel"))]:
            if r and r.get("runs"):
                sp.append("%s %s-%s" % (label, fmt(dict(r, MBps=str(r["runs"][0]), status="ok")),
                                         fmt(dict(r, MBps=str(r["runs"][-1]), status="ok"))))
        print("  %-9s %s" % (p, "; ".join(sp)))
EOF
printf 'path counters (packets into each host):\n'
printf '  %s\n' "${SUMMARY[@]}"
printf 'raw figures: %s; total %d s\n' "$TSV" $(($(date +%s) - t_start))

# --- the chart ---------------------------------------------------------------
if [ -n "$png" ]; then
  # plot.dat: one line per profile, one column per series; prints the y
  # range (the decades around the figures), nothing if there is no figure
  yr=$("$PY" - "$TSV" "$cc_list" "$work/plot.dat" <<'EOF'
import csv, math, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
ccs = sys.argv[2].split(",")
series = [("TCP cubic", "tcp-cubic", None, None), ("TCP bbr", "tcp-bbr", None, None),
          ("Go peer (quic-go)", "go-peer", None, None)]
for cc in ccs:
    l = "" if ccs == ["default"] else " " + cc
    series += [("qpool B->A" + l, "qpool", "B->A", cc), ("qpool A->B" + l, "qpool", "A->B", cc)]
series += [("qpool-tunnel (HTTP) A->B", "tunnel", None, None)]
profiles = []
for r in rows:
    if r["profile"] not in profiles:
        profiles.append(r["profile"])
vals = []
with open(sys.argv[3], "w") as f:
    print("profile\t" + "\t".join('"%s"' % s[0] for s in series), file=f)
    for p in profiles:
        out = ['"%s"' % p]
        for _, m, d, cc in series:
            runs = sorted(float(r["MBps"]) for r in rows
                          if r["profile"] == p and r["measure"] == m and
                          (d is None or r["direction"] == d) and
                          (cc is None or r["cc"] == cc) and r["MBps"] and
                          r["status"] in ("ok", "timeout") and float(r["MBps"]) > 0)
            v = "?"
            if runs:  # the median, as in the table
                vals.append(statistics.median(runs))
                v = "%g" % vals[-1]
            out.append(v)
        print("\t".join(out), file=f)
if vals:
    print("%g %g" % (10 ** math.floor(math.log10(min(vals)) - 0.3), 10 ** math.ceil(math.log10(max(vals)) + 1e-9)))
EOF
  )
  ncol=$(head -n 1 "$work/plot.dat" | awk -F'\t' '{print NF}')
  if [ -z "$yr" ]; then
    note "no figure to plot: $png not written"
  elif mkdir -p "$(dirname "$png")" && gnuplot >"$work/gnuplot.log" 2>&1 <<EOF; then
set terminal pngcairo size 1100,560 font ",10"
set output "$png"
set datafile separator "\t"
set datafile missing "?"
set title "Goodput over impaired paths (RTT / loss, both directions), ${secs} s transfers, median of ${reps} ($(date -u +%F), $(nproc) CPUs)"
set ylabel "MB/s (10^6 bytes/s), log scale"
set logscale y
set yrange [${yr% *}:${yr#* }]
set grid ytics
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set key outside right top vertical
set xtics nomirror
plot for [c=2:$ncol] "$work/plot.dat" using c:xtic(1) title columnhead
EOF
    echo "chart: $png"
  else
    note "gnuplot failed: $(tail -n 3 "$work/gnuplot.log")"
    failed=$((failed + 1))
  fi
fi
[ "$failed" -eq 0 ]
