#!/usr/bin/env bash
# libqpool in attached mode (include/qpool.h only, blocking calls, one thread
# per stream) against running qpoold server and client pools: the np-test
# exchange over 100 streams byte-exactly; timeouts at their deadline; a
# waiting OutgoingGet / IncomingGet wakes when its stream appears; the stats
# calls agree with qpoold's status file; qp_close cancels blocked calls.
. "$(dirname "$0")/lib.sh"
LQP="$QP_BIN/tests/libqpool-peer"
[ -x "$LQP" ] || { echo "SKIP: $LQP not built"; exit 77; }
mkdir -p "$WORK/empty"

# within MS LO HI: LO <= MS <= HI
within() { [ "$1" -ge "$2" ] && [ "$1" -le "$3" ]; }
field() { sed -nE "s/.* $2=([^ ]*).*/\1/p" <<<" $1"; }

# --- the first stream ever assigned is 00000000: a client-side OutgoingGet
# for it, started before any server exists, wakes as soon as it arrives.
port=$(free_port)
export QPOOL_STATUS_FILE="$WORK/cli.status"
start_bg cli "$QPOOLD" client --name cli --target "127.0.0.1:$port" --min-cap 64 \
  --max-cap 128 --min-interval 100ms --max-interval 1s --chroot "$WORK/empty" \
  --control "$WORK/cli.sock"
unset QPOOL_STATUS_FILE
wait_for "$WORK/cli.log" "running 1 pool" 10
out=$("$LQP" attach --control "$WORK/cli.sock" --pool nosuch || true)
check "attaching to an unknown pool fails with -ENOENT ($out)" grep -q "rc=-2 " <<<"$out"
out=$("$LQP" attach --control "$WORK/nosuch.sock" --pool cli || true)
check "attaching without a qpoold fails with -ECONNREFUSED ($out)" grep -q "rc=-111 " <<<"$out"

start_bg wait0 "$LQP" get --control "$WORK/cli.sock" --pool cli --id 00000000 --timeout-ms 20000
sleep 1
export QPOOL_STATUS_FILE="$WORK/srv.status"
start_bg srv "$QPOOLD" server --name srv --listen "127.0.0.1:$port" --max-cap 128 \
  --chroot "$WORK/empty" --control "$WORK/srv.sock"
unset QPOOL_STATUS_FILE
t_srv=$(date +%s%3N)
check "a waiting OutgoingGet(00000000) returns the stream when it appears" wait "$(pid_of wait0)"
t_got=$(date +%s%3N)
out=$(cat "$WORK/wait0.log")
echo "# $out; $((t_got - t_srv)) ms after the server started"
check "... well before its 20 s timeout (at $((t_got - t_srv)) ms after the server came up)" \
  test $((t_got - t_srv)) -lt 5000
# that stream is gone now: the server side keeps its 00000000, the np-test
# below needs a fresh pair, so restart both pools
kill -TERM "$(pid_of cli)" "$(pid_of srv)"
wait "$(pid_of cli)" || true
wait "$(pid_of srv)" || true

# --- a fresh pair of pools
port=$(free_port)
export QPOOL_STATUS_FILE="$WORK/srv2.status"
start_bg srv2 "$QPOOLD" server --name srv --listen "127.0.0.1:$port" --max-cap 128 \
  --chroot "$WORK/empty" --control "$WORK/srv2.sock"
wait_for "$WORK/srv2.log" "running 1 pool" 10

# an IncomingGet on the empty server pool times out at its deadline
out=$("$LQP" get --control "$WORK/srv2.sock" --pool srv --timeout-ms 500 || true)
ms=$(field "$out" ms)
echo "# $out"
check "IncomingGet on an empty pool: -ETIMEDOUT" grep -q "rc=-110 " <<<"$out"
check "... at the 500 ms deadline, never early (took $ms ms; late only under load)" within "$ms" 450 1500
out=$("$LQP" get --control "$WORK/srv2.sock" --pool srv --timeout-ms 0 || true)
ms=$(field "$out" ms)
check "IncomingGet with timeout 0 on an empty pool: -ETIMEDOUT at once ($ms ms)" \
  bash -c "grep -q 'rc=-110 ' <<<'$out' && [ '$ms' -le 200 ]"

