/* The listener of a standalone server pool: classifies datagrams by the QUIC
 * invariant header, filters client IPs before any handshake, and gives each
 * new connection its own connected UDP socket (the hand-off the supervisor
 * performs in the privilege-separated runtime). */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>
#include <ngtcp2/ngtcp2_crypto.h>

#include "shared/addr.h"
#include "shared/log.h"
#include "shared/quic_hdr.h"
#include "worker/internal.h"

#define CLOSE_RATE 20.0  /* stateless closes per second ... */
#define CLOSE_BURST 20.0 /* ... with this burst */
#define DRAIN_MAX 64     /* datagrams drained from a new socket */

static int on_listener_pkt(void *arg, const uint8_t *pkt, size_t len,
                           const struct sockaddr *src, socklen_t srclen);

static int bind_reuse(int fd, const struct sockaddr *sa, socklen_t len) {
  int one = 1;
  if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
      setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0)
    return -errno;
  if (sa->sa_family == AF_INET6)
    (void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
  return bind(fd, sa, len) < 0 ? -errno : 0;
}

int wrk_listener_open(wrk_pool *p, char *err, size_t errlen) {
  char a[QP_ADDR_STRLEN];
  const struct sockaddr *sa = (const struct sockaddr *)&p->cfg.listen;
  int fd = socket(sa->sa_family, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) {
    snprintf(err, errlen, "cannot create a UDP socket: %s", strerror(errno));
    return -errno;
  }
  int rc = bind_reuse(fd, sa, p->cfg.listen_len);
  if (rc < 0) {
    snprintf(err, errlen, "cannot listen on %s: %s",
             qp_addr_format(sa, a, sizeof(a)), strerror(-rc));
    close(fd);
    return rc;
  }
  int sz = 8 << 20;
  if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &sz, sizeof(sz)) < 0)
    (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
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
  p->close_tokens = CLOSE_BURST;
  p->close_tokens_ts = wrk_now();
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

static int take_close_token(wrk_pool *p) {
  uint64_t now = wrk_now();
  p->close_tokens += (double)(now - p->close_tokens_ts) / 1e9 * CLOSE_RATE;
  p->close_tokens_ts = now;
  if (p->close_tokens > CLOSE_BURST)
    p->close_tokens = CLOSE_BURST;
  if (p->close_tokens < 1.0)
    return 0;
  p->close_tokens -= 1.0;
  return 1;
}

/* Refuses a client Initial without any state: CONNECTION_CLOSE in an
 * Initial packet, error CONNECTION_REFUSED, reason "unauthorized IP". */
static void refuse(wrk_pool *p, const struct qp_quic_hdr *h,
                   const struct sockaddr *src, socklen_t srclen) {
  static const char reason[] = "unauthorized IP";
  char a[QP_ADDR_STRLEN];
  uint8_t buf[512];
  ngtcp2_cid dcid, scid;
  if (!take_close_token(p))
    return; /* rate-limited: no answer, no log line */
  qp_info("pool %s: refused %s: unauthorized IP", p->cfg.name,
          qp_addr_format(src, a, sizeof(a)));
  ngtcp2_cid_init(&dcid, h->scid, h->scidlen);
  ngtcp2_cid_init(&scid, h->dcid, h->dcidlen);
  ngtcp2_ssize n = ngtcp2_crypto_write_connection_close(
      buf, sizeof(buf), h->version, &dcid, &scid, NGTCP2_CONNECTION_REFUSED,
      (const uint8_t *)reason, sizeof(reason) - 1);
  if (n > 0)
    (void)sendto(p->lfd, buf, (size_t)n, MSG_DONTWAIT, src, srclen);
}

static void send_vn(wrk_pool *p, const struct qp_quic_hdr *h,
                    const struct sockaddr *src, socklen_t srclen) {
  uint8_t buf[256];
  const uint32_t sv[] = {NGTCP2_PROTO_VER_V1};
  uint8_t rnd = 0;
  (void)gnutls_rnd(GNUTLS_RND_NONCE, &rnd, 1);
  ngtcp2_ssize n = ngtcp2_pkt_write_version_negotiation(
      buf, sizeof(buf), rnd, h->scid, h->scidlen, h->dcid, h->dcidlen, sv, 1);
  if (n > 0)
    (void)sendto(p->lfd, buf, (size_t)n, MSG_DONTWAIT, src, srclen);
}

/* New connection: a socket bound to the listener's address and connected to
 * the client, so the kernel delivers that 4-tuple to it alone. */
static void accept_conn(wrk_pool *p, const uint8_t *pkt, size_t len,
                        const struct sockaddr *src, socklen_t srclen) {
  char a[QP_ADDR_STRLEN];
  int fd = socket(src->sa_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0 ||
      bind_reuse(fd, (struct sockaddr *)&p->cfg.listen, p->cfg.listen_len) <
          0 ||
      connect(fd, src, srclen) < 0 || wrk_udp_setup(fd) < 0) {
    qp_warn("pool %s: cannot hand off a connection from %s: %s", p->cfg.name,
            qp_addr_format(src, a, sizeof(a)), strerror(errno));
    if (fd >= 0)
      close(fd);
    p->st.conns_failed++;
    return;
  }
  /* Between bind() and connect() the socket may have caught datagrams of
   * other new clients: keep the peer's, re-route the rest. */
  uint8_t mine[DRAIN_MAX][1500];
  size_t minelen[DRAIN_MAX];
  int nmine = 0;
  for (int i = 0; i < DRAIN_MAX; i++) {
    uint8_t buf[1500];
    struct sockaddr_storage from;
    socklen_t fl = sizeof(from);
    ssize_t n = recvfrom(fd, buf, sizeof(buf), MSG_DONTWAIT,
                         (struct sockaddr *)&from, &fl);
    if (n < 0)
      break;
    if (qp_addr_equal((struct sockaddr *)&from, src) && nmine < DRAIN_MAX) {
      memcpy(mine[nmine], buf, (size_t)n);
      minelen[nmine++] = (size_t)n;
    } else {
      on_listener_pkt(p, buf, (size_t)n, (struct sockaddr *)&from, fl);
    }
  }
  wrk_conn *c = NULL;
  int rc = wrk_conn_server_new(p, fd, pkt, len, src, srclen, &c);
  if (rc < 0) { /* refused or closed by its first packet; fd is closed */
    if (!c)
      p->st.dropped_datagrams++;
    return;
  }
  for (int i = 0; i < nmine; i++)
    if (wrk_conn_feed(c, mine[i], minelen[i]) < 0)
      break;
}

static int on_listener_pkt(void *arg, const uint8_t *pkt, size_t len,
                           const struct sockaddr *src, socklen_t srclen) {
  wrk_pool *p = arg;
  struct qp_quic_hdr h;
  enum qp_drop_reason why;
  enum qp_pkt_class cls = qp_quic_classify(pkt, len, WRK_SCID_LEN, &h, &why);
  if (cls == QP_PKT_DROP) {
    p->st.dropped_datagrams++;
    qp_debug("pool %s: dropped datagram: %s", p->cfg.name,
             qp_drop_reason_str(why));
    return 0;
  }
  if (cls == QP_PKT_NEED_VN) {
    send_vn(p, &h, src, srclen);
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
