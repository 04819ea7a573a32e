/* Server-pool listeners in qpoold: read datagrams, parse only the QUIC
 * invariant header, answer unknown versions, filter client IPs before any
 * handshake, and hand each allowed new connection (a connected socket plus
 * its first datagrams) to the pool's worker; forward stragglers. The
 * supervisor never parses TLS. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>

#include <gnutls/crypto.h>
#include <ngtcp2/ngtcp2.h>
#include <ngtcp2/ngtcp2_crypto.h>

#include "shared/addr.h"
#include "shared/log.h"
#include "shared/quic_hdr.h"
#include "shared/udp_listen.h"
#include "supervisor/sup.h"

static void on_datagram(struct sup *s, struct sup_pool *p, const uint8_t *pkt,
                        size_t len, const struct sockaddr *src,
                        socklen_t srclen);

static struct sup_peer *recent_find(struct sup_pool *p,
                                    const struct sockaddr *src, uint64_t now) {
  for (unsigned i = 0; i < SUP_RECENT_PEERS; i++) {
    struct sup_peer *r = &p->recent[i];
    if (r->len && r->until_ns > now &&
        qp_addr_equal((struct sockaddr *)&r->addr, src))
      return r;
  }
  return NULL;
}

static void forward_straggler(struct sup *s, struct sup_pool *p,
                              const uint8_t *pkt, size_t len,
                              const struct sockaddr *src, socklen_t srclen) {
  Qpool__Datagram m = QPOOL__DATAGRAM__INIT;
  m.pool = (char *)p->cfg.name;
  m.peer.data = (uint8_t *)src;
  m.peer.len = srclen;
  m.data.data = (uint8_t *)pkt;
  m.data.len = len;
  sup_worker_send(s, s->workers[p->worker], QPOOL__MSG_TYPE__MSG_DATAGRAM,
                  &m.base, -1);
}

/* Stragglers of this peer that still reach the listener go to its worker. */
static void remember_peer(struct sup_pool *p, const struct sockaddr *src,
                          socklen_t srclen) {
  struct sup_peer *r = &p->recent[p->recent_next++ % SUP_RECENT_PEERS];
  memcpy(&r->addr, src, srclen);
  r->len = srclen;
  r->until_ns = uv_hrtime() + SUP_STRAGGLER_NS;
  p->handoffs++;
}

static void hand_off(struct sup *s, struct sup_pool *p, const uint8_t *pkt,
                     size_t len, const struct sockaddr *src, socklen_t srclen) {
  char a[QP_ADDR_STRLEN];
  struct sup_worker *w = s->workers[p->worker];
  if (w->pid <= 0) { /* restarting: the client retransmits its Initial */
    p->dropped++;
    return;
  }
  int fd = qp_handoff_socket((const struct sockaddr *)&p->cfg.addr,
                             p->cfg.addr_len, src, srclen);
  if (fd < 0) {
    qp_warn("pool %s: cannot hand off %s: %s", p->cfg.name,
            qp_addr_format(src, a, sizeof(a)), strerror(-fd));
    p->dropped++;
    return;
  }
  /* datagrams caught between bind() and connect(): keep the peer's; the
   * others are re-classified after this hand-off (not nested in it) */
  static struct qp_drain d; /* ~70 KB: not on the stack */
  static ProtobufCBinaryData dg[QP_DRAIN_MAX + 1];
  qp_handoff_drain(fd, src, &d);
  p->dropped += d.dropped;
  size_t n = 0;
  dg[n].data = (uint8_t *)pkt;
  dg[n++].len = len;
  for (size_t i = 0; i < d.nmine; i++, n++) {
    dg[n].data = d.mine[i].data;
    dg[n].len = d.mine[i].len;
  }
  size_t nother = d.nother;
  struct qp_dgram *other = malloc(nother * sizeof(*other) + 1);
  if (other)
    memcpy(other, d.other, nother * sizeof(*other));
  else
    nother = 0;
  struct sockaddr_storage local;
  socklen_t ll = sizeof(local);
  getsockname(fd, (struct sockaddr *)&local, &ll);
  Qpool__HandOff m = QPOOL__HAND_OFF__INIT;
  m.pool = (char *)p->cfg.name;
  m.peer.data = (uint8_t *)src;
  m.peer.len = srclen;
  m.local.data = (uint8_t *)&local;
  m.local.len = ll;
  m.n_datagrams = n;
  m.datagrams = dg;
  int sent = sup_worker_send(s, w, QPOOL__MSG_TYPE__MSG_HANDOFF, &m.base, fd);
  close(fd);    /* the worker has its own copy now (or the queue has one) */
  if (sent < 0) /* worker swamped: the client retransmits its Initial */
    p->dropped++;
  else {
    remember_peer(p, src, srclen);
    qp_debug("pool %s: handed %s to worker %d", p->cfg.name,
             qp_addr_format(src, a, sizeof(a)), w->slot);
  }
  for (size_t i = 0; i < nother; i++) /* may hand off again: reuses d */
    on_datagram(s, p, other[i].data, other[i].len,
                (struct sockaddr *)&other[i].from, other[i].fromlen);
  free(other);
}