# np-test through both pools, 100 streams x 256 KiB each way. The server
# side starts first: its IncomingGet for the control stream waits on the
# empty pool and wakes when the client pool's first stream (00000000) comes.
fd_before=$(ls /proc/"$(pid_of srv2)"/fd | wc -l)
start_bg ntsrv "$LQP" server --control "$WORK/srv2.sock" --pool srv --streams 100 \
  --bytes 262144 --timeout-ms 60000
sleep 0.5
export QPOOL_STATUS_FILE="$WORK/cli2.status"
start_bg cli2 "$QPOOLD" client --name cli --target "127.0.0.1:$port" --min-cap 64 \
  --max-cap 64 --min-interval 100ms --max-interval 1s --keep-alive 3s --chroot "$WORK/empty" \
  --control "$WORK/cli2.sock"
unset QPOOL_STATUS_FILE
wait_for "$WORK/cli2.log" "running 1 pool" 10
check "np-test, libqpool client side: 100 streams x 256 KiB each way" logrun "$WORK/ntcli.log" \
  "$LQP" client --control "$WORK/cli2.sock" --pool cli --streams 100 --bytes 262144 --timeout-ms 60000
check "np-test, libqpool server side (waited for 00000000) verified every stream" wait "$(pid_of ntsrv)"
sed 's/^/# cli: /' "$WORK/ntcli.log"
sed 's/^/# srv: /' "$WORK/ntsrv.log"
check "the pools refill to 64 idle" wait_status "$WORK/cli2.status" cli idle_streams 64 20
fd_after=$(ls /proc/"$(pid_of srv2)"/fd | wc -l)
check "qpoold (server) holds no more fds than before ($fd_before -> $fd_after)" \
  test "$fd_after" -le "$fd_before"

# an OutgoingGet for an unknown id times out at its deadline
out=$("$LQP" get --control "$WORK/cli2.sock" --pool cli --id fffffffe --timeout-ms 500 || true)
ms=$(field "$out" ms)
echo "# $out"
check "OutgoingGet for an unknown id: -ETIMEDOUT" grep -q "rc=-110 " <<<"$out"
check "... at the 500 ms deadline, never early (took $ms ms; late only under load)" within "$ms" 450 1500

