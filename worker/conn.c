/* One np-quic QUIC connection on ngtcp2 0.12 + GnuTLS over its own connected
 * UDP socket: callbacks, the read path, the GSO write loop and the timer. */
#include <stdarg.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <ngtcp2/ngtcp2_crypto_gnutls.h>

#include "shared/addr.h"
#include "shared/log.h"
#include "shared/pool_params.h"
#include "worker/internal.h"
#include "worker/tls.h"

#define WRK_MAX_PAYLOAD 16384 /* cap for loopback-sized routes */
#define WRK_GSO_BYTES 65000   /* bytes per sendmsg with UDP_SEGMENT */
#define WRK_WRITE_SENDS 32    /* sendmsg calls per write pass */
/* sends closer together than this are one burst (max_burst) */
#define WRK_BURST_GAP_NS (100 * NGTCP2_MICROSECONDS)

uint64_t wrk_now(void) {
  return uv_hrtime();
}

static int conn_teardown(wrk_conn *c, const char *why);

/* ---- ngtcp2 callbacks: return 0 or NGTCP2_ERR_CALLBACK_FAILURE ---------- */

static void cb_rand(uint8_t *dest, size_t destlen,
                    const ngtcp2_rand_ctx *rand_ctx) {
  (void)rand_ctx;
  (void)gnutls_rnd(GNUTLS_RND_NONCE, dest, destlen);
}

static int cb_get_new_connection_id(ngtcp2_conn *qc, ngtcp2_cid *cid,
                                    uint8_t *token, size_t cidlen,
                                    void *user_data) {
  wrk_conn *c = user_data;
  (void)qc;
  if (gnutls_rnd(GNUTLS_RND_NONCE, cid->data, cidlen) < 0)
    return NGTCP2_ERR_CALLBACK_FAILURE;
  cid->datalen = cidlen;
  if (ngtcp2_crypto_generate_stateless_reset_token(
          token, c->pool->secret, sizeof(c->pool->secret), cid) != 0)
    return NGTCP2_ERR_CALLBACK_FAILURE;
  return 0;
}

static int cb_recv_stateless_reset(ngtcp2_conn *qc,
                                   const ngtcp2_pkt_stateless_reset *sr,
                                   void *user_data) {
  wrk_conn *c = user_data;
  (void)qc, (void)sr;
  c->reset_received = 1;
  return 0;
}

static int cb_handshake_completed(ngtcp2_conn *qc, void *user_data) {
  wrk_conn *c = user_data;
  (void)qc;
  c->handshake_done = 1;
  wrk_pool_conn_handshake(c->pool, c);
  return 0;
}

static int cb_stream_open(ngtcp2_conn *qc, int64_t sid, void *user_data) {
  wrk_conn *c = user_data;
  if (!ngtcp2_is_bidi_stream(sid)) { /* np-quic uses bidi streams only */
    ngtcp2_conn_shutdown_stream(qc, sid, 0);
    return 0;
  }
  wrk_pool_peer_stream(c->pool, c, sid);
  return 0;
}

static int cb_recv_stream_data(ngtcp2_conn *qc, uint32_t flags, int64_t sid,
                               uint64_t offset, const uint8_t *data,
                               size_t datalen, void *user_data,
                               void *stream_user_data) {
  wrk_conn *c = user_data;
  wrk_stream *s = stream_user_data;
  (void)offset;
  (void)qc;
  if (!s) { /* a stream we gave up on: keep the connection window open */
    wrk_conn_consumed(c, sid, datalen);
    return 0;
  }
  wrk_stream_on_data(s, data, datalen, (flags & NGTCP2_STREAM_DATA_FLAG_FIN));
  return 0;
}

static int cb_acked_stream_data_offset(ngtcp2_conn *qc, int64_t sid,
                                       uint64_t offset, uint64_t datalen,
                                       void *user_data,
                                       void *stream_user_data) {
  (void)qc, (void)sid, (void)offset, (void)user_data;
  if (stream_user_data)
    wrk_stream_on_acked(stream_user_data, datalen);
  return 0;
}

static int cb_stream_close(ngtcp2_conn *qc, uint32_t flags, int64_t sid,
                           uint64_t app_error_code, void *user_data,
                           void *stream_user_data) {
  (void)flags, (void)app_error_code, (void)user_data;
  if (!ngtcp2_conn_is_local_stream(qc, sid) && ngtcp2_is_bidi_stream(sid))
    ngtcp2_conn_extend_max_streams_bidi(qc, 1); /* replenish MAX_STREAMS */
  if (stream_user_data)
    wrk_stream_on_quic_close(stream_user_data);
  return 0;
}

static int cb_stream_reset(ngtcp2_conn *qc, int64_t sid, uint64_t final_size,
                           uint64_t app_error_code, void *user_data,
                           void *stream_user_data) {
  (void)qc, (void)sid, (void)final_size, (void)app_error_code, (void)user_data;
  if (stream_user_data)
    wrk_stream_on_reset(stream_user_data);
  return 0;
}

