#!/usr/bin/env bash
# The README's quick start, executed literally (a doc test): the
# `scripts/run` line of the first shell block runs as written (on the build
# this test suite already made: QP_RUN_BUILD_DIR), and the curl lines it
# prints work through the tunnel; Ctrl-C (SIGINT) stops everything. The two
# config files pass `qpoold --check`; the C example compiles against
# libqpool. (`scripts/test` is the command running this test: not re-run.)
. "$(dirname "$0")/lib.sh"
readme="$QP_SRC/README.md"
block() { # N LANG: the Nth fenced block of LANG after "## Quick start"
  awk -v want="$1" -v lang="$2" '
    /^## Quick start/ { on = 1; next }
    on && /^## / { exit }
    on && $0 == "```" lang { n++; if (n == want) { grab = 1; next } }
    grab && /^```/ { exit }
    grab { print }' "$readme"
}
cmd=$(block 1 sh | grep '^scripts/run' | sed 's/ *#.*//')
check "the quick start's first block runs scripts/run ('$cmd')" test "$cmd" = "scripts/run"

# run it as the README says, in the source tree, on this suite's build
(cd "$QP_SRC" && export QP_RUN_BUILD_DIR="$QP_BIN" TMPDIR="$WORK" &&
  exec setsid bash -c "$cmd") >"$WORK/run.log" 2>&1 &
runpid=$!
PIDS+=($runpid)
wait_for "$WORK/run.log" "^  curl http://" 60 || true
curl1=$(grep -m1 '^  curl http://[^ ]*/$' "$WORK/run.log" | sed 's/^  //')
curl2=$(grep -m1 '^  curl -s http://.*sha256sum' "$WORK/run.log" | sed 's/^  //; s/ *#.*//')
want2=$(grep -m1 '^  curl -s http://.*sha256sum' "$WORK/run.log" | sed 's/.*# \([0-9a-f]*\)\.\.\..*/\1/')
echo "# printed: $curl1"
echo "# printed: $curl2 (want $want2...)"
check "scripts/run printed a curl line" test -n "$curl1"
check "... which fetches the page through the tunnel" \
  bash -c "$curl1 --max-time 20 -sS | grep -q 'Hello through qpool-tunnel'"
got2=$(bash -c "$curl2" 2>/dev/null | cut -c1-16)
check "... and the 1 MiB file arrives intact ($got2)" test -n "$want2" -a "$got2" = "$want2"
check "the live watch view shows the pool" wait_for "$WORK/run.log" "state=ready pool=embedded role=server " 10
kill -INT -- "-$runpid" 2>/dev/null || kill -INT "$runpid"
rc=0
wait "$runpid" || rc=$?
check "Ctrl-C stops it cleanly (exit $rc)" test "$rc" -eq 0
check "... saying so" grep -q "^stopped$" "$WORK/run.log"
left=$(pgrep -af "qpool-run\." || true)
check "... with nothing left running ('$left')" test -z "$left"

# the two qpoold configs validate
for n in 1 2; do
  block "$n" ini >"$WORK/conf$n.ini"
  check "qpoold config $n of the quick start passes --check" \
    logrun "$WORK/check$n.log" "$QPOOLD" --config "$WORK/conf$n.ini" --check
  sed 's/^/# /' "$WORK/check$n.log"
done

# the C API example compiles against libqpool
block 1 c >"$WORK/take.c"
san=""
grep -q '^QP_SANITIZE:BOOL=ON' "$QP_BIN/CMakeCache.txt" && san="-fsanitize=address,undefined"
check "the C example has about 20 lines ($(wc -l <"$WORK/take.c"))" test "$(wc -l <"$WORK/take.c")" -le 25
check "the C example compiles and links against libqpool" logrun "$WORK/cc.log" \
  cc $san -Wall -Werror -o "$WORK/take" "$WORK/take.c" -I"$QP_SRC/include" -L"$QP_BIN" -lqpool
check "... and, with no qpoold, says so clearly" \
  bash -c "QPOOL_CONTROL='$WORK/none.sock' LD_LIBRARY_PATH='$QP_BIN' '$WORK/take' 2>&1 | grep -q 'no qpoold is listening'"
finish