/* A 1-RTT packet reached the listener: its connection's socket is gone (the
 * worker died or closed it). Answer with a Stateless Reset (RFC 9000 10.3)
 * whose token the worker derived from the same key and connection ID, so
 * the peer drops the connection now and dials again, instead of waiting for
 * its idle timeout. Smaller than the packet that triggered it (no loops),
 * rate-limited (no amplification). */
static void send_reset(struct sup_pool *p, const struct qp_quic_hdr *h,
                       size_t len, const struct sockaddr *src, socklen_t srclen,
                       uint64_t now) {
  p->dropped++;
  size_t out = len - 1 < 41 ? len - 1 : 41;
  if (len < 1 ||
      out < 1 + NGTCP2_MIN_STATELESS_RESET_RANDLEN +
                NGTCP2_STATELESS_RESET_TOKENLEN ||
      !qp_ratelimit_take(&p->refusals, now))
    return;
  ngtcp2_cid cid;
  ngtcp2_cid_init(&cid, h->dcid, h->dcidlen);
  uint8_t token[NGTCP2_STATELESS_RESET_TOKENLEN];
  uint8_t rnd[41], pkt[41];
  size_t rlen = out - 1 - NGTCP2_STATELESS_RESET_TOKENLEN;
  if (ngtcp2_crypto_generate_stateless_reset_token(
          token, p->reset_secret, sizeof(p->reset_secret), &cid) != 0 ||
      gnutls_rnd(GNUTLS_RND_NONCE, rnd, rlen) < 0)
    return;
  ngtcp2_ssize n =
      ngtcp2_pkt_write_stateless_reset(pkt, sizeof(pkt), token, rnd, rlen);
  if (n > 0 && sendto(p->lfd, pkt, (size_t)n, MSG_DONTWAIT, src, srclen) == n)
    p->resets++;
}

static void on_datagram(struct sup *s, struct sup_pool *p, const uint8_t *pkt,
                        size_t len, const struct sockaddr *src,
                        socklen_t srclen) {
  struct qp_quic_hdr h;
  enum qp_drop_reason why;
  char a[QP_ADDR_STRLEN];
  enum qp_pkt_class cls = qp_quic_classify(pkt, len, QP_CID_LEN, &h, &why);
  if (cls == QP_PKT_DROP) {
    p->dropped++;
    qp_debug("pool %s: dropped %zu bytes from %s: %s", p->cfg.name, len,
             qp_addr_format(src, a, sizeof(a)), qp_drop_reason_str(why));
    return;
  }
  if (cls == QP_PKT_NEED_VN) {
    if (qp_ratelimit_take(&p->refusals, uv_hrtime())) {
      p->vn_sent++;
      (void)qp_send_version_negotiation(p->lfd, &h, src, srclen);
    }
    return;
  }
  uint64_t now = uv_hrtime();
  if (recent_find(p, src, now)) {
    forward_straggler(s, p, pkt, len, src, srclen);
    return;
  }
  if (cls == QP_PKT_SHORT) { /* a connection no worker owns (any more) */
    send_reset(p, &h, len, src, srclen, now);
    return;
  }
  if (cls != QP_PKT_INITIAL) {
    p->dropped++;
    return;
  }
  if (!qp_ipfilter_allows(&p->cfg.client_ip, src)) {
    p->rejected_ip++;
    if (qp_ratelimit_take(&p->refusals, now)) {
      qp_info("pool %s: refused %s: unauthorized IP", p->cfg.name,
              qp_addr_format(src, a, sizeof(a)));
      (void)qp_send_refusal(p->lfd, &h, "unauthorized IP", src, srclen);
    }
    return;
  }
  hand_off(s, p, pkt, len, src, srclen);
}

