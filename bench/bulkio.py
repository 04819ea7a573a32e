#!/usr/bin/env python3
"""One end of a timed bulk transfer over a pooled stream: taken straight
from qpoold as a file descriptor (--take, what an application gets), or
over a command's stdin/stdout, e.g. `qpoolctl incoming` / `qpoolctl
outgoing` (used by bench/impaired.sh).

  bulkio.py send [--secs S] [--bytes N] [--max-secs M] [--stderr F]
                 (--take CONTROL POOL [ID] | -- CMD...)
  bulkio.py recv [--max-secs M] [--stderr F] (--take CONTROL POOL [ID] | -- CMD...)

--take takes a stream from qpoold's control socket CONTROL (with
examples/python/qpool_take.py): IncomingGet without ID, OutgoingGet with
it (8 hex digits); the stream's ID goes to F as one line. recv writes one
go byte into the stream (or CMD), half-closes it, and reads to EOF; it
prints "bytes B secs T" with T from the first byte to EOF (plus " timeout"
if M seconds passed first: B and T are then partial; CMD is then killed).
send waits for the go byte (so nothing is sent before the reader has taken
the stream), then writes zeros until N bytes or S seconds, whichever comes
first, half-closes, drains to EOF and prints "sent B secs T". CMD's stderr
goes to F (default: inherited). Every wait is bounded by --max-secs
(default 60); exit status 0 unless the stream could not be taken, CMD
could not be run, the go byte did not come, or a write failed.
"""
import argparse
import os
import select
import signal
import socket
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "examples", "python"))
import qpool_take  # noqa: E402  (the one client of the control protocol in Python)


class Cmd:
    """The stream behind a command's stdin (w) and stdout (r)."""

    def __init__(self, cmd, err):
        self.p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=err, bufsize=0)
        self.r, self.w = self.p.stdout.fileno(), self.p.stdin.fileno()

    def shut_write(self):
        try:
            self.p.stdin.close()
        except OSError:
            pass

    def finish(self, secs, killed=False):
        if not killed:
            try:
                self.p.wait(secs + 1)
                return
            except subprocess.TimeoutExpired:
                pass
        try:
            self.p.send_signal(signal.SIGTERM)
            self.p.wait(2)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()


class Taken:
    """A stream taken from qpoold: one socket both ways."""

    def __init__(self, control, pool, sid, timeout_s, err):
        sid, self.s = qpool_take.take(control, pool, None if sid is None else int(sid, 16),
                                      int(timeout_s * 1000))
        if err:
            err.write(b"%08x\n" % sid)
            err.flush()
        self.r = self.w = self.s.fileno()

    def shut_write(self):
        try:
            self.s.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def finish(self, secs, killed=False):
        self.s.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=("send", "recv"))
    ap.add_argument("--secs", type=float, default=0)
    ap.add_argument("--bytes", type=int, default=0)
    ap.add_argument("--max-secs", type=float, default=60)
    ap.add_argument("--stderr")
    ap.add_argument("--take", nargs="+", metavar="CONTROL POOL [ID]")
    argv = sys.argv[1:]
    cmd = []
    if "--" in argv:
        cut = argv.index("--")
        argv, cmd = argv[:cut], argv[cut + 1:]
    a = ap.parse_args(argv)
    if bool(cmd) == bool(a.take) or (a.take and len(a.take) not in (2, 3)):
        ap.error("one of --take CONTROL POOL [ID] or -- CMD...")
    err = open(a.stderr, "wb") if a.stderr else None
    deadline = time.monotonic() + a.max_secs
    try:
        if a.take:
            end = Taken(a.take[0], a.take[1], a.take[2] if len(a.take) == 3 else None,
                        a.max_secs, err)
        else:
            end = Cmd(cmd, err)
    except OSError as e:
        print("bulkio: %s" % (e.strerror or e), file=sys.stderr)
        return 1
    except (IndexError, KeyError, ValueError, struct.error) as e:
        print("bulkio: malformed answer from qpoold (%s)" % e, file=sys.stderr)
        return 1
    out, inp = end.r, end.w

    def left():
        return max(0.0, deadline - time.monotonic())

    def kill():
        end.finish(0, killed=True)

    if a.mode == "recv":
        try:
            os.write(inp, b"g")
        except OSError as e:
            print("bulkio: go byte: %s" % e, file=sys.stderr)
        end.shut_write()
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
        end.finish(left(), killed=timed_out)
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
    end.shut_write()
    print("sent %d secs %.3f" % (sent, secs), flush=True)
    while True:  # the reader half-closed after its go byte: drain to EOF
        r, _, _ = select.select([out], [], [], left())
        if not r or not os.read(out, 1 << 16):
            break
    end.finish(left())
    return rc


if __name__ == "__main__":
    sys.exit(main())
