#!/usr/bin/env bash
# The fd design works from any language: examples/python/qpool_take.py
# (standard library only, socket.recvmsg for the fd) takes a stream from a
# running qpoold on each side and moves 1 MiB each way byte-exactly, with
# half-close on stdin EOF.
. "$(dirname "$0")/lib.sh"
PY="$QP_SRC/examples/python/qpool_take.py"
port=$(free_port)
start_bg srv "$QPOOLD" server --name srv --listen "127.0.0.1:$port" --max-cap 8 \
  --chroot "$WORK/empty" --control "$WORK/srv.sock"
export QPOOL_STATUS_FILE="$WORK/cli.status"
start_bg cli "$QPOOLD" client --name cli --target "127.0.0.1:$port" --min-cap 4 \
  --max-cap 4 --chroot "$WORK/empty" --control "$WORK/cli.sock"
unset QPOOL_STATUS_FILE
wait_status "$WORK/cli.status" cli idle_streams 4 15
head -c 1048576 /dev/urandom >"$WORK/a"
head -c 1048576 /dev/urandom >"$WORK/b"
python3 "$PY" --control "$WORK/srv.sock" --pool srv incoming <"$WORK/a" \
  >"$WORK/got_by_srv" 2>"$WORK/srv.id" &
PIDS+=($!); pysrv=$!
check "python took a stream from the server pool (ID printed)" \
  wait_for "$WORK/srv.id" "^[0-9a-f]{8}$" 10
id=$(head -n1 "$WORK/srv.id")
py_cli() {
  timeout 30 python3 "$PY" --control "$WORK/cli.sock" --pool cli outgoing "$id" \
    <"$WORK/b" >"$WORK/got_by_cli" 2>"$WORK/py_cli.err"
}
check "python takes the same stream ($id) from the client pool and both ends finish" py_cli
wait "$pysrv"
check "client side received the server's 1 MiB byte-exactly" cmp -s "$WORK/a" "$WORK/got_by_cli"
check "server side received the client's 1 MiB byte-exactly" cmp -s "$WORK/b" "$WORK/got_by_srv"
check "an unknown pool gives qpoold's sentence" bash -c \
  "! python3 '$PY' --control '$WORK/srv.sock' --pool nope incoming </dev/null 2>'$WORK/nope.err'; grep -q 'no pool named' '$WORK/nope.err'"
kill -TERM "$(pid_of srv)" "$(pid_of cli)"
finish