static void on_listener(uv_poll_t *h, int status, int events) {
  struct sup_pool *p = h->data;
  struct sup *s = h->loop->data;
  (void)events;
  if (status < 0 || s->stopping)
    return;
  uint8_t buf[65536];
  for (int i = 0; i < 256; i++) {
    struct sockaddr_storage src;
    socklen_t sl = sizeof(src);
    ssize_t n = recvfrom(p->lfd, buf, sizeof(buf), MSG_DONTWAIT,
                         (struct sockaddr *)&src, &sl);
    if (n < 0)
      return;
    on_datagram(s, p, buf, (size_t)n, (struct sockaddr *)&src, sl);
  }
}

/* Sockets of pools a running reload removed, kept for the pools the same
 * reload adds on their address (qpoold has one loop and one reload at a
 * time, so this can be file-wide). */
static struct parked {
  int fd;
  struct sockaddr_storage addr;
} parked[SUP_POOLS_MAX];
static size_t nparked;

void sup_listener_park(struct sup_pool *p) {
  if (p->lfd < 0)
    return;
  if (nparked == SUP_POOLS_MAX) {
    close(p->lfd);
    return;
  }
  parked[nparked].fd = p->lfd;
  memcpy(&parked[nparked++].addr, &p->cfg.addr, sizeof(p->cfg.addr));
}

void sup_listeners_unpark(void) {
  while (nparked > 0)
    close(parked[--nparked].fd);
}

static int unpark(const struct sockaddr *sa) {
  for (size_t i = 0; i < nparked; i++)
    if (qp_addr_equal((struct sockaddr *)&parked[i].addr, sa)) {
      int fd = parked[i].fd;
      parked[i] = parked[--nparked];
      return fd;
    }
  return -1;
}

int sup_listener_open(struct sup_pool *p, char *err, size_t errlen) {
  char a[QP_ADDR_STRLEN], why[512];
  const struct sockaddr *sa = (const struct sockaddr *)&p->cfg.addr;
  /* a pool the running reload removed still owns this address (its
   * connections linger on it): its socket carries on */
  int fd = unpark(sa);
  const char *kept = fd >= 0 ? ", socket kept across the reload" : "";
  if (fd < 0)
    fd = qp_udp_listen(sa, p->cfg.addr_len, why, sizeof(why));
  if (fd < 0) {
    snprintf(err, errlen, "pool %s: %s", p->cfg.name, why);
    p->lfd = -1;
    return fd;
  }
  p->lfd = fd;
  qp_ratelimit_init(&p->refusals, 20, 20);
  qp_info("pool %s: listening on %s (worker %d%s)", p->cfg.name,
          qp_addr_format(sa, a, sizeof(a)), p->worker, kept);
  return 0;
}

void sup_listener_start(struct sup *s, struct sup_pool *p) {
  uv_poll_init_socket(s->loop, &p->lpoll, p->lfd);
  p->lpoll.data = p;
  uv_poll_start(&p->lpoll, UV_READABLE, on_listener);
}

int sup_listeners_open(struct sup *s, char *err, size_t errlen) {
  for (size_t i = 0; i < s->npools; i++) {
    struct sup_pool *p = s->pools[i];
    p->lfd = -1;
    if (!p->cfg.server)
      continue;
    int rc = sup_listener_open(p, err, errlen);
    if (rc < 0)
      return rc;
    sup_listener_start(s, p);
  }
  return 0;
}

void sup_listeners_close(struct sup *s) {
  for (size_t i = 0; i < s->npools; i++) {
    struct sup_pool *p = s->pools[i];
    if (p->lfd < 0)
      continue;
    uv_poll_stop(&p->lpoll);
    uv_close((uv_handle_t *)&p->lpoll, NULL);
    close(p->lfd);
    p->lfd = -1;
  }
}
