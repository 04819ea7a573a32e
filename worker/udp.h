/* Datagram I/O on a connected, non-blocking UDP socket: UDP GSO on send,
 * UDP GRO + recvmmsg on receive. */
#ifndef QP_WORKER_UDP_H
#define QP_WORKER_UDP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#define WRK_UDP_RX_BATCH 8
#define WRK_UDP_RX_BUFSZ 65536
#define WRK_GSO_MAX_SEGS 64

/* Makes fd non-blocking, enables GRO when the kernel has it and raises the
 * socket buffers. Returns 0 or a negative errno. */
int wrk_udp_setup(int fd);
/* Largest UDP payload for the socket's current route (from IP_MTU), or
 * 1252 if unknown. */
size_t wrk_udp_max_payload(int fd);

/* Sends len bytes as segments of segsize (the last may be shorter) in one
 * sendmsg with UDP_SEGMENT (or one datagram if len <= segsize). Returns 0,
 * -EAGAIN (nothing sent, try when writable), or another negative errno. */
int wrk_udp_send(int fd, const uint8_t *buf, size_t len, size_t segsize);

struct wrk_udp_rx {
  uint8_t buf[WRK_UDP_RX_BATCH][WRK_UDP_RX_BUFSZ];
  struct sockaddr_storage src[WRK_UDP_RX_BATCH];
  char ctl[WRK_UDP_RX_BATCH][64];
};

/* Called for each received datagram (GRO super-buffers are split first). */
typedef int (*wrk_udp_pkt_cb)(void *arg, const uint8_t *pkt, size_t len,
                              const struct sockaddr *src, socklen_t srclen);

/* Reads up to `rounds` recvmmsg batches. Returns the number of datagrams
 * delivered (0 when none were waiting), or the first negative value a
 * callback returned (delivery stops there), or a negative errno. */
int wrk_udp_recv(int fd, struct wrk_udp_rx *rx, int rounds, wrk_udp_pkt_cb cb,
                 void *arg);

/* Reads and clears the socket's pending error (SO_ERROR): what an ICMP
 * message (port or host unreachable) left on a connected socket, which
 * libuv reports only as POLLERR (UV_EBADF). Returns 0 (none) or a negative
 * errno. */
int wrk_udp_socket_error(int fd);
/* 1 if err (negative errno) is what an ICMP error on a connected UDP socket
 * gives (refused, host or network unreachable), else 0. */
int wrk_udp_is_unreachable(int err);
/* The cause of a failed connection attempt in words, for a negative errno
 * from the socket: "connection refused (no server at that address)", "host
 * unreachable", ... Never NULL; static or strerror's string. */
const char *wrk_udp_error_text(int err);

#endif