static int cb_extend_max_local_streams_bidi(ngtcp2_conn *qc,
                                            uint64_t max_streams,
                                            void *user_data) {
  wrk_conn *c = user_data;
  (void)qc, (void)max_streams;
  wrk_pool_conn_streams_left(c->pool, c);
  return 0;
}

static int cb_extend_max_stream_data(ngtcp2_conn *qc, int64_t sid,
                                     uint64_t max_data, void *user_data,
                                     void *stream_user_data) {
  wrk_conn *c = user_data;
  wrk_stream *s = stream_user_data;
  (void)qc, (void)sid, (void)max_data;
  if (s && s->blocked) {
    s->blocked = 0;
    wrk_conn_want_send(c, s);
    wrk_stream_on_unblocked(s); /* it may read its app again */
  }
  return 0;
}

static ngtcp2_conn *get_conn(ngtcp2_crypto_conn_ref *ref) {
  return ((wrk_conn *)ref->user_data)->qc;
}

static void callbacks_init(ngtcp2_callbacks *cb, int server) {
  memset(cb, 0, sizeof(*cb));
  if (server) {
    cb->recv_client_initial = ngtcp2_crypto_recv_client_initial_cb;
    cb->stream_open = cb_stream_open;
  } else {
    cb->client_initial = ngtcp2_crypto_client_initial_cb;
    cb->recv_retry = ngtcp2_crypto_recv_retry_cb;
    cb->extend_max_local_streams_bidi = cb_extend_max_local_streams_bidi;
  }
  cb->recv_crypto_data = ngtcp2_crypto_recv_crypto_data_cb;
  cb->encrypt = ngtcp2_crypto_encrypt_cb;
  cb->decrypt = ngtcp2_crypto_decrypt_cb;
  cb->hp_mask = ngtcp2_crypto_hp_mask_cb;
  cb->update_key = ngtcp2_crypto_update_key_cb;
  cb->delete_crypto_aead_ctx = ngtcp2_crypto_delete_crypto_aead_ctx_cb;
  cb->delete_crypto_cipher_ctx = ngtcp2_crypto_delete_crypto_cipher_ctx_cb;
  cb->get_path_challenge_data = ngtcp2_crypto_get_path_challenge_data_cb;
  cb->version_negotiation = ngtcp2_crypto_version_negotiation_cb;
  cb->rand = cb_rand;
  cb->get_new_connection_id = cb_get_new_connection_id;
  cb->recv_stateless_reset = cb_recv_stateless_reset;
  cb->handshake_completed = cb_handshake_completed;
  cb->recv_stream_data = cb_recv_stream_data;
  cb->acked_stream_data_offset = cb_acked_stream_data_offset;
  cb->stream_close = cb_stream_close;
  cb->stream_reset = cb_stream_reset;
  /* no stream_stop_sending: in ngtcp2 0.12 it reports our own
   * shutdown_stream_read, not the peer's STOP_SENDING; that one shows as
   * NGTCP2_ERR_STREAM_SHUT_WR in the write loop */
  cb->extend_max_stream_data = cb_extend_max_stream_data;
}

/* ---- set-up -------------------------------------------------------------- */

static void on_conn_io(uv_poll_t *h, int status, int events);
static void on_conn_timer(uv_timer_t *t);

/* ngtcp2's log lines (QPOOL_NGTCP2_DEBUG=1 with the debug level), as debug
 * lines of our log naming the pool. */