# stats agree with the status file (the pools are steady now)
check "server pool steady at 64 idle" wait_status "$WORK/srv2.status" srv idle_streams 64 10
for side in cli2:cli srv2:srv; do
  f=${side%%:*}
  pool=${side##*:}
  out=$("$LQP" stats --control "$WORK/$f.sock" --pool "$pool" || true)
  echo "# $pool: $out"
  check "$pool: qp_active = status active ($(status_of "$WORK/$f.status" "$pool" idle_streams))" \
    test "$(field "$out" active)" = "$(status_of "$WORK/$f.status" "$pool" idle_streams)"
  check "$pool: qp_capacity = status capacity ($(status_of "$WORK/$f.status" "$pool" capacity))" \
    test "$(field "$out" capacity)" = "$(status_of "$WORK/$f.status" "$pool" capacity)"
  check "$pool: qp_ready = 1" test "$(field "$out" ready)" = 1
done
out=$("$LQP" stats --control "$WORK/cli2.sock" --pool cli || true)
check "client qp_interval is within [100 ms, 1 s] ($(field "$out" interval_ns) ns)" \
  within "$(field "$out" interval_ns)" 100000000 1000000000
check "AddError / ErrorCount / ResetError / Flush" logrun "$WORK/ctl.log" \
  "$LQP" ctl --control "$WORK/cli2.sock" --pool cli
sed 's/^/# /' "$WORK/ctl.log"
check "qp_close cancels 4 blocked OutgoingGets (-ECANCELED)" logrun "$WORK/cancel.log" \
  "$LQP" cancel --control "$WORK/cli2.sock" --pool cli --id fffffffe
sed 's/^/# /' "$WORK/cancel.log"

# --- takes go straight to the worker: qpoold granted sessions; a worker
# crash in the middle of a run of takes is survived (the library falls back
# to qpoold, which says EAGAIN while the worker restarts, then gets a new
# session)
s0=$(status_of "$WORK/srv2.status" srv sessions)
check "qpoold granted worker sessions to the libqpool programs ($s0)" test "${s0:-0}" -ge 1
start_bg rep "$LQP" repeat --control "$WORK/srv2.sock" --pool srv --streams 120 \
  --peer-control "$WORK/cli2.sock" --peer-pool cli
wait_for "$WORK/rep.log" "i=15 " 20
wpid=$(status_of "$WORK/srv2.status" srv pid)
kill -9 "$wpid"
check "a run of 120 takes goes on across a worker SIGKILL" wait "$(pid_of rep)"
bad=$(grep "^repeat:" "$WORK/rep.log" | grep -vE "rc=(0|-11|-110) " || true)
check "... every take succeeded, or said EAGAIN / ETIMEDOUT while the pool was down ('$bad')" test -z "$bad"
echo "# $(grep -c 'rc=0 ' "$WORK/rep.log") of 120 took a stream; $(grep -c 'rc=-11 ' "$WORK/rep.log") EAGAIN, $(grep -c 'rc=-110 ' "$WORK/rep.log") ETIMEDOUT"
check "... the last 20 all took a stream" \
  test "$(grep '^repeat:' "$WORK/rep.log" | tail -20 | grep -c 'rc=0 ')" -eq 20
n_to=$(grep -c 'rc=-110 ' "$WORK/rep.log" || true)
check "... the client pool was back within about one keep-alive (3 s), not its idle timeout ($n_to takes of 2 s timed out)" \
  test "$n_to" -le 5
r=$(status_of "$WORK/srv2.status" srv stateless_resets)
check "qpoold reset the dead worker's connection statelessly (resets=$r)" test "${r:-0}" -ge 1
check "... and the client logged why it reconnected" grep -q "stateless reset from the peer" "$WORK/cli2.log"
s1=$(status_of "$WORK/srv2.status" srv sessions)
check "... through a new session after the restart (sessions $s0 -> $s1)" test "${s1:-0}" -gt "${s0:-0}"

# --- gets of an application that left take no stream: 4 IncomingGets wait
# on an empty pool, qp_close cancels them, then streams arrive: none of them
# is taken (through the worker session, and through qpoold)
for mode in session qpoold; do
  port3=$(free_port)
  export QPOOL_STATUS_FILE="$WORK/s3$mode.status"
  start_bg "s3$mode" "$QPOOLD" server --name s3 --listen "127.0.0.1:$port3" --max-cap 8 \
    --chroot "$WORK/empty" --control "$WORK/s3$mode.sock"
  unset QPOOL_STATUS_FILE
  wait_for "$WORK/s3$mode.log" "running 1 pool" 10
  nosess=""
  [ "$mode" = qpoold ] && nosess=1
  check "$mode: qp_close cancels 4 IncomingGets blocked on an empty pool" logrun "$WORK/c3$mode.log" \
    env QPOOL_NO_SESSION=$nosess "$LQP" cancel --control "$WORK/s3$mode.sock" --pool s3
  start_bg "c3$mode" "$QPOOLD" client --name c3 --target "127.0.0.1:$port3" --min-cap 8 --max-cap 8 \
    --min-interval 100ms --max-interval 100ms --chroot "$WORK/empty" --control "$WORK/c3$mode.sock"
  check "$mode: the streams that come later stay idle in the pool (8)" \
    wait_status "$WORK/s3$mode.status" s3 idle_streams 8 20
  check "$mode: ... none was taken for the cancelled gets (taken=$(status_of "$WORK/s3$mode.status" s3 streams_taken))" \
    test "$(status_of "$WORK/s3$mode.status" s3 streams_taken)" = 0
  kill -TERM "$(pid_of "c3$mode")" "$(pid_of "s3$mode")"
  wait "$(pid_of "c3$mode")" || true
  wait "$(pid_of "s3$mode")" || true
done

kill -TERM "$(pid_of cli2)" "$(pid_of srv2)"
wait "$(pid_of cli2)"; rc1=$?
wait "$(pid_of srv2)"; rc2=$?
check "both qpoold stop with exit code 0" test "$rc1" -eq 0 -a "$rc2" -eq 0
finish
