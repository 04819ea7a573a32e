#!/usr/bin/env bash
# `cmake --install` puts binaries, library, header, pkg-config file, CMake
# package and man pages in place, and a program builds against the installed
# library both with pkg-config and with find_package(qpool), and runs.
. "$(dirname "$0")/lib.sh"
root="$WORK/root"
check "cmake --install succeeds" logrun "$WORK/install.log" cmake --install "$QP_BIN" --prefix "$root"
for f in sbin/qpoold sbin/qpool-worker sbin/qpoolctl bin/qpool-tunnel include/qpool.h \
  lib/pkgconfig/qpool.pc lib/cmake/qpool/qpoolConfig.cmake share/man/man8/qpoolctl.8 \
  share/man/man8/qpoold.8 share/man/man3/qpool.3 lib/systemd/system/qpoold.service; do
  check "installed: $f" test -e "$root/$f"
done
check "installed: libqpool.so" bash -c "ls '$root'/lib/libqpool.so* >/dev/null"
# the unit names the configured sbin directory; point it at this install
sbindir=$(sed -n 's/^ExecStart=\(.*\)\/qpoold .*/\1/p' "$root/lib/systemd/system/qpoold.service")
sed "s|$sbindir/qpoold|$root/sbin/qpoold|g" "$root/lib/systemd/system/qpoold.service" >"$WORK/qpoold.service"
if command -v systemd-analyze >/dev/null; then
  check "systemd-analyze verify accepts the unit" logrun "$WORK/verify.log" \
    systemd-analyze verify --man=no "$WORK/qpoold.service"
  sed 's/^/# /' "$WORK/verify.log"
fi
check "the unit is Type=notify and reloads with SIGHUP" \
  bash -c "grep -q '^Type=notify' '$WORK/qpoold.service' && grep -q 'kill -HUP' '$WORK/qpoold.service'"
san=""
grep -q '^QP_SANITIZE:BOOL=ON' "$QP_BIN/CMakeCache.txt" && san="-fsanitize=address,undefined"
cat >"$WORK/demo.c" <<'C'
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <qpool.h>
int main(int argc, char **argv) {
  qp_pool *p;
  int rc = qp_pool_attach(argc > 1 ? argv[1] : "/nonexistent.sock", "x", &p);
  char hex[9];
  qp_id_format(0x0a1b2c3du, hex);
  printf("attach: %s; id %s\n", qp_strerror(rc), hex);
  return rc == -ECONNREFUSED && strcmp(hex, "0a1b2c3d") == 0 ? 0 : 1;
}
C
export PKG_CONFIG_PATH="$root/lib/pkgconfig" LD_LIBRARY_PATH="$root/lib"
check "pkg-config knows qpool" pkg-config --exists qpool
check "a program builds with pkg-config" logrun "$WORK/cc.log" \
  cc $san -o "$WORK/demo" "$WORK/demo.c" $(pkg-config --cflags --libs qpool)
check "... and runs against the installed library" logrun "$WORK/demo.log" "$WORK/demo" "$WORK/none.sock"
mkdir -p "$WORK/cm"
cat >"$WORK/cm/CMakeLists.txt" <<CM
cmake_minimum_required(VERSION 3.20)
project(demo C)
find_package(qpool REQUIRED)
add_executable(demo $WORK/demo.c)
target_compile_options(demo PRIVATE $san)
target_link_options(demo PRIVATE $san)
target_link_libraries(demo PRIVATE qpool::qpool)
CM
check "a CMake project finds it with find_package(qpool)" logrun "$WORK/cm.log" \
  bash -c "cmake -S '$WORK/cm' -B '$WORK/cm/b' -DCMAKE_PREFIX_PATH='$root' && cmake --build '$WORK/cm/b'"
check "... and runs" logrun "$WORK/demo2.log" "$WORK/cm/b/demo" "$WORK/none.sock"

# embedded mode from the installed files: the library finds the installed
# qpoold relative to itself (../sbin), which finds its qpool-worker
cat >"$WORK/emb.c" <<'C'
#include <stdio.h>
#include <unistd.h>
#include <qpool.h>
int main(int argc, char **argv) {
  qp_pool *p;
  int rc = qp_server_pool_new(4, "127.0.0.1", NULL, argv[1], 0, &p);
  if (rc == 0)
    rc = qp_server_manager(p);
  int ready = 0;
  for (int i = 0; rc == 0 && i < 100 && (ready = qp_ready(p)) != 1; i++)
    usleep(50 * 1000);
  printf("embedded: rc=%d (%s) ready=%d\n", rc, qp_strerror(rc), ready);
  if (rc == 0)
    qp_close(p);
  return rc == 0 && ready == 1 ? 0 : 1;
}
C
check "an embedded-mode program builds against the installed library" logrun "$WORK/cc2.log" \
  cc $san -o "$WORK/emb" "$WORK/emb.c" $(pkg-config --cflags --libs qpool)
port=$(free_port)
mkdir -p "$WORK/rt"
check "... and runs its private qpoold from the installed sbin directory" logrun "$WORK/emb.log" \
  env -u QPOOL_QPOOLD XDG_RUNTIME_DIR="$WORK/rt" "$WORK/emb" "127.0.0.1:$port"
sed 's/^/# /' "$WORK/emb.log"
finish
