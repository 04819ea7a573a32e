#!/usr/bin/env bash
# The request tables at the qpoold <-> worker boundary (shared/msg_rules.h),
# every message type in every state, from both sides, with real processes:
#  - a real qpool-worker gets each supervisor -> worker message (and the
#    other direction's, and an unknown type), with and without an fd, while
#    configuring and while running in its sandbox: it serves exactly what
#    the protocol allows there and ends on anything else (msg-matrix);
#  - a real qpoold runs a fake worker (msg-matrix as QPOOL_WORKER) that
#    sends one message, before or after its Hello, with or without an fd:
#    qpoold kills it for a message its table does not allow, naming the
#    rule, and lets anything the table allows through to its handler
#    (which may still refuse the content: a pool the worker does not run).
. "$(dirname "$0")/lib.sh"

# ---- the worker's table ----
check "a real worker serves exactly the allowed (message, state) pairs" \
  logrun "$WORK/worker-matrix.log" "$QP_BIN/tests/msg-matrix" worker \
  "$QP_BIN/qpool-worker" "$WORK"
grep -E '^(ok|not ok) - ' "$WORK/worker-matrix.log" | sed 's/^/# /'
tail -1 "$WORK/worker-matrix.log"

# ---- qpoold's table ----
# refusals of the table, in the words of shared/msg_rules.c
RULE='(not allowed in this state|with a file descriptor|without its file descriptor|of an unknown type|not enabled here|a second time)'
# case NAME TYPE HELLO FD PROBES EXPECT(served|refused)
case_() {
  local name=$1 type=$2 hello=$3 fd=$4 probes=$5 want=$6 port log
  port=$(free_port)
  log="$WORK/q-$type-$hello-$fd-$probes.log"
  MSGM_TYPE=$type MSGM_HELLO=$hello MSGM_FD=$fd \
    QPOOL_ALLOW_PROBES=$probes QPOOL_WORKER="$QP_BIN/tests/msg-matrix" \
    "$QPOOLD" server --name s --listen "127.0.0.1:$port" \
    --chroot "$WORK/empty" --control "$WORK/q.sock" >"$log" 2>&1 &
  local qpid=$!
  # the first "killing it" line decides: a rule against this message
  # (refused), or anything else, such as the fake worker's follow-up of an
  # unknown type or the handler refusing the content (served)
  local i got=none line
  for ((i = 0; i < 200; i++)); do
    line=$(grep -m1 -E "worker 0 \(pid [0-9]+\): .*: killing it" "$log" || true)
    if [ -n "$line" ]; then
      if echo "$line" | grep -qE "\(type $type\) .*$RULE"; then got=refused; else got=served; fi
      break
    fi
    sleep 0.05
  done
  kill -KILL "$qpid" 2>/dev/null # its worker dies with it (PDEATHSIG)
  wait "$qpid" 2>/dev/null || true
  local what="qpoold: $name$([ "$hello" = 1 ] && echo " after" || echo " before") Hello$([ "$fd" = 1 ] && echo ", with an fd")$([ "$probes" = 1 ] && echo ", probes on") -> $got"
  if [ "$got" = "$want" ]; then ok "$what"; else
    not_ok "$what (wanted $want)"
    sed 's/^/#   /' "$log"
  fi
}
mkdir -p "$WORK/empty"
# Hello: first, once, no fd
case_ Hello 201 0 0 0 served
case_ Hello 201 1 0 0 refused
case_ Hello 201 0 1 0 refused
# the rest: only after Hello; only GetResult may carry an fd
for t in "DialRequest 202" "Report 203" "Bye 205" "GetResult 206" "ConnInfoResult 207"; do
  set -- $t
  case_ "$1" "$2" 0 0 0 refused
  case_ "$1" "$2" 1 0 0 served
  if [ "$1" = GetResult ]; then
    case_ "$1" "$2" 1 1 0 served
  else
    case_ "$1" "$2" 1 1 0 refused
  fi
done
# probe results: only when the tests enabled probes
case_ ProbeResult 204 1 0 0 refused
case_ ProbeResult 204 1 0 1 served
# the other direction's message, and an unknown type
case_ "PoolAdd (the other direction)" 101 1 0 0 refused
case_ "an unknown type" 250 1 0 0 refused
case_ "an unknown type" 250 0 0 0 refused
finish
