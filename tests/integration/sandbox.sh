#!/usr/bin/env bash
# The worker sandbox (worker/sandbox.c), seen from outside: sandbox-check
# enters it as `nobody` in an empty chroot, reports its probes and waits on
# stdin while this script reads /proc/PID. Then: an unlisted syscall kills
# (SIGSYS) or, with --trap, is logged; the parent's death kills the child.
#
# Needs root (chroot, setresuid). ASan builds: LeakSanitizer cannot run in
# the sandbox (it stops the world with a clone that ptrace()s the process),
# so wrk_sandbox_enter() runs the leak check at entry instead of at exit, and
# ASan reports from inside cannot be symbolized (no /proc, no llvm-symbolizer
# to execute): they show module+offset. No ASAN_OPTIONS are needed; should
# LeakSanitizer fail at entry (under strace or gdb), run with
# ASAN_OPTIONS=detect_leaks=0.
if [ "$(id -u)" != 0 ]; then
  echo "SKIP: the sandbox test needs root (chroot, setresuid)"
  exit 77
fi
. "$(dirname "$0")/lib.sh"

CHECK="$QP_BIN/tests/sandbox-check"
ROOT="$WORK/root"
mkdir "$ROOT"
ROOT=$(realpath "$ROOT")
if id nobody >/dev/null 2>&1; then
  NB_UID=$(id -u nobody) NB_GID=$(id -g nobody)
else
  NB_UID=65534 NB_GID=65534
fi

status_is() { # status_is PID FIELD VALUE: "FIELD:<tab>VALUE" in status
  local got
  got=$(sed -nE "s/^$2:[[:space:]]*//p" "/proc/$1/status" | tr -s '\t ' ' ')
  [ "$got" = "$3" ] || { echo "  $2: '$got', expected '$3'" >&2; return 1; }
}
limit_is() { # limit_is PID "Max processes" "0 0": soft and hard limits
  local got
  got=$(sed -nE "s/^$2 +([^ ]+) +([^ ]+).*/\1 \2/p" "/proc/$1/limits")
  [ "$got" = "$3" ] || { echo "  $2: '$got', expected '$3'" >&2; return 1; }
}
probe_is() { # probe_is NAME ERRNO: the filter's answer, negative
  local got
  got=$(sed -nE "s/^probe $1 (-?[0-9]+)$/\1/p" "$WORK/check.out")
  [ -n "$got" ] && [ "$got" -lt 0 ] && [ "$got" = "$2" ] ||
    { echo "  probe $1: '$got', expected $2" >&2; return 1; }
}
is_dead() { # gone, or a zombie nobody reaped yet
  local st
  st=$(sed -nE 's/^State:[[:space:]]*(.).*/\1/p' "/proc/$1/status" 2>/dev/null)
  [ -z "$st" ] || [ "$st" = Z ]
}

# --- 1. inside the sandbox, seen from outside --------------------------------
# stdout/stderr are pipes here, so RLIMIT_FSIZE 0 applies (case 2 covers
# regular files); stdin is a fifo we keep open until the checks are done.
mkfifo "$WORK/stdin"
"$CHECK" "$ROOT" <"$WORK/stdin" > >(cat >"$WORK/check.out") \
  2> >(cat >"$WORK/check.err") &
PID=$!
PIDS+=("$PID")
exec 3>"$WORK/stdin"
if wait_for "$WORK/check.out" '^(alive|FAIL)' 30 &&
  grep -q '^alive$' "$WORK/check.out"; then
  ok "sandbox-check entered the sandbox and its event loop still works"
else
  not_ok "sandbox-check did not get to 'alive'"
  cat "$WORK/check.out" "$WORK/check.err" >&2 || true
fi
check "the pid it reports is the one started" \
  grep -qx "pid $PID" "$WORK/check.out"
check "uid is nobody's (real, effective, saved, fs)" \
  status_is "$PID" Uid "$NB_UID $NB_UID $NB_UID $NB_UID"
