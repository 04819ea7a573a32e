/* The listener of a standalone server pool: classifies datagrams by the QUIC
 * invariant header, filters client IPs before any handshake, and gives each
 * new connection its own connected UDP socket (the hand-off the supervisor
 * performs in the privilege-separated runtime). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>

#include "shared/addr.h"
#include "shared/log.h"
#include "shared/handoff.h"
#include "shared/quic_hdr.h"
#include "shared/udp_listen.h"
#include "worker/internal.h"

#define CLOSE_RATE 20.0  /* stateless closes per second ... */
#define CLOSE_BURST 20.0 /* ... with this burst */

static int on_listener_pkt(void *arg, const uint8_t *pkt, size_t len,
                           const struct sockaddr *src, socklen_t srclen);

int wrk_listener_open(wrk_pool *p, char *err, size_t errlen) {
  /* exclusive: a second server on this address fails here, saying who
   * holds it; only our hand-off sockets join the listener afterwards */
  int fd = qp_udp_listen((const struct sockaddr *)&p->cfg.listen,
                         p->cfg.listen_len, err, errlen);
  int rc;
  if (fd < 0)
    return fd;
  /* the hand-off sockets bind exactly the address we got (port 0 -> real) */
  p->cfg.listen_len = sizeof(p->cfg.listen);
  getsockname(fd, (struct sockaddr *)&p->cfg.listen, &p->cfg.listen_len);
  if ((rc = uv_poll_init_socket(p->loop, &p->lpoll, fd)) < 0) {
    snprintf(err, errlen, "cannot watch the listener: %s", uv_strerror(rc));
    close(fd);
    return rc;
  }
  p->lpoll.data = p;
  p->lfd = fd;
  qp_ratelimit_init(&p->close_rl, CLOSE_RATE, CLOSE_BURST);
  return 0;
}

static void on_listener_io(uv_poll_t *h, int status, int events) {
  wrk_pool *p = h->data;
  (void)events;
  if (status < 0 || p->closing)
    return;
  (void)wrk_udp_recv(p->lfd, p->rx, 8, on_listener_pkt, p);
}

void wrk_listener_start(wrk_pool *p) {
  uv_poll_start(&p->lpoll, UV_READABLE, on_listener_io);
}

static void on_lpoll_closed(uv_handle_t *h) {
  wrk_pool_release(h->data);
}

void wrk_listener_close(wrk_pool *p) {
  if (p->lfd < 0)
    return;
  uv_poll_stop(&p->lpoll);
  close(p->lfd);
  p->lfd = -1;
  uv_close((uv_handle_t *)&p->lpoll, on_lpoll_closed);
}

static wrk_conn *conn_by_peer(wrk_pool *p, const struct sockaddr *src) {
  for (struct wrk_list *n = p->conns.next; n != &p->conns; n = n->next) {
    wrk_conn *c = wrk_container(n, wrk_conn, link);
    if (qp_addr_equal((struct sockaddr *)&c->peer, src))
      return c;
  }
  return NULL;
}

/* Refuses a client Initial without any state (rate-limited: no answer and
 * no log line past the limit). */
static void refuse(wrk_pool *p, const struct qp_quic_hdr *h,
                   const struct sockaddr *src, socklen_t srclen) {
  char a[QP_ADDR_STRLEN];
  if (!qp_ratelimit_take(&p->close_rl, wrk_now()))
    return;
  qp_info("pool %s: refused %s: unauthorized IP", p->cfg.name,
          qp_addr_format(src, a, sizeof(a)));
  (void)qp_send_refusal(p->lfd, h, "unauthorized IP", src, srclen);
}

/* New connection: a socket bound to the listener's address and connected to
 * the client, so the kernel delivers that 4-tuple to it alone. */
static void accept_conn(wrk_pool *p, const uint8_t *pkt, size_t len,
                        const struct sockaddr *src, socklen_t srclen) {
  char a[QP_ADDR_STRLEN];
  int fd = qp_handoff_socket((struct sockaddr *)&p->cfg.listen,
                             p->cfg.listen_len, src, srclen);
  if (fd < 0 || wrk_udp_setup(fd) < 0) {
    qp_warn("pool %s: cannot hand off a connection from %s: %s", p->cfg.name,
            qp_addr_format(src, a, sizeof(a)), strerror(fd < 0 ? -fd : errno));
    if (fd >= 0)
      close(fd);
    p->st.conns_failed++;
    return;
  }
  /* Between bind() and connect() the socket may have caught datagrams of
   * other new clients: keep the peer's, re-route the rest afterwards. */
  static _Thread_local struct qp_drain d; /* ~70 KB: not on the stack */
  qp_handoff_drain(fd, src, &d);
  p->st.dropped_datagrams += d.dropped;
  size_t nmine = d.nmine, nother = d.nother;
  struct qp_dgram *other = malloc(nother * sizeof(*other) + 1);
  if (other)
    memcpy(other, d.other, nother * sizeof(*other));
  else
    nother = 0;
  wrk_conn *c = NULL;
  int rc = wrk_conn_server_new(p, fd, pkt, len, src, srclen, &c);
  if (rc < 0) { /* refused or closed by its first packet; fd is closed */
    if (!c)
      p->st.dropped_datagrams++;
    nmine = 0;
  }
  for (size_t i = 0; i < nmine; i++)
    if (wrk_conn_feed(c, d.mine[i].data, d.mine[i].len) < 0)
      break;
  for (size_t i = 0; i < nother; i++) /* may hand off again: uses d */
    on_listener_pkt(p, other[i].data, other[i].len,
                    (struct sockaddr *)&other[i].from, other[i].fromlen);
  free(other);
}

static int on_listener_pkt(void *arg, const uint8_t *pkt, size_t len,
                           const struct sockaddr *src, socklen_t srclen) {
  wrk_pool *p = arg;
  struct qp_quic_hdr h;
  enum qp_drop_reason why;
  enum qp_pkt_class cls = qp_quic_classify(pkt, len, QP_CID_LEN, &h, &why);
  if (cls == QP_PKT_DROP) {
    p->st.dropped_datagrams++;
    qp_debug("pool %s: dropped datagram: %s", p->cfg.name,
             qp_drop_reason_str(why));
    return 0;
  }
  if (cls == QP_PKT_NEED_VN) {
    (void)qp_send_version_negotiation(p->lfd, &h, src, srclen);
    return 0;
  }
  wrk_conn *c = conn_by_peer(p, src);
  if (c) { /* a straggler queued before the hand-off */
    (void)wrk_conn_feed(c, pkt, len);
    return 0;
  }
  if (cls != QP_PKT_INITIAL) {
    p->st.dropped_datagrams++;
    return 0;
  }
  if (!qp_ipfilter_allows(&p->cfg.client_ip, src)) {
    p->st.rejected_ip++;
    refuse(p, &h, src, srclen);
    return 0;
  }
  accept_conn(p, pkt, len, src, srclen);
  return 0;
}

int wrk_listener_feed(wrk_pool *p, const uint8_t *pkt, size_t len,
                      const struct sockaddr *src, socklen_t srclen) {
  return on_listener_pkt(p, pkt, len, src, srclen);
}
