# Shared helpers for the integration tests (sourced, not run). Every wait is
# bounded; every process started is killed on exit.
set -euo pipefail
: "${QP_BIN:?QP_BIN must point at the CMake build directory}"
: "${QP_SRC:?QP_SRC must point at the source tree}"
PEER="$QP_BIN/tests/np-peer"
TESTDATA="${QP_TESTDATA:-$QP_BIN/testdata}"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/qpool-test.XXXXXX")
PIDS=()
PASSED=0
FAILED=0

cleanup() {
  local rc=$?
  # SIGTERM first, so that daemons with children (nginx's master) take them
  # along; what is still there after 1 s gets SIGKILL
  local p i
  for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for ((i = 0; i < 20; i++)); do
    local alive=0
    for p in "${PIDS[@]}"; do # gone, or a zombie waiting for `wait`
      case $(awk '{print $3}' "/proc/$p/stat" 2>/dev/null) in "" | Z) ;; *) alive=1 ;; esac
    done
    [ $alive = 0 ] && break
    sleep 0.05
  done
  for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ "$FAILED" -ne 0 ] || [ "$rc" -ne 0 ] || [ "${KEEP_WORK:-0}" = 1 ]; then
    echo "logs kept in $WORK"
  else
    rm -rf "$WORK"
  fi
}
trap cleanup EXIT

ok() { echo "ok - $*"; PASSED=$((PASSED + 1)); }
not_ok() { echo "not ok - $*"; FAILED=$((FAILED + 1)); }
check() { # check "description" command...
  local d=$1; shift
  if "$@"; then ok "$d"; else not_ok "$d"; fi
}
finish() {
  echo "$PASSED passed, $FAILED failed"
  [ "$FAILED" -eq 0 ]
}

# Tests pick ports below the kernel's ephemeral range: a socket bound to
# port 0 (any client's, in a test running in parallel) takes its port from
# that range, and could take a picked one between the pick and its use
# (seen: "cannot listen ...: held by np-peer").
read -r QP_EPHEMERAL_LO _ </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null ||
  QP_EPHEMERAL_LO=32768
if [ "$QP_EPHEMERAL_LO" -gt 12000 ]; then
  QP_PORT_LO=10000 QP_PORT_HI=$((QP_EPHEMERAL_LO - 1))
else
  QP_PORT_LO=20000 QP_PORT_HI=60000
fi
export QP_PORT_LO QP_PORT_HI

# A UDP port nobody uses right now on 127.0.0.1 / ::1.
free_port() {
  python3 - <<'PY'
import os, socket, random
lo, hi = int(os.environ["QP_PORT_LO"]), int(os.environ["QP_PORT_HI"])
for _ in range(200):
    p = random.randint(lo, hi)
    ok = True
    for fam, host in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
        s = socket.socket(fam, socket.SOCK_DGRAM)
        try:
            s.bind((host, p))
        except OSError:
            ok = False
        finally:
            s.close()
    if ok:
        print(p)
        break
PY
}

# start_bg NAME cmd... : runs cmd in the background, output in $WORK/NAME.log
start_bg() {
  local name=$1; shift
  "$@" >"$WORK/$name.log" 2>&1 &
  PIDS+=($!)
  eval "PID_${name//[^a-zA-Z0-9_]/_}=$!"
}

# wait_for FILE PATTERN SECONDS
wait_for() {
  local f=$1 pat=$2 secs=$3 i
  for ((i = 0; i < secs * 20; i++)); do
    grep -qE "$pat" "$f" 2>/dev/null && return 0
    sleep 0.05
  done
  echo "timed out after ${secs}s waiting for /$pat/ in $f:" >&2
  tail -5 "$f" >&2 || true
  return 1
}

# stat_of LINE KEY: value of key=value in a stats line
stat_of() { sed -nE "s/.* $2=([^ ]*).*/\1/p" <<<"$1"; }

ensure_certs() { "$QP_SRC/scripts/gen-certs" "$TESTDATA" >/dev/null; }

# logrun FILE cmd...: runs cmd with its output in FILE; returns its status
logrun() { local f=$1; shift; "$@" >"$f" 2>&1; }

pid_of() { local v="PID_${1//[^a-zA-Z0-9_]/_}"; echo "${!v}"; }

QPOOLD="$QP_BIN/qpoold"
# status_of FILE POOL KEY: a value from qpoold's status file
status_of() { grep "^pool=$2 " "$1" 2>/dev/null | sed -nE "s/.* $3=([^ ]*).*/\1/p"; }
# wait_status FILE POOL KEY VALUE SECONDS
wait_status() {
  local i
  for ((i = 0; i < $5 * 20; i++)); do
    [ "$(status_of "$1" "$2" "$3")" = "$4" ] && return 0
    sleep 0.05
  done
  echo "timed out: $2 $3 != $4 in $1:" >&2; cat "$1" >&2 || true
  return 1
}
need_root() { [ "$(id -u)" -eq 0 ] || { echo "SKIP: needs root"; exit 77; }; }
# wait_status_ge FILE POOL KEY MIN SECONDS: a numeric status value >= MIN
wait_status_ge() {
  local i v
  for ((i = 0; i < $5 * 20; i++)); do
    v=$(status_of "$1" "$2" "$3")
    [ -n "$v" ] && [ "$v" -ge "$4" ] && return 0
    sleep 0.05
  done
  echo "timed out: $2 $3 < $4 in $1" >&2
  return 1
}
