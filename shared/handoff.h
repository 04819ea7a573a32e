/* Listener primitives shared by qpoold and the standalone engine: create a
 * connection's own connected socket (the listener itself: udp_listen.h),
 * answer unknown versions and refuse clients statelessly. */
#ifndef QP_SHARED_HANDOFF_H
#define QP_SHARED_HANDOFF_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "shared/quic_hdr.h"

/* A socket bound to the address of a listener from qp_udp_listen (it joins
 * the listener's SO_REUSEPORT group: same process, same uid) and connected
 * to peer: from then on the kernel delivers that 4-tuple to it alone.
 * Returns the fd (the caller owns it) or -errno. */
int qp_handoff_socket(const struct sockaddr *local, socklen_t local_len,
                      const struct sockaddr *peer, socklen_t peer_len);

#define QP_DRAIN_MAX 16     /* datagrams kept per side while draining */
#define QP_DRAIN_DGRAM 2048 /* larger ones are counted as dropped */

struct qp_dgram {
  uint8_t data[QP_DRAIN_DGRAM];
  size_t len;
  struct sockaddr_storage from;
  socklen_t fromlen;
};

/* What a new hand-off socket caught between its bind() and connect(). */
struct qp_drain {
  struct qp_dgram mine[QP_DRAIN_MAX];  /* from the peer: its connection's */
  struct qp_dgram other[QP_DRAIN_MAX]; /* other clients': re-classify them
                                          after the hand-off, not inside it */
  size_t nmine, nother, dropped;       /* dropped: over capacity or size */
};

/* Reads (without blocking) every datagram queued on fd into d. */
void qp_handoff_drain(int fd, const struct sockaddr *peer, struct qp_drain *d);

/* Token bucket for stateless answers (no amplification, no log floods). */
struct qp_ratelimit {
  double tokens, rate, burst;
  uint64_t ts_ns;
};
void qp_ratelimit_init(struct qp_ratelimit *r, double rate, double burst);
int qp_ratelimit_take(struct qp_ratelimit *r, uint64_t now_ns);

/* Sends a Version Negotiation packet offering QUIC v1 in answer to h.
 * Returns 0 or a negative errno. */
int qp_send_version_negotiation(int fd, const struct qp_quic_hdr *h,
                                const struct sockaddr *to, socklen_t tolen);
/* Refuses a client Initial without state: an Initial packet with
 * CONNECTION_CLOSE (CONNECTION_REFUSED) and the reason text. */
int qp_send_refusal(int fd, const struct qp_quic_hdr *h, const char *reason,
                    const struct sockaddr *to, socklen_t tolen);

#endif
