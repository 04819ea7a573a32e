#!/usr/bin/env python3
"""Take a stream from a running qpoold and use it - Python standard library only.

The control protocol (proto/control.proto) is tiny, so the few protobuf
fields it needs are encoded here by hand. The stream arrives as a file
descriptor (SCM_RIGHTS); from then on it is an ordinary socket.

  qpool_take.py --control /run/qpool/qpoold.sock --pool edge incoming
  qpool_take.py --control ... --pool up outgoing 0a1b2c3d
Then it sends stdin to the stream and the stream to stdout (half-close on
stdin EOF), like qpoolctl incoming/outgoing.
"""
import argparse
import array
import os
import select
import socket
import struct
import sys

REQUEST, RESPONSE = 1, 2
OP_INCOMING_GET, OP_OUTGOING_GET = 1, 2


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def field(num, wire, value):
    key = varint(num << 3 | wire)
    if wire == 0:
        return key + varint(value)
    return key + varint(len(value)) + value


def parse(buf):
    """Decodes the varint and length-delimited fields of a message."""
    fields, i = {}, 0
    while i < len(buf):
        key, i = read_varint(buf, i)
        num, wire = key >> 3, key & 7
        if wire == 0:
            val, i = read_varint(buf, i)
        elif wire == 2:
            n, i = read_varint(buf, i)
            val, i = buf[i:i + n], i + n
        else:
            raise ValueError("unexpected wire type %d" % wire)
        fields.setdefault(num, []).append(val)
    return fields


def read_varint(buf, i):
    shift = val = 0
    while True:
        b = buf[i]
        i += 1
        val |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return val, i


def take(control, pool, stream_id=None, timeout_ms=30000):
    """Returns (id, socket) or raises OSError with qpoold's sentence."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    s.connect(control)
    op = OP_INCOMING_GET if stream_id is None else OP_OUTGOING_GET
    msg = field(1, 0, 1) + field(2, 0, op) + field(3, 2, pool.encode())
    if stream_id is not None:
        msg += field(4, 0, stream_id)
    msg += field(5, 0, timeout_ms)
    s.send(struct.pack(">IH", len(msg), REQUEST) + msg)
    fds = array.array("i")
    data, anc, _, _ = s.recvmsg(65536, socket.CMSG_SPACE(fds.itemsize))
    for level, kind, payload in anc:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(payload[:fds.itemsize])
    s.close()
    length, kind = struct.unpack(">IH", data[:6])
    if kind != RESPONSE or length != len(data) - 6:
        raise OSError("malformed answer from qpoold")
    f = parse(data[6:])
    code = f.get(2, [0])[0]
    if code:
        text = f.get(3, [b""])[0].decode(errors="replace")
        raise OSError(code, text or os.strerror(code))
    return f[4][0], socket.socket(fileno=fds[0])


def relay(stream):
    """stdin -> stream (shutdown on EOF), stream -> stdout, until both end."""
    inp, out = sys.stdin.buffer.raw, sys.stdout.buffer
    open_in, open_out = True, True
    while open_in or open_out:
        r, _, _ = select.select(([inp] if open_in else []) + ([stream] if open_out else []), [], [])
        if inp in r:
            chunk = os.read(inp.fileno(), 65536)
            if chunk:
                stream.sendall(chunk)
            else:
                stream.shutdown(socket.SHUT_WR)
                open_in = False
        if stream in r:
            chunk = stream.recv(65536)
            if chunk:
                out.write(chunk)
                out.flush()
            else:
                open_out = False


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--control", default=os.environ.get("QPOOL_CONTROL", "/run/qpool/qpoold.sock"))
    ap.add_argument("--pool", required=True)
    ap.add_argument("--timeout", type=int, default=30000, help="milliseconds")
    ap.add_argument("op", choices=["incoming", "outgoing"])
    ap.add_argument("id", nargs="?", help="8 hex digits (outgoing)")
    a = ap.parse_args()
    if a.op == "outgoing" and not a.id:
        ap.error("outgoing needs the stream ID")
    try:
        sid, stream = take(a.control, a.pool, int(a.id, 16) if a.id else None, a.timeout)
    except OSError as e:
        print("qpool_take: %s" % (e.strerror or e), file=sys.stderr)
        return 1
    print("%08x" % sid, file=sys.stderr, flush=True)
    relay(stream)
    return 0


if __name__ == "__main__":
    sys.exit(main())
