#!/usr/bin/env bash
# Client targets are resolved at dial time, by qpoold, on every (re)dial:
#   - `--check` and the start need no DNS for a host name;
#   - a pool whose name does not resolve keeps running, says "cannot
#     resolve NAME: ..." in its status, and retries with its back-off;
#   - once the name resolves, the pool connects (no restart, no SIGHUP);
#   - when the name moves (another address, now two of them, one dead),
#     the next reconnect follows it, trying the addresses in turn.
# Name resolution is made hermetic in a private mount namespace: its own
# /etc/hosts (a file the test rewrites) and /etc/nsswitch.conf ("hosts:
# files", so no DNS server is ever asked).
. "$(dirname "$0")/lib.sh"
need_root
command -v unshare >/dev/null || { echo "SKIP: no unshare"; exit 77; }
CTL="$QP_BIN/qpoolctl"
NAME=qpool-resolve-test.example
port=$(free_port)
printf '127.0.0.1 localhost\n::1 localhost\n' >"$WORK/hosts"
printf 'hosts: files\n' >"$WORK/nsswitch.conf"
# "${IN_NS[@]}" CMD...: runs CMD with the test's /etc/hosts and
# /etc/nsswitch.conf; unshare and bash exec, so a background job's pid is
# CMD's own
IN_NS=(unshare --mount --propagation private bash -c '
    mount --bind "$1/hosts" /etc/hosts &&
    mount --bind "$1/nsswitch.conf" /etc/nsswitch.conf || exit 99
    shift; exec "$@"' _ "$WORK")
in_ns() { "${IN_NS[@]}" "$@"; }
if ! in_ns true; then echo "SKIP: cannot bind-mount in a mount namespace"; exit 77; fi
fails() { ! "$@"; }
check_ok() { "$@" 2>&1 | tee -a "$WORK/check.log" | grep -q "configuration ok"; }
check "in the namespace the name does not resolve (and no DNS is asked)" \
  fails in_ns getent hosts "$NAME"
check "--check passes for a name target without resolving it" \
  check_ok in_ns "$QPOOLD" client --name c --target "$NAME:$port" --check
printf '[pool c]\nmode = client\ntarget = %s:%s\n' "$NAME" "$port" >"$WORK/c.conf"
check "... in a config file too" \
  check_ok in_ns "$QPOOLD" --config "$WORK/c.conf" --check
check "a bad numeric target still fails --check" \
  fails check_ok "$QPOOLD" client --name c --target 127.0.0.1:0 --check

start_bg s "$QPOOLD" server --name s --listen "127.0.0.1:$port" --max-cap 4 \
  --chroot "$WORK/empty" --control "$WORK/s.sock"
wait_for "$WORK/s.log" "in the sandbox" 10
export QPOOL_STATUS_FILE="$WORK/c.status"
start_bg c "${IN_NS[@]}" "$QPOOLD" client --name c --target "$NAME:$port" --min-cap 2 \
  --max-cap 2 --min-interval 100ms --max-interval 100ms --log-level debug \
  --chroot "$WORK/empty" --control "$WORK/c.sock"
unset QPOOL_STATUS_FILE
check "an unresolvable name: the status says so" \
  wait_for "$WORK/c.status" "^pool=c .*error=\"cannot resolve $NAME: " 10
sleep 2
check "... qpoold keeps running" kill -0 "$(pid_of c)"
check "... qpoolctl status shows it" \
  bash -c "'$CTL' --control '$WORK/c.sock' status | grep -qE '^c +client .*cannot resolve $NAME'"
check "... the log says it once" \
  test "$(grep -c "pool c: connection failed: cannot resolve $NAME" "$WORK/c.log")" -eq 1

# the name appears (rewritten in place: the bind mount shows the new text)
printf '127.0.0.1 localhost\n::1 localhost\n127.0.0.1 %s\n' "$NAME" >"$WORK/hosts"
check "once it resolves, the pool connects (no restart)" \
  wait_status "$WORK/c.status" c connected 1 15
check "... and fills" wait_status "$WORK/c.status" c idle_streams 2 10
check "... it is the same qpoold" kill -0 "$(pid_of c)"
check "... (the pid watched is qpoold's)" \
  grep -q "qpoold\[$(pid_of c)\]" "$WORK/c.log"

# the name moves to ::1, where another server listens; the server at
# 127.0.0.1 goes away: the pool's reconnect follows the name
export QPOOL_STATUS_FILE="$WORK/s6.status"
start_bg s6 "$QPOOLD" server --name s6 --listen "[::1]:$port" --max-cap 4 \
  --chroot "$WORK/empty" --control "$WORK/s6.sock"
unset QPOOL_STATUS_FILE
wait_for "$WORK/s6.log" "in the sandbox" 10
printf '127.0.0.1 localhost\n::1 localhost\n::1 %s\n' "$NAME" >"$WORK/hosts"
kill -TERM "$(pid_of s)"; wait "$(pid_of s)" || true
check "the pool follows the name to its new address" \
  wait_status_ge "$WORK/s6.status" s6 idle_streams 2 20
check "... connected again" wait_status "$WORK/c.status" c connected 1 10

# two addresses, the first one dead (::1 sorts before 127.0.0.1): failed
# attempts move on to the next address
export QPOOL_STATUS_FILE="$WORK/s4.status"
start_bg s4 "$QPOOLD" server --name s4 --listen "127.0.0.1:$port" --max-cap 4 \
  --chroot "$WORK/empty" --control "$WORK/s4.sock"
unset QPOOL_STATUS_FILE
wait_for "$WORK/s4.log" "in the sandbox" 10
printf '127.0.0.1 localhost\n::1 localhost\n::1 %s\n127.0.0.1 %s\n' "$NAME" \
  "$NAME" >"$WORK/hosts"
kill -TERM "$(pid_of s6)"; wait "$(pid_of s6)" || true
check "with a dead first address, the pool reaches the second" \
  wait_status_ge "$WORK/s4.status" s4 idle_streams 2 20
check "... connected again" wait_status "$WORK/c.status" c connected 1 10
check "... after trying [::1] and then 127.0.0.1" \
  bash -c "grep -A100 'lost: peer closed.*pool closed' '$WORK/c.log' | tail -n +2 |
    grep -A100 'dialing \[::1\]:$port (attempt 0 since' |
    grep -q 'dialing 127.0.0.1:$port (attempt 1 since'"
kill -TERM "$(pid_of c)"; wait "$(pid_of c)" || true
finish
