/* UDP listeners of server pools that no other server can share: the bind is
 * exclusive, and only this process's hand-off sockets join it afterwards. */
#ifndef QP_SHARED_UDP_LISTEN_H
#define QP_SHARED_UDP_LISTEN_H

#include <stddef.h>
#include <sys/socket.h>

/* The listener of a server pool on sa: a non-blocking, CLOEXEC UDP socket
 * (IPv6: V6ONLY) bound WITHOUT SO_REUSEPORT or SO_REUSEADDR, so the bind
 * fails with EADDRINUSE while any socket of any program or user holds a
 * conflicting binding (the same address and port, or an overlapping one:
 * 0.0.0.0:P against 127.0.0.1:P); only once bound is SO_REUSEPORT set, which
 * lets sockets from qp_udp_group_socket (same effective uid) bind the same
 * address for the hand-off. Port 0 binds an ephemeral port.
 * Returns the fd (the caller owns it), or a negative errno with err (may be
 * NULL) set to "cannot listen on ADDR: reason"; for EADDRINUSE the reason
 * names the holder when /proc shows it. Nothing stays open on failure. */
int qp_udp_listen(const struct sockaddr *sa, socklen_t len, char *err,
                  size_t errlen);

/* An unbound UDP socket (SOCK_CLOEXEC | flags; IPv6: V6ONLY) with
 * SO_REUSEPORT, ready to bind the address of a listener from qp_udp_listen
 * (it joins that listener's group: the kernel allows it for the listener's
 * effective uid only). Returns the fd (the caller owns it) or -errno. */
int qp_udp_group_socket(int family, int flags);

/* Who holds a UDP binding that conflicts with sa (read from /proc/net/udp,
 * /proc/net/udp6 and, for the process, /proc/PID/fd): writes e.g. "held by
 * another qpool server: qpoold, pid 812, uid 0", or "127.0.0.1:4433
 * overlaps it, held by python3, pid 90, uid 1000", or "held by a socket of
 * uid 1000 (its process is not visible)" into buf. Returns 1, or 0 with buf
 * empty when no conflicting socket is visible. Blocking (reads /proc). */
int qp_udp_holder(const struct sockaddr *sa, char *buf, size_t len);

#endif
