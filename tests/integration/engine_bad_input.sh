#!/usr/bin/env bash
# Bad input never crashes the server pool and is counted or closed: garbage
# datagrams, truncated Initials, unknown versions, a peer that opens streams
# and never sends the setup byte, a peer that sends more than one byte (or a
# wrong byte) before the ID. The server keeps serving well-behaved clients.
# (Built with ASan+UBSan by scripts/test, so any memory error fails it.)
. "$(dirname "$0")/lib.sh"
port=$(free_port)
start_bg srv "$PEER" server --listen "127.0.0.1:$port" --max-cap 32 \
  --setup-timeout 1s --report 100 --timeout 90s
wait_for "$WORK/srv.log" "listening on" 10
last() { grep '^stats' "$WORK/srv.log" | tail -1; }

python3 - "$port" >"$WORK/garbage.log" <<'PY'
import os, socket, struct, sys, time
port = int(sys.argv[1])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
dst = ("127.0.0.1", port)
rnd = os.urandom
sent = vn = 0
for n in (0, 1, 2, 7, 20, 100, 600, 1199, 1200, 1500):   # random garbage
    for _ in range(20):
        s.sendto(rnd(n), dst); sent += 1
for n in range(1, 60):                                    # truncated Initial headers
    hdr = bytes([0xC3]) + struct.pack(">I", 1) + bytes([8]) + rnd(8) + bytes([8]) + rnd(8) + b"\x00\x41\x00"
    s.sendto(hdr[:n], dst); sent += 1
small = bytes([0xC3]) + struct.pack(">I", 1) + bytes([8]) + rnd(8) + bytes([0]) + b"\x00" + rnd(900)
for _ in range(20):                                       # v1 Initial < 1200 bytes
    s.sendto(small, dst); sent += 1
for _ in range(20):                                       # Initial-sized random body
    s.sendto(bytes([0xC3]) + struct.pack(">I", 1) + bytes([8]) + rnd(8) + bytes([8]) + rnd(8) + rnd(1300), dst); sent += 1
unk = bytes([0xC0]) + struct.pack(">I", 0x1a2a3a4a) + bytes([8]) + rnd(8) + bytes([8]) + rnd(8) + rnd(1200)
s.sendto(unk, dst); sent += 1                             # unknown version: expect VN
s.settimeout(2)
try:
    data, _ = s.recvfrom(2048)
    if data[0] & 0x80 and data[1:5] == b"\0\0\0\0" and b"\0\0\0\1" in data[5:]:
        vn = 1
except socket.timeout:
    pass
print(f"sent={sent} vn={vn}")
PY
cat "$WORK/garbage.log"
check "Version Negotiation (offering v1) answers an unknown version" grep -q "vn=1" "$WORK/garbage.log"
sleep 0.3
check "server survived the garbage" kill -0 "$(pid_of srv)"
d=$(stat_of "$(last)" dropped)
check "garbage and truncated datagrams were counted as dropped ($d)" test "$d" -ge 200

# a peer that opens streams and never sends the setup byte
logrun "$WORK/silent.log" "$PEER" client --target "127.0.0.1:$port" --min-cap 4 \
  --max-cap 4 --setup-silent --duration 2500ms --timeout 10s
sleep 0.2
f=$(stat_of "$(last)" failed)
check "silent streams timed out and were closed (failed=$f)" test "$f" -ge 4
check "... and were never given an ID" test "$(stat_of "$(last)" created)" -eq 0

# more than one byte before the ID, and a wrong setup byte
logrun "$WORK/extra.log" "$PEER" client --target "127.0.0.1:$port" --min-cap 3 \
  --max-cap 3 --setup-payload 0000 --duration 1s --timeout 10s
logrun "$WORK/wrong.log" "$PEER" client --target "127.0.0.1:$port" --min-cap 3 \
  --max-cap 3 --setup-payload 07 --duration 1s --timeout 10s
sleep 0.2
e=$(stat_of "$(last)" setup_errors)
check "protocol violations were counted (setup_errors=$e)" test "$e" -ge 6
check "the misbehaving clients got no stream" \
  grep -q "^final.* created=0 " "$WORK/extra.log"
check "... (wrong byte either)" grep -q "^final.* created=0 " "$WORK/wrong.log"

# the server still serves a well-behaved client
check "a good client still gets its streams" logrun "$WORK/good.log" \
  "$PEER" client --target "127.0.0.1:$port" --min-cap 4 --max-cap 4 \
  --wait-active 4 --timeout 20s
check "server is still alive" kill -0 "$(pid_of srv)"
kill -TERM "$(pid_of srv)"
wait "$(pid_of srv)"
check "server exits cleanly on SIGTERM (ASan/LSan clean)" test $? -eq 0
finish