static void ngtcp2_log_line(void *user_data, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void ngtcp2_log_line(void *user_data, const char *fmt, ...) {
  wrk_conn *c = user_data;
  char line[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(line, sizeof(line), fmt, ap);
  va_end(ap);
  qp_debug("pool %s: ngtcp2: %s", c->pool->cfg.name, line);
}

static void settings_init(wrk_conn *c, ngtcp2_settings *st,
                          ngtcp2_transport_params *tp, int server) {
  const struct wrk_pool_config *cfg = &c->pool->cfg;
  ngtcp2_settings_default(st);
  st->initial_ts = wrk_now();
  st->initial_rtt = 10 * NGTCP2_MILLISECONDS; /* loopback/LAN first */
  st->max_tx_udp_payload_size = c->max_payload;
  st->no_tx_udp_payload_size_shaping = c->max_payload > 1452;
  /* windows start small (what an idle stream may hold) and ngtcp2 grows
   * them while they are used up within two round trips */
  st->max_window = qp_conn_window_max(cfg->set.max_stream_window);
  st->max_stream_window = cfg->set.max_stream_window;
  st->handshake_timeout = 10 * NGTCP2_SECONDS;
  st->cc_algo = c->cc_algo =
      cfg->set.cc_algo; /* reported by wrk_conn_describe */
  if (qp_log_enabled(QP_LOG_DEBUG) && getenv("QPOOL_NGTCP2_DEBUG"))
    st->log_printf = ngtcp2_log_line; /* ngtcp2's own trace, very verbose */

  ngtcp2_transport_params_default(tp);
  uint64_t sw = qp_stream_window_init(cfg->set.max_stream_window);
  tp->initial_max_stream_data_bidi_local = sw;
  tp->initial_max_stream_data_bidi_remote = sw;
  tp->initial_max_stream_data_uni = 0;
  tp->initial_max_data = QP_CONN_WINDOW_INIT;
  tp->initial_max_streams_bidi = server ? (uint64_t)cfg->set.max_cap : 0;
  tp->initial_max_streams_uni = 0;
  tp->max_idle_timeout = qp_pool_idle_timeout_ns(&cfg->set); /* the one rule */
  tp->max_udp_payload_size = 65527;
  tp->active_connection_id_limit = 4;
  /* no QUIC-bit greasing (RFC 9287, on by default in ngtcp2): when a worker
   * dies, its peers' 1-RTT packets reach qpoold's listener, which must
   * recognise them as QUIC (fixed bit set) to answer with a stateless
   * reset */
  tp->grease_quic_bit = 0;
}

static wrk_conn *conn_alloc(wrk_pool *p, int fd) {
  wrk_conn *c = calloc(1, sizeof(*c));
  if (!c)
    return NULL;
  c->pool = p;
  c->fd = fd;
  c->tx_limit = qp_stream_window_init(p->cfg.set.max_stream_window);
  wrk_list_init(&c->tx_streams);
  wrk_list_init(&c->streams);
  wrk_list_init(&c->dirty_link);
  wrk_list_init(&c->link);
  c->local_len = sizeof(c->local);
  c->peer_len = sizeof(c->peer);
  if (getsockname(fd, (struct sockaddr *)&c->local, &c->local_len) < 0 ||
      getpeername(fd, (struct sockaddr *)&c->peer, &c->peer_len) < 0) {
    free(c);
    return NULL;
  }
  c->path.local.addr = (ngtcp2_sockaddr *)&c->local;
  c->path.local.addrlen = c->local_len;
  c->path.remote.addr = (ngtcp2_sockaddr *)&c->peer;
  c->path.remote.addrlen = c->peer_len;
  c->max_payload = wrk_udp_max_payload(fd);
  if (c->max_payload > WRK_MAX_PAYLOAD)
    c->max_payload = WRK_MAX_PAYLOAD;
  c->ref.get_conn = get_conn;
  c->ref.user_data = c;
  c->created_ns = wrk_now();
  return c;
}

/* Starts the uv handles; after this the connection is freed through
 * conn_teardown only. */
static int conn_start(wrk_conn *c) {
  wrk_pool *p = c->pool;
  int rc = uv_poll_init(p->loop, &c->poll, c->fd);
  if (rc < 0)
    return rc;
  c->poll.data = c;
  uv_timer_init(p->loop, &c->timer);
  c->timer.data = c;
  c->handles_open = 2;
  c->poll_events = UV_READABLE;
  uv_poll_start(&c->poll, c->poll_events, on_conn_io);
  wrk_list_push(&p->conns, &c->link);
  p->st.conns++;
  if (p->cfg.set.keep_alive_ns)
    ngtcp2_conn_set_keep_alive_timeout(c->qc, p->cfg.set.keep_alive_ns);
  return 0;
}

static void conn_free_early(wrk_conn *c) {
  if (c->qc)
    ngtcp2_conn_del(c->qc);
  if (c->tls)
    gnutls_deinit(c->tls);
  free(c);
}

static int early_fail(int fd, wrk_conn *c, int rc) {
  if (c)
    conn_free_early(c);
  close(fd);
  return rc;
}

int wrk_conn_client_new(wrk_pool *p, int fd, wrk_conn **out) {
  wrk_conn *c = conn_alloc(p, fd);
  if (!c)
    return early_fail(fd, NULL, -ENOMEM);
  ngtcp2_callbacks cb;
  ngtcp2_settings st;
  ngtcp2_transport_params tp;
  ngtcp2_cid dcid, scid;
  callbacks_init(&cb, 0);
  settings_init(c, &st, &tp, 0);
  dcid.datalen = QP_CID_LEN;
  scid.datalen = QP_CID_LEN;
  if (gnutls_rnd(GNUTLS_RND_NONCE, dcid.data, dcid.datalen) < 0 ||
      gnutls_rnd(GNUTLS_RND_NONCE, scid.data, scid.datalen) < 0)
    return early_fail(fd, c, -EIO);
  int rv = ngtcp2_conn_client_new(&c->qc, &dcid, &scid, &c->path,
                                  NGTCP2_PROTO_VER_V1, &cb, &st, &tp, NULL, c);
  if (rv != 0) {
    qp_err("pool %s: ngtcp2_conn_client_new: %s", p->cfg.name,
           ngtcp2_strerror(rv));
    return early_fail(fd, c, -ENOMEM);
  }
  if (wrk_tls_session_new(p->tls, &c->ref, &c->tls) < 0)
    return early_fail(fd, c, -ENOMEM);
  ngtcp2_conn_set_tls_native_handle(c->qc, c->tls);
  if ((rv = conn_start(c)) < 0)
    return early_fail(fd, c, rv);
  *out = c;
  wrk_conn_dirty(c); /* sends the first Initial */
  return 0;
}

int wrk_conn_server_new(wrk_pool *p, int fd, const uint8_t *pkt, size_t len,
                        const struct sockaddr *peer, socklen_t peerlen,
                        wrk_conn **out) {
  ngtcp2_pkt_hd hd;
  (void)peer, (void)peerlen;
  if (ngtcp2_accept(&hd, pkt, len) != 0)
    return early_fail(fd, NULL, -EINVAL);
  wrk_conn *c = conn_alloc(p, fd);
  if (!c)
    return early_fail(fd, NULL, -ENOMEM);
  ngtcp2_callbacks cb;
  ngtcp2_settings st;
  ngtcp2_transport_params tp;
  ngtcp2_cid scid;
  callbacks_init(&cb, 1);
  settings_init(c, &st, &tp, 1);
  scid.datalen = QP_CID_LEN;
  if (gnutls_rnd(GNUTLS_RND_NONCE, scid.data, scid.datalen) < 0)
    return early_fail(fd, c, -EIO);
  tp.original_dcid = hd.dcid;
  tp.stateless_reset_token_present = 1;
  if (ngtcp2_crypto_generate_stateless_reset_token(
          tp.stateless_reset_token, p->secret, sizeof(p->secret), &scid) != 0)
    return early_fail(fd, c, -EIO);
  int rv = ngtcp2_conn_server_new(&c->qc, &hd.scid, &scid, &c->path, hd.version,
                                  &cb, &st, &tp, NULL, c);
  if (rv != 0)
    return early_fail(fd, c, -ENOMEM);
  if (wrk_tls_session_new(p->tls, &c->ref, &c->tls) < 0)
    return early_fail(fd, c, -ENOMEM);
  ngtcp2_conn_set_tls_native_handle(c->qc, c->tls);
  if ((rv = conn_start(c)) < 0)
    return early_fail(fd, c, rv);
  *out = c;
  return wrk_conn_feed(c, pkt, len);
}

/* ---- errors and teardown ------------------------------------------------- */

static void describe_peer_close(wrk_conn *c, char *buf, size_t len) {
  if (c->reset_received) {
    snprintf(buf, len,
             "stateless reset from the peer (it no longer has this "
             "connection: restarted?)");
    return;
  }
  ngtcp2_connection_close_error ce;
  ngtcp2_conn_get_connection_close_error(c->qc, &ce);
  const char *kind =
      ce.type == NGTCP2_CONNECTION_CLOSE_ERROR_CODE_TYPE_APPLICATION
          ? "application"
          : "transport";
  if (ce.type == NGTCP2_CONNECTION_CLOSE_ERROR_CODE_TYPE_TRANSPORT &&
      ce.error_code >= 0x100 && ce.error_code < 0x200) {
    unsigned code = (unsigned)(ce.error_code & 0xff);
    const char *alert = gnutls_alert_get_name((gnutls_alert_description_t)code);
    snprintf(buf, len, "peer refused the TLS handshake: %s (alert %u)%s%.*s",
             alert ? alert : "unknown alert", code, ce.reasonlen ? ": " : "",
             (int)ce.reasonlen, ce.reason ? (const char *)ce.reason : "");
    return;
  }
  snprintf(buf, len, "peer closed the connection (%s error 0x%llx)%s%.*s", kind,
           (unsigned long long)ce.error_code, ce.reasonlen ? ": " : "",
           (int)ce.reasonlen, ce.reason ? (const char *)ce.reason : "");
}

static void send_close(wrk_conn *c, const ngtcp2_connection_close_error *ce) {
  uint8_t buf[1500];
  ngtcp2_pkt_info pi;
  if (!c->qc || c->draining || ngtcp2_conn_is_in_closing_period(c->qc) ||
      ngtcp2_conn_is_in_draining_period(c->qc))
    return;
  ngtcp2_ssize n = ngtcp2_conn_write_connection_close(
      c->qc, NULL, &pi, buf, sizeof(buf), ce, wrk_now());
  if (n > 0)
    (void)wrk_udp_send(c->fd, buf, (size_t)n, (size_t)n);
}

static void on_handle_closed(uv_handle_t *h) {
  wrk_conn *c = h->data;
  if (--c->handles_open == 0) {
    wrk_pool *p = c->pool;
    free(c);
    wrk_pool_release(p);
  }
}

/* Frees everything of the connection; the pool learns `why`. Returns
 * -ECONNRESET so read paths can stop. */
static int conn_teardown(wrk_conn *c, const char *why) {
  if (c->closing)
    return -ECONNRESET;
  wrk_pool *p = c->pool;
  c->closing = 1;
  if (why && !c->error[0])
    snprintf(c->error, sizeof(c->error), "%s", why);
  wrk_list_del(&c->dirty_link);
  wrk_list_del(&c->link);
  p->st.conns--;
  /* ngtcp2_conn_del does not report open streams: walk our own list */
  while (!wrk_list_empty(&c->streams)) {
    wrk_stream *s = wrk_container(c->streams.next, wrk_stream, conn_link);
    wrk_list_del(&s->conn_link);
    wrk_stream_on_conn_gone(s);
  }
  wrk_pool_conn_closed(p, c, c->error);
  ngtcp2_conn_del(c->qc);
  c->qc = NULL;
  gnutls_deinit(c->tls);
  c->tls = NULL;
  free(c->pending);
  c->pending = NULL;
  uv_poll_stop(&c->poll);
  uv_timer_stop(&c->timer);
  close(c->fd);
  c->fd = -1;
  wrk_pool_hold(p);
  uv_close((uv_handle_t *)&c->poll, on_handle_closed);
  uv_close((uv_handle_t *)&c->timer, on_handle_closed);
  return -ECONNRESET;
}

void wrk_conn_close(wrk_conn *c, const char *reason) {
  if (c->closing)
    return;
  ngtcp2_connection_close_error ce;
  ngtcp2_connection_close_error_set_application_error(
      &ce, 0, (const uint8_t *)reason, strlen(reason));
  send_close(c, &ce);
  conn_teardown(c, reason);
}

/* A local error: tell the peer (transport error) and tear down. */
static int conn_fail(wrk_conn *c, int liberr, const char *what) {
  ngtcp2_connection_close_error ce;
  char msg[256];
  if (liberr == NGTCP2_ERR_CRYPTO) {
    uint8_t alert = ngtcp2_conn_get_tls_alert(c->qc);
    char verr[200];
    wrk_tls_verify_error(c->tls, verr, sizeof(verr));
    ngtcp2_connection_close_error_set_transport_error_tls_alert(&ce, alert,
                                                                NULL, 0);
    if (verr[0])
      snprintf(msg, sizeof(msg), "TLS handshake failed: %s", verr);
    else
      snprintf(msg, sizeof(msg), "TLS handshake failed: %s (alert %u)",
               gnutls_alert_get_name(alert) ? gnutls_alert_get_name(alert)
                                            : what,
               alert);
  } else {
    ngtcp2_connection_close_error_set_transport_error_liberr(&ce, liberr, NULL,
                                                             0);
    snprintf(msg, sizeof(msg), "%s: %s", what, ngtcp2_strerror(liberr));
  }
  send_close(c, &ce);
  return conn_teardown(c, msg);
}

/* ---- read path ----------------------------------------------------------- */

int wrk_conn_feed(wrk_conn *c, const uint8_t *pkt, size_t len) {
  if (c->closing)
    return -ECONNRESET;
  ngtcp2_pkt_info pi = {0};
  int rv = ngtcp2_conn_read_pkt(c->qc, &c->path, &pi, pkt, len, wrk_now());
  if (rv == 0) {
    wrk_conn_dirty(c);
    return 0;
  }
  switch (rv) {
  case NGTCP2_ERR_DRAINING: {
    char why[256];
    describe_peer_close(c, why, sizeof(why));
    c->draining = 1;
    return conn_teardown(c, why);
  }
  case NGTCP2_ERR_CLOSING:
    return conn_teardown(c, "connection closing");
  case NGTCP2_ERR_DROP_CONN:
    c->draining = 1;
    return conn_teardown(c, "connection dropped");
  case NGTCP2_ERR_DISCARD_PKT:
    return 0;
  default:
    return conn_fail(c, rv, "cannot read packet");
  }
}

static int on_datagram(void *arg, const uint8_t *pkt, size_t len,
                       const struct sockaddr *src, socklen_t srclen) {
  wrk_conn *c = arg;
  (void)srclen;
  if (!qp_addr_equal((const struct sockaddr *)&c->peer, src)) {
    c->pool->st.dropped_datagrams++;
    return 0;
  }
  return wrk_conn_feed(c, pkt, len);
}

/* ---- write path ---------------------------------------------------------- */

void wrk_conn_dirty(wrk_conn *c) {
  if (c->dirty || c->closing)
    return;
  c->dirty = 1;
  wrk_list_push(&c->pool->dirty, &c->dirty_link);
  wrk_pool_want_flush(c->pool);
}

void wrk_conn_want_send(wrk_conn *c, wrk_stream *s) {
  if (!c || c->closing)
    return;
  if (!s->in_tx && !s->blocked && !s->tx_stopped) {
    s->in_tx = 1;
    wrk_list_push(&c->tx_streams, &s->tx_link);
  }
  wrk_conn_dirty(c);
}

void wrk_conn_credit(wrk_conn *c, size_t n) {
  if (!c || c->closing || n == 0)
    return;
  ngtcp2_conn_extend_max_offset(c->qc, n);
  wrk_conn_dirty(c);
}

void wrk_conn_consumed(wrk_conn *c, int64_t sid, size_t n) {
  if (!c || c->closing || n == 0)
    return;
  ngtcp2_conn_extend_max_stream_offset(c->qc, sid, n);
  ngtcp2_conn_extend_max_offset(c->qc, n);
  wrk_conn_dirty(c);
}

void wrk_conn_describe(wrk_conn *c, struct wrk_conn_info *ci) {
  memset(ci, 0, sizeof(*ci));
  qp_addr_format((struct sockaddr *)&c->local, ci->local, sizeof(ci->local));
  qp_addr_format((struct sockaddr *)&c->peer, ci->remote, sizeof(ci->remote));
  gnutls_datum_t alpn;
  if (gnutls_alpn_get_selected_protocol(c->tls, &alpn) == 0) {
    size_t n = alpn.size < sizeof(ci->alpn) ? alpn.size : sizeof(ci->alpn) - 1;
    memcpy(ci->alpn, alpn.data, n);
  }
  const char *v = gnutls_protocol_get_name(gnutls_protocol_get_version(c->tls));
  const char *suite = gnutls_ciphersuite_get(c->tls); /* the IANA name */
  if (!suite)
    suite = gnutls_cipher_get_name(gnutls_cipher_get(c->tls));
  ci->version = v ? v : "";
  ci->cipher = suite ? suite : "";
  ngtcp2_conn_stat cs;
  ngtcp2_conn_get_conn_stat(c->qc, &cs);
  ci->rtt_ns = cs.smoothed_rtt;
  ci->cc_algo = c->cc_algo;
  ci->cwnd = cs.cwnd;
  ci->bytes_in_flight = cs.bytes_in_flight;
  double pace = cs.pacing_rate * NGTCP2_SECONDS; /* ngtcp2: bytes per ns */
  ci->pacing_rate_sec = pace >= 1e19 ? UINT64_MAX
                        : pace > 0   ? (uint64_t)pace
                                     : 0;
  ci->delivery_rate_sec = cs.delivery_rate_sec;
  ci->pacing_waits = c->pacing_waits;
  ci->max_burst = c->max_burst;
  ci->read_ahead = c->tx_limit;
  unsigned n = 0;
  const gnutls_datum_t *chain = gnutls_certificate_get_peers(c->tls, &n);
  size_t bytes = 0;
  for (unsigned i = 0; chain && i < n; i++) {
    if (ci->ncerts == QP_CONN_CERTS_MAX || chain[i].size == 0 ||
        chain[i].size > QP_CONN_CHAIN_MAX - bytes) {
      ci->truncated = 1;
      break;
    }
    ci->certs[ci->ncerts].der = chain[i].data;
    ci->certs[ci->ncerts].len = chain[i].size;
    ci->ncerts++;
    bytes += chain[i].size;
  }
}

static void tx_unlink(wrk_stream *s) {
  if (s->in_tx) {
    s->in_tx = 0;
    wrk_list_del(&s->tx_link);
  }
}

/* Sends the batch; keeps what the kernel refused for when it is writable. */
/* Counts a send into the current burst (sends less than WRK_BURST_GAP_NS
 * apart) and keeps the largest. */
static void note_tx(wrk_conn *c, size_t len) {
  uint64_t now = wrk_now();
  if (now - c->last_tx_ns >= WRK_BURST_GAP_NS)
    c->run_bytes = 0;
  c->run_bytes += len;
  c->last_tx_ns = now;
  if (c->run_bytes > c->max_burst)
    c->max_burst = c->run_bytes;
}

static int flush_batch(wrk_conn *c, const uint8_t *buf, size_t len,
                       size_t seg) {
  int rc = wrk_udp_send(c->fd, buf, len, seg);
  if (rc == 0)
    note_tx(c, len);
  if (rc == -EAGAIN && !c->pending) {
    c->pending = malloc(len);
    if (!c->pending)
      return 0; /* lost: QUIC retransmits */
    memcpy(c->pending, buf, len);
    c->pending_len = len;
    c->pending_seg = seg;
    c->poll_events |= UV_WRITABLE;
    uv_poll_start(&c->poll, c->poll_events, on_conn_io);
    return -EAGAIN;
  }
  /* other errors (ECONNREFUSED from ICMP...) count as loss */
  return 0;
}

static void arm_timer(wrk_conn *c) {
  ngtcp2_tstamp exp = ngtcp2_conn_get_expiry(c->qc);
  if (exp == UINT64_MAX) {
    uv_timer_stop(&c->timer);
    return;
  }
  uint64_t now = wrk_now();
  uint64_t ms = exp <= now ? 0 : (exp - now + 999999) / 1000000;
  uv_timer_start(&c->timer, on_conn_timer, ms, 0);
}

/* The read-ahead of the connection's streams follows its congestion window
 * (twice it, so that the next window is ready), within the pool's bounds. */
static void conn_update_tx_limit(wrk_conn *c) {
  ngtcp2_conn_stat cs;
  ngtcp2_conn_get_conn_stat(c->qc, &cs);
  uint64_t l = 2 * cs.cwnd, cap = c->pool->cfg.set.max_stream_window;
  if (l < qp_stream_window_init(cap))
    l = qp_stream_window_init(cap);
  c->tx_limit = l < cap ? l : cap;
}

/* Whether ngtcp2 wrote nothing because of the pacing deadline: data to
 * send, room in the congestion window and connection credit. */
static int conn_paced(wrk_conn *c) {
  ngtcp2_conn_stat cs;
  ngtcp2_conn_get_conn_stat(c->qc, &cs);
  return cs.bytes_in_flight + c->max_payload <= cs.cwnd &&
         ngtcp2_conn_get_max_data_left(c->qc) > 0;
}

/* Returns 1 if the write pass stopped with work left (budget), else 0. */
static int conn_write(wrk_conn *c) {
  if (c->closing || c->draining)
    return 0;
  if (c->pending_len) {
    int rc = wrk_udp_send(c->fd, c->pending, c->pending_len, c->pending_seg);
    if (rc == -EAGAIN)
      return 0;
    if (rc == 0)
      note_tx(c, c->pending_len);
    free(c->pending);
    c->pending = NULL;
    c->pending_len = 0;
    c->poll_events &= ~UV_WRITABLE;
    uv_poll_start(&c->poll, c->poll_events, on_conn_io);
  }
  uint8_t *buf = c->pool->txbuf;
  /* Until the handshake is done the peer's max_udp_payload_size is unknown:
   * keep datagrams (and the padded client Initial) at 1200 bytes, which
   * every QUIC stack accepts. */
  size_t mp = c->handshake_done ? c->max_payload : NGTCP2_MAX_UDP_PAYLOAD_SIZE;
  size_t off = 0, seg = 0;
  int sends = 0, more = 0;
  uint64_t ts = wrk_now();
  ngtcp2_pkt_info pi;
  /* Pacing, as ngtcp2 documents it: at most one send quantum (the
   * controller's, 64 KiB for CUBIC) goes out between two calls of
   * ngtcp2_conn_update_pkt_tx_time, which sets the deadline of the next
   * packet from the pacing rate; until then ngtcp2_conn_writev_stream
   * writes ACKs only and returns 0, and ngtcp2_conn_get_expiry (our timer)
   * includes the deadline. */
  size_t quantum = ngtcp2_conn_get_send_quantum(c->qc);
  size_t burst = 0; /* bytes since the last update_pkt_tx_time */
  if (quantum < mp)
    quantum = mp;

  for (;;) {
    wrk_stream *s = NULL;
    ngtcp2_vec vec[16];
    size_t vcnt = 0;
    int64_t sid = -1;
    uint32_t flags = NGTCP2_WRITE_STREAM_FLAG_MORE;
    int fin = 0;
    if (!wrk_list_empty(&c->tx_streams)) {
      s = wrk_container(c->tx_streams.next, wrk_stream, tx_link);
      sid = s->sid;
      size_t unsent = s->tx.bytes - s->tx_sent;
      vcnt = wrk_bufq_iov(&s->tx, s->tx_sent, unsent, (struct iovec *)vec, 16);
      if (s->tx_eof && !s->tx_fin_sent) {
        size_t covered = 0;
        for (size_t i = 0; i < vcnt; i++)
          covered += vec[i].len;
        if (covered == unsent) {
          fin = 1;
          flags |= NGTCP2_WRITE_STREAM_FLAG_FIN;
        }
      }
      if (vcnt == 0 && !fin) { /* nothing to send after all */
        tx_unlink(s);
        continue;
      }
    }
    ngtcp2_ssize ndatalen = -1;
    ngtcp2_ssize n = ngtcp2_conn_writev_stream(
        c->qc, NULL, &pi, buf + off, mp, &ndatalen, flags, sid, vec, vcnt, ts);
    if (n < 0) {
      switch (n) {
      case NGTCP2_ERR_STREAM_DATA_BLOCKED:
        s->blocked = 1;
        tx_unlink(s);
        continue;
      case NGTCP2_ERR_STREAM_SHUT_WR: /* the peer's STOP_SENDING reset it */
        tx_unlink(s);
        wrk_stream_on_write_shut(s);
        continue;
      case NGTCP2_ERR_STREAM_NOT_FOUND:
        tx_unlink(s);
        continue;
      case NGTCP2_ERR_WRITE_MORE:
        if (ndatalen > 0)
          s->tx_sent += (size_t)ndatalen;
        if (s->tx_sent == s->tx.bytes && (!s->tx_eof || fin)) {
          if (fin)
            s->tx_fin_sent = 1;
          tx_unlink(s);
        }
        continue;
      default:
        conn_fail(c, (int)n, "cannot write packet");
        return 0;
      }
    }
    if (s && ndatalen >= 0) {
      s->tx_sent += (size_t)ndatalen;
      size_t unsent = s->tx.bytes - s->tx_sent;
      if (fin && unsent == 0)
        s->tx_fin_sent = 1;
      if (unsent == 0 && (!s->tx_eof || s->tx_fin_sent)) {
        tx_unlink(s);
      } else if (s->in_tx) { /* packet full: next stream first */
        wrk_list_del(&s->tx_link);
        wrk_list_push(&c->tx_streams, &s->tx_link);
      }
    }
    if (n == 0) { /* congestion-limited, paced, or nothing left to send */
      if (s && conn_paced(c))
        c->pacing_waits++;
      break;
    }
    burst += (size_t)n;
    if (off > 0 && (size_t)n > seg) {
      /* GSO needs equal segments (the last may be shorter): send what we
       * have and start a new batch with this larger packet */
      int rc = flush_batch(c, buf, off, seg);
      memmove(buf, buf + off, (size_t)n);
      off = 0;
      if (rc == -EAGAIN)
        break; /* this packet counts as lost: QUIC retransmits its data */
      sends++;
    }
    if (off == 0)
      seg = (size_t)n;
    off += (size_t)n;
    int quantum_done = burst >= quantum;
    if (quantum_done || (size_t)n < seg || off + mp > WRK_GSO_BYTES ||
        off / seg >= WRK_GSO_MAX_SEGS) {
      int rc = flush_batch(c, buf, off, seg);
      off = 0;
      if (quantum_done) {
        /* the quantum left: the next one waits for its deadline (ngtcp2
         * allows it at once when that is less than 1 ms away) */
        burst = 0;
        ts = wrk_now();
        ngtcp2_conn_update_pkt_tx_time(c->qc, ts);
      }
      if (rc == -EAGAIN)
        break;
      if (++sends >= WRK_WRITE_SENDS) {
        more = 1;
        break;
      }
    }
  }
  if (off)
    (void)flush_batch(c, buf, off, seg);
  if (burst)
    ngtcp2_conn_update_pkt_tx_time(c->qc, wrk_now());
  conn_update_tx_limit(c);
  arm_timer(c);
  return more;
}

int wrk_conn_write(wrk_conn *c) {
  return conn_write(c);
}

/* ---- libuv callbacks ------------------------------------------------------
 */

static void on_conn_io(uv_poll_t *h, int status, int events) {
  wrk_conn *c = h->data;
  if (c->closing)
    return;
  if (status < 0) {
    /* libuv reports POLLERR as UV_EBADF and stops the handle: the socket
     * holds an error, e.g. from an ICMP port unreachable; SO_ERROR says
     * which (and clears it) */
    int e = wrk_udp_socket_error(c->fd);
    if (e == 0) { /* already read by the receive path */
      uv_poll_start(&c->poll, c->poll_events, on_conn_io);
      return;
    }
    conn_teardown(c, wrk_udp_error_text(e));
    return;
  }
  if (events & UV_WRITABLE)
    wrk_conn_dirty(c);
  if (events & UV_READABLE) {
    /* a few batches, then let the write pass send ACKs and credit: the
     * socket stays readable and the loop comes back at once */
    int rc = wrk_udp_recv(c->fd, c->pool->rx, 2, on_datagram, c);
    if (wrk_udp_is_unreachable(rc)) {
      conn_teardown(c, wrk_udp_error_text(rc));
      return;
    }
  }
}

static void on_conn_timer(uv_timer_t *t) {
  wrk_conn *c = t->data;
  if (c->closing)
    return;
  int rv = ngtcp2_conn_handle_expiry(c->qc, wrk_now());
  if (rv == NGTCP2_ERR_IDLE_CLOSE) {
    c->draining = 1;
    conn_teardown(c, c->handshake_done ? "idle timeout (peer silent)"
                                       : "handshake timed out");
    return;
  }
  if (rv != 0) {
    conn_fail(c, rv, "timer");
    return;
  }
  wrk_conn_dirty(c);
}

int wrk_conn_open_stream(wrk_conn *c, wrk_stream *s) {
  int64_t sid;
  int rv = ngtcp2_conn_open_bidi_stream(c->qc, &sid, s);
  if (rv != 0)
    return rv == NGTCP2_ERR_STREAM_ID_BLOCKED ? -EAGAIN : -ENOMEM;
  s->sid = sid;
  s->conn = c;
  wrk_list_push(&c->streams, &s->conn_link);
  return 0;
}
