#!/usr/bin/env python3
"""One end of a timed bulk transfer over a command's stdin/stdout, e.g. a
stream taken with `qpoolctl incoming` / `qpoolctl outgoing` (used by
bench/impaired.sh).

  bulkio.py send [--secs S] [--bytes N] [--max-secs M] [--stderr F] -- CMD...
  bulkio.py recv [--max-secs M] [--stderr F] -- CMD...

recv writes one go byte into CMD, half-closes it, and reads CMD's output to
EOF; it prints "bytes B secs T" with T from the first byte to EOF (plus
" timeout" if M seconds passed first: B and T are then partial; CMD is then
killed). send waits for the go byte from CMD (so nothing is sent before the
reader has taken the stream), then writes zeros until N bytes or S seconds,
whichever comes first, half-closes, drains CMD's output and prints
"sent B secs T". CMD's stderr goes to F (default: inherited). Every wait is
bounded by --max-secs (default 60); exit status 0 unless CMD could not be
run, the go byte did not come, or a write failed.
"""
import argparse
import os
import select
import signal
import subprocess
import sys
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=("send", "recv"))
    ap.add_argument("--secs", type=float, default=0)
    ap.add_argument("--bytes", type=int, default=0)
    ap.add_argument("--max-secs", type=float, default=60)
    ap.add_argument("--stderr")
    argv = sys.argv[1:]
    if "--" not in argv or argv.index("--") == len(argv) - 1:
        ap.error("no command: ... -- CMD...")
    cut = argv.index("--")
    a = ap.parse_args(argv[:cut])
    cmd = argv[cut + 1:]
    err = open(a.stderr, "wb") if a.stderr else None
    p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=err, bufsize=0)
    deadline = time.monotonic() + a.max_secs
    out = p.stdout.fileno()
    inp = p.stdin.fileno()

    def left():
        return max(0.0, deadline - time.monotonic())

    def kill():
        try:
            p.send_signal(signal.SIGTERM)
            p.wait(2)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()

    if a.mode == "recv":
        try:
            os.write(inp, b"g")
        except OSError as e:
            print("bulkio: go byte: %s" % e, file=sys.stderr)
        p.stdin.close()
        got, first, timed_out = 0, None, False
        while True:
            r, _, _ = select.select([out], [], [], left())
            if not r:
                timed_out = True
                break
            b = os.read(out, 1 << 20)
            if not b:
                break
            if first is None:
                first = time.monotonic()
            got += len(b)
        secs = time.monotonic() - first if first is not None else 0.0
        print("bytes %d secs %.3f%s" % (got, secs, " timeout" if timed_out else ""),
              flush=True)
        if timed_out:
            kill()
        else:
            try:
                p.wait(left() + 1)
            except subprocess.TimeoutExpired:
                kill()
        return 0

    # send: wait for the go byte
    r, _, _ = select.select([out], [], [], left())
    if not r or not os.read(out, 1):
        print("bulkio: no go byte from the reader within %.0f s" % a.max_secs,
              file=sys.stderr)
        kill()
        return 1
    os.set_blocking(inp, False)
    buf = bytes(1 << 18)
    sent = 0
    start = time.monotonic()
    rc = 0
    try:
        while a.bytes == 0 or sent < a.bytes:
            if a.secs and time.monotonic() - start >= a.secs:
                break
            if time.monotonic() >= deadline:
                break
            n = len(buf) if a.bytes == 0 else min(len(buf), a.bytes - sent)
            _, w, _ = select.select([], [inp], [], min(left(), 0.5))
            if not w:
                continue
            try:
                sent += os.write(inp, buf[:n])
            except BlockingIOError:
                pass
    except OSError as e:
        print("bulkio: write after %d bytes: %s" % (sent, e), file=sys.stderr)
        rc = 1
    secs = time.monotonic() - start
    try:
        p.stdin.close()
    except OSError:
        pass
    print("sent %d secs %.3f" % (sent, secs), flush=True)
    while True:  # the reader half-closed after its go byte: drain to EOF
        r, _, _ = select.select([out], [], [], left())
        if not r or not os.read(out, 1 << 16):
            break
    try:
        p.wait(left() + 1)
    except subprocess.TimeoutExpired:
        kill()
    return rc


if __name__ == "__main__":
    sys.exit(main())