check "gid is nobody's (real, effective, saved, fs)" \
  status_is "$PID" Gid "$NB_GID $NB_GID $NB_GID $NB_GID"
check "no supplementary groups" status_is "$PID" Groups ""
check "no_new_privs is set" status_is "$PID" NoNewPrivs 1
check "seccomp is in filter mode" status_is "$PID" Seccomp 2
check "its root is the chroot directory" \
  test "$(readlink "/proc/$PID/root")" = "$ROOT"
check "its cwd is the chroot's /" \
  test "$(readlink "/proc/$PID/cwd")" = "$ROOT"
check "RLIMIT_NPROC is 0" limit_is "$PID" "Max processes" "0 0"
check "RLIMIT_CORE is 0" limit_is "$PID" "Max core file size" "0 0"
check "RLIMIT_FSIZE is 0" limit_is "$PID" "Max file size" "0 0"
check "RLIMIT_NOFILE is max_fds (soft = hard)" \
  limit_is "$PID" "Max open files" "4096 4096"
check "probe open: denied (EACCES)" probe_is open -13
for p in socket bind connect fork execve ptrace; do
  check "probe $p: denied (EPERM)" probe_is "$p" -1
done
exec 3>&-
if wait "$PID"; then
  ok "exits 0 once stdin closes"
else
  not_ok "exit status $? after stdin closed"; cat "$WORK/check.err" >&2
fi

# --- 2. an unlisted syscall --------------------------------------------------
# stdout/stderr are regular files: writing to them after entry must work
# (RLIMIT_FSIZE is left alone then, or SIGXFSZ would kill the first log line).
rc=0
"$CHECK" "$ROOT" --kill-probe </dev/null >"$WORK/kill.out" \
  2>"$WORK/kill.err" || rc=$?
check "kill mode: an unlisted syscall kills with SIGSYS (status 159)" \
  test "$rc" = 159
check "kill mode: it had entered and written to a regular-file stdout" \
  grep -q '^kill-probe [0-9]' "$WORK/kill.out"
rc=0
"$CHECK" "$ROOT" --kill-probe --trap </dev/null >"$WORK/trap.out" \
  2>"$WORK/trap.err" || rc=$?
NR=$(sed -nE 's/^kill-probe ([0-9]+)$/\1/p' "$WORK/trap.out")
check "trap mode: exits 159" test "$rc" = 159
check "trap mode: logs the syscall number ($NR) on stderr" \
  grep -q "seccomp trapped syscall ${NR:-none}\$" "$WORK/trap.err"

# --- 3. parent death ---------------------------------------------------------
mkfifo "$WORK/stdin2"
bash -c '"$1" "$2" <"$3" >"$4" 2>&1 & wait' _ "$CHECK" "$ROOT" \
  "$WORK/stdin2" "$WORK/orphan.out" &
PARENT=$!
PIDS+=("$PARENT")
exec 4>"$WORK/stdin2"
wait_for "$WORK/orphan.out" '^alive$' 30 || true
CHILD=$(sed -nE 's/^pid ([0-9]+)$/\1/p' "$WORK/orphan.out")
if [ -n "$CHILD" ]; then
  PIDS+=("$CHILD")
  kill -9 "$PARENT"
  for ((i = 0; i < 100; i++)); do is_dead "$CHILD" && break; sleep 0.05; done
  check "the child dies with its parent (PR_SET_PDEATHSIG after setuid)" \
    is_dead "$CHILD"
else
  not_ok "parent death: the child never entered"; cat "$WORK/orphan.out"
fi
exec 4>&-

# --- 4. errors are sentences -------------------------------------------------
rc=0
"$CHECK" "$WORK/missing" >"$WORK/err.out" 2>&1 || rc=$?
check "a missing chroot fails with a clear message" \
  grep -qF "cannot chroot into $WORK/missing: No such file or directory" \
  "$WORK/err.out"
check "... and exit status 1" test "$rc" = 1

finish
