#!/usr/bin/env bash
# The include rules of docs/architecture.md, checked on the tree: shared/
# depends on no other folder; the engine knows nothing of the worker
# process; the worker process uses the engine through engine.h only; qpoold,
# libqpool and the tools never include the worker's headers.
set -u
cd "$(dirname "$0")/../.."
bad=0
rule() { # DESCRIPTION FILES... -- PATTERN
  local d=$1; shift
  local files=() pat
  while [ "$1" != -- ]; do files+=("$1"); shift; done
  pat=$2
  local hits
  hits=$(grep -nE "$pat" "${files[@]}" 2>/dev/null || true)
  if [ -n "$hits" ]; then
    echo "not ok - $d:"; echo "$hits" | sed 's/^/    /'; bad=1
  else
    echo "ok - $d"
  fi
}
engine=$(ls worker/*.c worker/*.h | grep -vE 'worker/(main|session|sandbox)\.[ch]$')
proc="worker/main.c worker/session.c worker/session.h worker/sandbox.c worker/sandbox.h"
rule "shared/ includes no other folder" shared/*.c shared/*.h -- \
  '#include "(worker|supervisor|lib|tools)/'
rule "the engine includes nothing of the worker process" $engine -- \
  '#include "worker/(session|sandbox)\.h"|#include <seccomp\.h>'
rule "the worker process uses the engine through engine.h only" $proc -- \
  '#include "worker/(internal|conn|stream|bufq|idmap|udp|tls|retry|stream_setup)\.h"'
rule "qpoold, libqpool and the tools never include the worker's headers" \
  supervisor/*.c supervisor/*.h lib/*.c lib/*.h tools/*.c -- '#include "worker/'
rule "libqpool and the tools never include qpoold's headers" \
  lib/*.c lib/*.h tools/*.c -- '#include "supervisor/'
rule "libqpool's attached.c does not call into embedded.c (no circle)" \
  lib/attached.c -- 'qp__embedded_'
exit $bad
