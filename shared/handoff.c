/* Listener primitives for the hand-off of QUIC connections (handoff.h). */
#include "shared/handoff.h"

#include "shared/addr.h"
#include "shared/udp_listen.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>
#include <gnutls/crypto.h>
#include <ngtcp2/ngtcp2.h>
#include <ngtcp2/ngtcp2_crypto.h>

int qp_handoff_socket(const struct sockaddr *local, socklen_t local_len,
                      const struct sockaddr *peer, socklen_t peer_len) {
  if (local->sa_family != peer->sa_family)
    return -EAFNOSUPPORT;
  int fd = qp_udp_group_socket(peer->sa_family, 0);
  if (fd < 0)
    return fd;
  int rc = 0;
  if (bind(fd, local, local_len) < 0 || connect(fd, peer, peer_len) < 0)
    rc = -errno;
  if (rc < 0) {
    close(fd);
    return rc;
  }
  return fd;
}

void qp_handoff_drain(int fd, const struct sockaddr *peer, struct qp_drain *d) {
  d->nmine = d->nother = d->dropped = 0;
  for (int i = 0; i < 4 * QP_DRAIN_MAX; i++) {
    struct qp_dgram tmp;
    tmp.fromlen = sizeof(tmp.from);
    ssize_t n =
        recvfrom(fd, tmp.data, sizeof(tmp.data), MSG_DONTWAIT | MSG_TRUNC,
                 (struct sockaddr *)&tmp.from, &tmp.fromlen);
    if (n < 0)
      break;
    int is_peer = qp_addr_equal((struct sockaddr *)&tmp.from, peer);
    struct qp_dgram *slot =
        (size_t)n > sizeof(tmp.data)           ? NULL
        : is_peer && d->nmine < QP_DRAIN_MAX   ? &d->mine[d->nmine++]
        : !is_peer && d->nother < QP_DRAIN_MAX ? &d->other[d->nother++]
                                               : NULL;
    if (!slot) {
      d->dropped++;
      continue;
    }
    tmp.len = (size_t)n;
    memcpy(slot, &tmp, sizeof(tmp));
  }
}

void qp_ratelimit_init(struct qp_ratelimit *r, double rate, double burst) {
  r->tokens = burst;
  r->rate = rate;
  r->burst = burst;
  r->ts_ns = 0;
}

int qp_ratelimit_take(struct qp_ratelimit *r, uint64_t now_ns) {
  if (r->ts_ns)
    r->tokens += (double)(now_ns - r->ts_ns) / 1e9 * r->rate;
  r->ts_ns = now_ns;
  if (r->tokens > r->burst)
    r->tokens = r->burst;
  if (r->tokens < 1.0)
    return 0;
  r->tokens -= 1.0;
  return 1;
}

static int send_to(int fd, const uint8_t *buf, ngtcp2_ssize n,
                   const struct sockaddr *to, socklen_t tolen) {
  if (n <= 0)
    return -EINVAL;
  return sendto(fd, buf, (size_t)n, MSG_DONTWAIT, to, tolen) < 0 ? -errno : 0;
}

int qp_send_version_negotiation(int fd, const struct qp_quic_hdr *h,
                                const struct sockaddr *to, socklen_t tolen) {
  uint8_t buf[600];
  const uint32_t sv[] = {NGTCP2_PROTO_VER_V1};
  uint8_t rnd = 0;
  (void)gnutls_rnd(GNUTLS_RND_NONCE, &rnd, 1);
  ngtcp2_ssize n = ngtcp2_pkt_write_version_negotiation(
      buf, sizeof(buf), rnd, h->scid, h->scidlen, h->dcid, h->dcidlen, sv, 1);
  return send_to(fd, buf, n, to, tolen);
}

int qp_send_refusal(int fd, const struct qp_quic_hdr *h, const char *reason,
                    const struct sockaddr *to, socklen_t tolen) {
  uint8_t buf[512];
  ngtcp2_cid dcid, scid;
  if (h->scidlen > NGTCP2_MAX_CIDLEN || h->dcidlen > NGTCP2_MAX_CIDLEN)
    return -EINVAL;
  ngtcp2_cid_init(&dcid, h->scid, h->scidlen);
  ngtcp2_cid_init(&scid, h->dcid, h->dcidlen);
  ngtcp2_ssize n = ngtcp2_crypto_write_connection_close(
      buf, sizeof(buf), h->version, &dcid, &scid, NGTCP2_CONNECTION_REFUSED,
      (const uint8_t *)reason, strlen(reason));
  return send_to(fd, buf, n, to, tolen);
}
