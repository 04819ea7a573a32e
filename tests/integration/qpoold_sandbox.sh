#!/usr/bin/env bash
# Sandbox proofs on real workers of a running qpoold: each worker runs as the
# unprivileged user, inside its chroot, with no_new_privs and a seccomp
# filter, cannot fork (RLIMIT_NPROC 0) or dump core; asked (SIGUSR2, enabled
# by QPOOL_ALLOW_PROBES=1) to open(), socket(), bind(), connect(), fork(),
# execve() and ptrace, every attempt is denied — and the worker keeps serving.
. "$(dirname "$0")/lib.sh"
need_root
port=$(free_port)
mkdir -p "$WORK/empty"
export QPOOL_STATUS_FILE="$WORK/srv.status" QPOOL_ALLOW_PROBES=1
start_bg srv "$QPOOLD" server --name srv --listen "127.0.0.1:$port" --max-cap 4 \
  --chroot "$WORK/empty" --control "$WORK/srv.sock"
unset QPOOL_STATUS_FILE QPOOL_ALLOW_PROBES
wait_for "$WORK/srv.log" "in the sandbox" 10
wait_status "$WORK/srv.status" srv worker_restarts 0 5 >/dev/null || true
wpid=$(status_of "$WORK/srv.status" srv pid)
check "worker pid known ($wpid)" test -n "$wpid" -a -e "/proc/$wpid"
st=/proc/$wpid/status
nobody=$(id -u nobody); nogroup=$(id -g nobody)
check "real/effective/saved/fs uid are nobody's" \
  test "$(awk '/^Uid:/ {print $2,$3,$4,$5}' $st)" = "$nobody $nobody $nobody $nobody"
check "all gids are nobody's group" \
  test "$(awk '/^Gid:/ {print $2,$3,$4,$5}' $st)" = "$nogroup $nogroup $nogroup $nogroup"
check "no supplementary groups" test -z "$(awk '/^Groups:/ {print $2}' $st)"
check "NoNewPrivs is set" grep -qE '^NoNewPrivs:\s+1' $st
check "a seccomp filter is active (mode 2)" grep -qE '^Seccomp:\s+2' $st
check "root directory is the chroot" test "$(readlink /proc/$wpid/root)" = "$WORK/empty"
check "no capabilities" grep -qE '^CapEff:\s+0+$' $st
check "cannot create processes (RLIMIT_NPROC 0)" \
  grep -qE '^Max processes\s+0\s+0' /proc/$wpid/limits
check "no core dumps (RLIMIT_CORE 0)" grep -qE '^Max core file size\s+0\s+0' /proc/$wpid/limits

kill -USR2 "$(pid_of srv)"
for what in open socket bind connect fork execve ptrace; do
  check "probe: $what() is denied" wait_for "$WORK/srv.log" "probe $what -> -[0-9]+ " 5
done
check "no probe succeeded" bash -c "! grep -q 'ALLOWED' '$WORK/srv.log'"
check "the worker is still the same process" test -e "/proc/$wpid"
check "and still serves: a client fills the pool" logrun "$WORK/cli.log" \
  "$PEER" client --target "127.0.0.1:$port" --min-cap 4 --max-cap 4 --wait-active 4 --timeout 20s
kill -TERM "$(pid_of srv)"
check "qpoold stops cleanly" wait "$(pid_of srv)"
finish
