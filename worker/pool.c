/* A pool of np-quic streams: the client manager (dial, fill, adjust), the
 * server's ID assignment, idle streams, and the waiters of IncomingGet and
 * OutgoingGet, woken the moment their stream exists. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "shared/addr.h"
#include "shared/duration.h"
#include "shared/log.h"
#include "shared/pool_params.h"
#include "worker/internal.h"
#include "worker/tls.h"

#define WRK_OWN_HANDLES 5 /* tick, setup_timer, deferred, flusher, kick */

static void on_tick(uv_timer_t *t);
static void on_setup_timer(uv_timer_t *t);
static void on_deferred(uv_idle_t *h);
static void on_flush(uv_prepare_t *h);
static void on_kick(uv_idle_t *h) {
  (void)h;
}
static void open_streams(wrk_pool *p);
static void waiters_offer(wrk_pool *p, wrk_stream *s);

void wrk_pool_config_init(struct wrk_pool_config *cfg, enum wrk_role role) {
  memset(cfg, 0, sizeof(*cfg));
  cfg->role = role;
  snprintf(cfg->name, sizeof(cfg->name), "%s",
           role == WRK_SERVER ? "server" : "client");
  qp_pool_settings_defaults(&cfg->set);
  qp_ipfilter_init(&cfg->client_ip);
}

static int dup_str(char **dst, const char *src) {
  if (!src)
    return 0;
  *dst = strdup(src);
  return *dst ? 0 : -ENOMEM;
}

static void pool_free(wrk_pool *p) {
  wrk_tls_free(p->tls);
  wrk_idmap_free(&p->ids);
  free(p->ca_file);
  free(p->cert_file);
  free(p->key_file);
  free(p->alpn);
  free(p->setup_payload);
  free(p->rx);
  free(p->txbuf);
  free(p);
}

int wrk_pool_new(uv_loop_t *loop, const struct wrk_pool_config *cfg,
                 wrk_pool **out, char *err, size_t errlen) {
  char dummy[8];
  if (!err) {
    err = dummy;
    errlen = sizeof(dummy);
  }
  err[0] = 0;
  if (cfg->role != WRK_CLIENT && cfg->role != WRK_SERVER) {
    snprintf(err, errlen, "pool role must be client or server");
    return -EINVAL;
  }
  if (!qp_stream_window_ok(cfg->set.max_stream_window)) {
    snprintf(err, errlen, "max_stream_window %llu is out of range",
             (unsigned long long)cfg->set.max_stream_window);
    return -EINVAL;
  }
  if (!qp_cc_name(cfg->set.cc_algo)) {
    snprintf(err, errlen, "unknown congestion controller %d", cfg->set.cc_algo);
    return -EINVAL;
  }
  wrk_pool *p = calloc(1, sizeof(*p));
  if (!p) {
    snprintf(err, errlen, "out of memory");
    return -ENOMEM;
  }
  p->loop = loop;
  p->cfg = *cfg;
  p->lfd = -1;
  if (dup_str(&p->ca_file, cfg->ca_file) ||
      dup_str(&p->cert_file, cfg->cert_file) ||
      dup_str(&p->key_file, cfg->key_file) || dup_str(&p->alpn, cfg->alpn)) {
    pool_free(p);
    snprintf(err, errlen, "out of memory");
    return -ENOMEM;
  }
  p->cfg.ca_file = p->ca_file;
  p->cfg.cert_file = p->cert_file;
  p->cfg.key_file = p->key_file;
  p->cfg.alpn = p->alpn;
  if (cfg->setup_payload_len) {
    p->setup_payload = malloc(cfg->setup_payload_len);
    if (!p->setup_payload) {
      pool_free(p);
      return -ENOMEM;
    }
    memcpy(p->setup_payload, cfg->setup_payload, cfg->setup_payload_len);
  }
  p->cfg.setup_payload = p->setup_payload;
  if (!p->cfg.set.setup_timeout_ns) /* engine tests: 0 is the default */
    p->cfg.set.setup_timeout_ns = qp_settings[QP_SET_SETUP_TIMEOUT].def;

  if (cfg->role == WRK_CLIENT) {
    qp_rules_normalize(&p->rules, cfg->set.min_cap, cfg->set.max_cap,
                       cfg->set.min_ivl_ns, cfg->set.max_ivl_ns);
    p->cfg.set.min_cap = p->rules.min_cap;
    p->cfg.set.max_cap = p->rules.max_cap;
    p->capacity = p->rules.min_cap;
    p->interval = p->rules.min_ivl;
  } else {
    if (p->cfg.set.max_cap <= 0)
      p->cfg.set.max_cap = 1;
    p->capacity = p->cfg.set.max_cap;
  }

  struct wrk_tls_pem pem = {cfg->cert_pem, cfg->cert_pem_len,
                            cfg->key_pem,  cfg->key_pem_len,
                            cfg->ca_pem,   cfg->ca_pem_len};
  int rc =
      cfg->role == WRK_SERVER
          ? wrk_tls_server_new(&p->tls, p->cert_file, p->key_file, &pem,
                               p->alpn, err, errlen)
          : wrk_tls_client_new(&p->tls, cfg->set.tls_mode, p->cfg.set.hostname,
                               p->ca_file, &pem, p->alpn, err, errlen);
  p->cfg.cert_pem = p->cfg.key_pem = p->cfg.ca_pem = NULL; /* not kept */
  if (rc < 0) {
    pool_free(p);
    return rc;
  }
  p->rnd_used = sizeof(p->rnd);
  p->rx = malloc(sizeof(*p->rx));
  p->txbuf = malloc(65536 + 16384);
  int have_secret =
      cfg->reset_secret && cfg->reset_secret_len == sizeof(p->secret);
  if (have_secret)
    memcpy(p->secret, cfg->reset_secret, sizeof(p->secret));
  p->cfg.reset_secret = NULL; /* not kept */
  if (!p->rx || !p->txbuf ||
      (!have_secret &&
       gnutls_rnd(GNUTLS_RND_RANDOM, p->secret, sizeof(p->secret)) < 0)) {
    pool_free(p);
    snprintf(err, errlen, "out of memory");
    return -ENOMEM;
  }
  wrk_list_init(&p->conns);
  wrk_list_init(&p->setup_streams);
  wrk_list_init(&p->idle);
  wrk_list_init(&p->waiters);
  wrk_list_init(&p->done_waiters);
  wrk_list_init(&p->dirty);
  wrk_idmap_init(&p->ids);

  if (cfg->role == WRK_SERVER && !cfg->external_listener &&
      (rc = wrk_listener_open(p, err, errlen)) < 0) {
    pool_free(p);
    return rc;
  }
  uv_timer_init(loop, &p->tick);
  uv_timer_init(loop, &p->setup_timer);
  uv_idle_init(loop, &p->deferred);
  uv_prepare_init(loop, &p->flusher);
  uv_idle_init(loop, &p->kick);
  p->tick.data = p->setup_timer.data = p->deferred.data = p;
  p->flusher.data = p->kick.data = p;
  p->handles_open = WRK_OWN_HANDLES + (p->lfd >= 0);
  *out = p;
  return 0;
}

int wrk_pool_start(wrk_pool *p) {
  if (p->closing)
    return -ECANCELED;
  if (p->started)
    return 0;
  p->started = 1;
  if (p->cfg.role == WRK_CLIENT)
    uv_timer_start(&p->tick, on_tick, 0, 0);
  else if (p->lfd >= 0)
    wrk_listener_start(p);
  return 0;
}

/* ---- flushing connections once per loop turn ------------------------------
 */

void wrk_pool_want_flush(wrk_pool *p) {
  if (!uv_is_closing((uv_handle_t *)&p->flusher))
    uv_prepare_start(&p->flusher, on_flush);
}

static void on_flush(uv_prepare_t *h) {
  wrk_pool *p = h->data;
  struct wrk_list todo, again;
  if (p->want_open) {
    p->want_open = 0;
    open_streams(p);
  }
  wrk_list_init(&todo);
  wrk_list_init(&again);
  if (!wrk_list_empty(&p->dirty)) { /* take the whole list */
    todo.next = p->dirty.next;
    todo.prev = p->dirty.prev;
    todo.next->prev = &todo;
    todo.prev->next = &todo;
    wrk_list_init(&p->dirty);
  }
  while (!wrk_list_empty(&todo)) {
    wrk_conn *c = wrk_container(todo.next, wrk_conn, dirty_link);
    wrk_list_del(&c->dirty_link);
    c->dirty = 0;
    if (wrk_conn_write(c) && !c->closing && !c->dirty) {
      c->dirty = 1;
      wrk_list_push(&again, &c->dirty_link);
    }
  }
  while (!wrk_list_empty(&again)) {
    struct wrk_list *n = again.next;
    wrk_list_del(n);
    wrk_list_push(&p->dirty, n);
  }
  if (wrk_list_empty(&p->dirty)) {
    uv_prepare_stop(&p->flusher);
    uv_idle_stop(&p->kick);
  } else {
    uv_idle_start(&p->kick, on_kick); /* do not block in poll */
  }
}

/* ---- client manager --------------------------------------------------------
 */

static void set_error(wrk_pool *p, const char *why) {
  if (why != p->last_error)
    snprintf(p->last_error, sizeof(p->last_error), "%s", why);
}

/* A connection attempt failed: say why (rate-limited) and try again after
 * the back-off (worker/retry.h). */
static void retry_later(wrk_pool *p, const char *peer, const char *why) {
  set_error(p, why);
  uint64_t ns = wrk_retry_failed_log(&p->retry, wrk_now(), p->cfg.name, peer,
                                     p->last_error);
  if (!p->closing) {
    uv_timer_stop(&p->tick);
    uv_timer_start(&p->tick, on_tick, ns / 1000000, 0);
  }
}

static void finish_round(wrk_pool *p) {
  if (!p->round_active || p->round_want > 0 || p->round_pending > 0)
    return;
  p->round_active = 0;
  p->capacity =
      qp_rules_next_capacity(&p->rules, p->capacity, p->round_created);
  if (!p->closing)
    uv_timer_start(&p->tick, on_tick, p->interval / 1000000, 0);
}

static int dial(wrk_pool *p) {
  char a[QP_ADDR_STRLEN];
  int fd = socket(p->cfg.target.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return -errno;
  if (connect(fd, (struct sockaddr *)&p->cfg.target, p->cfg.target_len) < 0 ||
      wrk_udp_setup(fd) < 0) {
    int e = -errno;
    close(fd);
    char msg[200];
    snprintf(msg, sizeof(msg), "cannot reach %s: %s",
             qp_addr_format((struct sockaddr *)&p->cfg.target, a, sizeof(a)),
             strerror(-e));
    set_error(p, msg);
    return e;
  }
  int rc = wrk_conn_client_new(p, fd, &p->conn);
  if (rc < 0) {
    p->conn = NULL;
    set_error(p, "cannot create a QUIC connection");
  }
  return rc;
}

static void on_tick(uv_timer_t *t) {
  wrk_pool *p = t->data;
  if (p->closing || p->round_active)
    return;
  if (!p->conn && p->cfg.dial) {
    if (!p->dial_seq) {
      p->dial_seq = ++p->st.dials;
      p->cfg.dial(p, p->dial_seq, p->cfg.dial_arg);
    }
    return; /* wrk_pool_dial_done continues */
  }
  if (!p->conn) {
    if (dial(p) < 0) {
      p->st.conns_failed++;
      retry_later(p, NULL, p->last_error);
    }
    return; /* the handshake (or its failure) ticks again */
  }
  if (!p->conn->handshake_done)
    return;
  p->interval =
      qp_rules_next_interval(&p->rules, p->interval, p->nidle, p->capacity);
  p->round_active = 1;
  p->round_want = p->capacity - p->nidle;
  if (p->round_want < 0)
    p->round_want = 0;
  p->round_pending = 0;
  p->round_created = 0;
  open_streams(p);
  finish_round(p);
}

static void open_streams(wrk_pool *p) {
  wrk_conn *c = p->conn;
  if (!c || !p->round_active || p->closing)
    return;
  while (p->round_want > 0 && ngtcp2_conn_get_streams_bidi_left(c->qc) > 0) {
    wrk_stream *s = wrk_stream_new(p, NULL, -1);
    if (!s)
      break;
    if (wrk_conn_open_stream(c, s) < 0) {
      wrk_stream_end(s, 0);
      break;
    }
    static const uint8_t zero = 0;
    const uint8_t *pl = p->setup_payload ? p->setup_payload : &zero;
    size_t pll = p->setup_payload ? p->cfg.setup_payload_len : 1;
    if (p->cfg.setup_silent) { /* test knob: a MAX_STREAM_DATA frame makes
                                  the stream known to the peer, no byte */
      pll = 0;
      ngtcp2_conn_extend_max_stream_offset(
          c->qc, s->sid, qp_stream_window_init(p->cfg.set.max_stream_window));
    }
    if (pll && wrk_stream_tx_append(s, pl, pll) < 0) {
      wrk_stream_end(s, 0);
      break;
    }
    s->setup_deadline = wrk_now() + p->cfg.set.setup_timeout_ns;
    wrk_list_push(&p->setup_streams, &s->link);
    p->round_want--;
    p->round_pending++;
    wrk_conn_want_send(c, s);
  }
  wrk_pool_arm_setup_timer(p);
}

void wrk_pool_dial_done(wrk_pool *p, uint64_t seq, int fd, const char *err) {
  if (p->closing || seq != p->dial_seq || p->conn) {
    if (fd >= 0)
      close(fd);
    return;
  }
  p->dial_seq = 0;
  int rc = fd >= 0 ? wrk_udp_setup(fd) : fd;
  if (rc == 0)
    rc = wrk_conn_client_new(p, fd, &p->conn); /* owns fd now */
  else if (fd >= 0)
    close(fd);
  if (rc < 0) {
    p->conn = NULL;
    p->st.conns_failed++;
    retry_later(p, NULL, err && *err ? err : "cannot create a QUIC connection");
  }
}

int wrk_pool_adopt(wrk_pool *p, int fd, const uint8_t *const *dgrams,
                   const size_t *lens, size_t n) {
  struct sockaddr_storage peer;
  socklen_t pl = sizeof(peer);
  wrk_conn *c = NULL;
  if (p->closing || p->cfg.role != WRK_SERVER || n == 0 ||
      getpeername(fd, (struct sockaddr *)&peer, &pl) < 0 ||
      wrk_udp_setup(fd) < 0) {
    close(fd);
    return p->closing ? -ECANCELED : -EINVAL;
  }
  int rc = wrk_conn_server_new(p, fd, dgrams[0], lens[0],
                               (struct sockaddr *)&peer, pl, &c);
  if (rc < 0)
    return rc; /* fd closed by the connection */
  for (size_t i = 1; i < n; i++)
    if (wrk_conn_feed(c, dgrams[i], lens[i]) < 0)
      break;
  return 0;
}

int wrk_pool_datagram(wrk_pool *p, const struct sockaddr *peer,
                      const uint8_t *data, size_t len) {
  for (struct wrk_list *n = p->conns.next; n != &p->conns; n = n->next) {
    wrk_conn *c = wrk_container(n, wrk_conn, link);
    if (qp_addr_equal((struct sockaddr *)&c->peer, peer)) {
      (void)wrk_conn_feed(c, data, len);
      return 0;
    }
  }
  p->st.dropped_datagrams++;
  return -ENOENT;
}

void wrk_pool_conn_streams_left(wrk_pool *p, wrk_conn *c) {
  if (c == p->conn && p->round_want > 0) {
    p->want_open = 1; /* not from inside an ngtcp2 callback */
    wrk_pool_want_flush(p);
  }
}

void wrk_pool_conn_handshake(wrk_pool *p, wrk_conn *c) {
  p->st.conns_accepted++;
  if (p->cfg.role == WRK_CLIENT && c == p->conn) {
    p->st.connected = 1;
    p->last_error[0] = 0;
    const ngtcp2_transport_params *rp =
        ngtcp2_conn_get_remote_transport_params(c->qc);
    char idle[32], again[64] = "";
    qp_duration_format(
        qp_idle_timeout_effective(qp_pool_idle_timeout_ns(&p->cfg.set),
                                  rp ? rp->max_idle_timeout : 0),
        idle, sizeof(idle));
    uint64_t failed = wrk_retry_succeeded(&p->retry);
    if (failed)
      snprintf(again, sizeof(again), " again after %llu failed attempts",
               (unsigned long long)failed);
    qp_info("pool %s: connected%s (%s, %s, idle timeout %s)", p->cfg.name,
            again,
            gnutls_protocol_get_name(gnutls_protocol_get_version(c->tls)),
            gnutls_cipher_get_name(gnutls_cipher_get(c->tls)), idle);
    if (!p->closing)
      uv_timer_start(&p->tick, on_tick, 0, 0);
  }
}

void wrk_pool_conn_closed(wrk_pool *p, wrk_conn *c, const char *why) {
  char a[QP_ADDR_STRLEN];
  if (c->handshake_done)
    p->st.conns_closed++;
  else
    p->st.conns_failed++;
  if (p->cfg.role == WRK_SERVER || c != p->conn) {
    qp_debug("pool %s: connection from %s closed: %s", p->cfg.name,
             qp_addr_format((struct sockaddr *)&c->peer, a, sizeof(a)), why);
    return;
  }
  p->conn = NULL;
  p->st.connected = 0;
  set_error(p, why);
  qp_addr_format((struct sockaddr *)&c->peer, a, sizeof(a));
  if (!p->closing && c->handshake_done)
    qp_warn("pool %s: connection to %s lost: %s", p->cfg.name, a, why);
  p->round_want = 0;
  finish_round(p); /* pending setups already failed with the connection */
  if (p->closing)
    return;
  if (!c->handshake_done) { /* a failed attempt: back off */
    retry_later(p, a, why);
  } else { /* lost: the first retry after 500 ms */
    uv_timer_stop(&p->tick);
    uv_timer_start(&p->tick, on_tick, WRK_RETRY_FIRST_NS / 1000000, 0);
  }
}

/* ---- streams: setup results ------------------------------------------------
 */

void wrk_pool_arm_setup_timer(wrk_pool *p) {
  if (wrk_list_empty(&p->setup_streams) || p->closing) {
    uv_timer_stop(&p->setup_timer);
    return;
  }
  wrk_stream *s = wrk_container(p->setup_streams.next, wrk_stream, link);
  uint64_t now = wrk_now();
  uint64_t ms = s->setup_deadline <= now
                    ? 0
                    : (s->setup_deadline - now + 999999) / 1000000;
  uv_timer_start(&p->setup_timer, on_setup_timer, ms, 0);
}

static void on_setup_timer(uv_timer_t *t) {
  wrk_pool *p = t->data;
  uint64_t now = wrk_now();
  while (!wrk_list_empty(&p->setup_streams)) {
    wrk_stream *s = wrk_container(p->setup_streams.next, wrk_stream, link);
    if (s->setup_deadline > now)
      break;
    wrk_pool_stream_failed(p, s,
                           p->cfg.role == WRK_SERVER
                               ? "no setup byte before the setup timeout"
                               : "no ID before the setup timeout");
  }
  wrk_pool_arm_setup_timer(p);
}

void wrk_pool_peer_stream(wrk_pool *p, wrk_conn *c, int64_t sid) {
  wrk_stream *s = p->closing ? NULL : wrk_stream_new(p, c, sid);
  if (!s) {
    ngtcp2_conn_shutdown_stream(c->qc, sid, 0);
    return;
  }
  ngtcp2_conn_set_stream_user_data(c->qc, sid, s);
  s->setup_deadline = wrk_now() + p->cfg.set.setup_timeout_ns;
  wrk_list_push(&p->setup_streams, &s->link);
  if (wrk_list_empty(&p->setup_streams) || p->setup_streams.next == &s->link)
    wrk_pool_arm_setup_timer(p);
}

void wrk_pool_stream_failed(wrk_pool *p, wrk_stream *s, const char *why) {
  p->st.streams_failed++;
  qp_debug("pool %s: stream %lld setup failed: %s", p->cfg.name,
           (long long)s->sid, why ? why : "?");
  int was_round = p->cfg.role == WRK_CLIENT && s->state == WS_SETUP;
  wrk_stream_end(s, 0);
  if (was_round && p->round_pending > 0) {
    p->round_pending--;
    finish_round(p);
  }
}

static int new_server_id(wrk_pool *p, uint32_t *id) {
  if (p->ids_assigned == 0) {
    *id = WRK_ID_CONTROL;
    return 0;
  }
  for (int tries = 0; tries < 64; tries++) {
    if (p->rnd_used + 4 > sizeof(p->rnd)) { /* refill in bulk: cheaper */
      if (gnutls_rnd(GNUTLS_RND_NONCE, p->rnd, sizeof(p->rnd)) < 0)
        return -EIO;
      p->rnd_used = 0;
    }
    const uint8_t *b = p->rnd + p->rnd_used;
    p->rnd_used += 4;
    uint32_t v = (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 |
                 (uint32_t)b[2] << 8 | b[3];
    if (v != WRK_ID_CONTROL && !wrk_idmap_get(&p->ids, v)) {
      *id = v;
      return 0;
    }
  }
  return -EAGAIN;
}

int wrk_pool_stream_ready(wrk_pool *p, wrk_stream *s) {
  uint32_t id;
  if (p->cfg.role == WRK_SERVER) {
    if (p->nidle >= p->cfg.set.max_cap) {
      p->st.streams_refused++;
      wrk_stream_end(s, 0); /* full: close it, send no ID */
      return -1;
    }
    if (new_server_id(p, &id) < 0) {
      wrk_pool_stream_failed(p, s, "no free ID");
      return -1;
    }
    uint8_t b[4] = {(uint8_t)(id >> 24), (uint8_t)(id >> 16),
                    (uint8_t)(id >> 8), (uint8_t)id};
    if (wrk_stream_tx_append(s, b, sizeof(b)) < 0) {
      wrk_pool_stream_failed(p, s, "out of memory");
      return -1;
    }
    p->ids_assigned++;
    wrk_conn_want_send(s->conn, s);
  } else {
    id = s->setup.id;
    wrk_stream *old = wrk_idmap_get(&p->ids, id);
    if (old && old->rx_fin && (old->quic_closed || !old->conn)) {
      /* a finished stream kept idle (e.g. 00000000 of a connection that is
       * gone): the new stream with its ID replaces it */
      qp_warn("pool %s: stream %08x replaces a finished idle one with the "
              "same ID (its %zu unread bytes are dropped)",
              p->cfg.name, id, old->rx.bytes);
      p->st.streams_failed++;
      wrk_stream_end(old, 0);
    }
    if (wrk_idmap_get(&p->ids, id)) {
      p->st.setup_errors++;
      wrk_pool_stream_failed(p, s, "server sent an ID already idle here");
      return -1;
    }
  }
  if (wrk_idmap_put(&p->ids, id, s) < 0) {
    wrk_pool_stream_failed(p, s, "out of memory");
    return -1;
  }
  s->id = id;
  wrk_list_del(&s->link); /* leaves the setup list */
  wrk_list_push(&p->idle, &s->link);
  s->state = WS_IDLE;
  p->nidle++;
  p->st.streams_created++;
  if (p->cfg.role == WRK_CLIENT && p->round_pending > 0) {
    p->round_pending--;
    p->round_created++;
    finish_round(p);
  }
  waiters_offer(p, s);
  return 0;
}

/* ---- waiters ----------------------------------------------------------------
 */

static void on_waiter_closed(uv_handle_t *h) {
  struct wrk_waiter *w = h->data;
  wrk_pool *p = w->pool;
  free(w);
  wrk_pool_release(p);
}

/* Finishes w with a result; its callback runs from the idle handle. */
static void waiter_done(struct wrk_waiter *w, int status, uint32_t id, int fd) {
  wrk_pool *p = w->pool;
  uv_timer_stop(&w->timer);
  wrk_list_del(&w->link);
  w->status = status;
  w->result_id = id;
  w->fd = fd;
  wrk_list_push(&p->done_waiters, &w->link);
  uv_idle_start(&p->deferred, on_deferred);
}

static void on_deferred(uv_idle_t *h) {
  wrk_pool *p = h->data;
  while (!wrk_list_empty(&p->done_waiters)) {
    struct wrk_waiter *w =
        wrk_container(p->done_waiters.next, struct wrk_waiter, link);
    wrk_list_del(&w->link);
    w->cb(p, w->status, w->result_id, w->fd, w->arg);
    uv_close((uv_handle_t *)&w->timer, on_waiter_closed);
  }
  uv_idle_stop(&p->deferred);
}

/* Hands idle stream s to waiter w. Returns 0, or a negative errno (the
 * stream is then gone and w is finished with that error). */
static int hand_over(wrk_pool *p, struct wrk_waiter *w, wrk_stream *s) {
  uint32_t id = s->id;
  int fd = wrk_stream_take(s); /* leaves the pool */
  if (fd < 0) { /* no socketpair (EMFILE, ENOMEM): the stream stays idle,
                   bytes and all, for a later take */
    qp_warn("pool %s: cannot hand stream %08x over: %s", p->cfg.name, id,
            strerror(-fd));
    waiter_done(w, fd, id, -1);
    return fd;
  }
  p->st.streams_taken++;
  waiter_done(w, 0, id, fd);
  return 0;
}

static void waiters_offer(wrk_pool *p, wrk_stream *s) {
  for (struct wrk_list *n = p->waiters.next; n != &p->waiters; n = n->next) {
    struct wrk_waiter *w = wrk_container(n, struct wrk_waiter, link);
    if (w->any || w->id == s->id) {
      hand_over(p, w, s);
      return;
    }
  }
}

static void on_waiter_timeout(uv_timer_t *t) {
  struct wrk_waiter *w = t->data;
  waiter_done(w, -ETIMEDOUT, w->id, -1);
}

static int waiter_add(wrk_pool *p, int any, uint32_t id, uint64_t timeout_ms,
                      wrk_get_cb cb, void *arg) {
  if (!cb)
    return -EINVAL;
  if (p->closing)
    return -ECANCELED;
  struct wrk_waiter *w = calloc(1, sizeof(*w));
  if (!w)
    return -ENOMEM;
  w->pool = p;
  w->any = any;
  w->id = id;
  w->cb = cb;
  w->arg = arg;
  w->fd = -1;
  uv_timer_init(p->loop, &w->timer);
  w->timer.data = w;
  p->handles_open++;
  wrk_list_init(&w->link);
  wrk_list_push(&p->waiters, &w->link);

  wrk_stream *s = NULL;
  if (any) {
    /* only if no earlier IncomingGet waits (FIFO fairness) */
    int earlier = 0;
    for (struct wrk_list *n = p->waiters.next; n != &w->link; n = n->next)
      earlier |= wrk_container(n, struct wrk_waiter, link)->any;
    if (!earlier && !wrk_list_empty(&p->idle))
      s = wrk_container(p->idle.next, wrk_stream, link);
  } else {
    s = wrk_idmap_get(&p->ids, id);
  }
  if (s)
    hand_over(p, w, s);
  else if (timeout_ms == 0)
    waiter_done(w, -ETIMEDOUT, id, -1);
  else {
    uv_update_time(p->loop); /* the loop's clock may be stale here */
    uv_timer_start(&w->timer, on_waiter_timeout, timeout_ms, 0);
  }
  return 0;
}

int wrk_pool_incoming_get(wrk_pool *p, uint64_t timeout_ms, wrk_get_cb cb,
                          void *arg) {
  return waiter_add(p, 1, 0, timeout_ms, cb, arg);
}

int wrk_pool_outgoing_get(wrk_pool *p, uint32_t id, uint64_t timeout_ms,
                          wrk_get_cb cb, void *arg) {
  return waiter_add(p, 0, id, timeout_ms, cb, arg);
}

int wrk_pool_get_cancel(wrk_pool *p, void *arg) {
  for (struct wrk_list *n = p->waiters.next; n != &p->waiters; n = n->next) {
    struct wrk_waiter *w = wrk_container(n, struct wrk_waiter, link);
    if (w->arg == arg) {
      waiter_done(w, -ECANCELED, w->id, -1);
      return 0;
    }
  }
  return -ENOENT;
}

/* ---- simple accessors ------------------------------------------------------
 */

int wrk_pool_ready(const wrk_pool *p) {
  return p->started && !p->closing;
}
int wrk_pool_active(const wrk_pool *p) {
  return p->nidle;
}
int wrk_pool_capacity(const wrk_pool *p) {
  return p->capacity;
}
uint64_t wrk_pool_interval(const wrk_pool *p) {
  return p->cfg.role == WRK_CLIENT ? p->interval : 0;
}
void wrk_pool_add_error(wrk_pool *p) {
  p->errors++;
}
uint64_t wrk_pool_error_count(const wrk_pool *p) {
  return p->errors;
}
void wrk_pool_reset_error(wrk_pool *p) {
  p->errors = 0;
}
const char *wrk_pool_name(const wrk_pool *p) {
  return p->cfg.name;
}
int wrk_pool_cc_algo(const wrk_pool *p) {
  return p->cfg.set.cc_algo;
}
uint64_t wrk_pool_max_stream_window(const wrk_pool *p) {
  return p->cfg.set.max_stream_window;
}
const char *wrk_pool_last_error(const wrk_pool *p) {
  return p->last_error;
}

void wrk_pool_stats(const wrk_pool *p, struct wrk_pool_stats *st) {
  *st = p->st;
}

size_t wrk_pool_idle_ids(const wrk_pool *p, uint32_t *ids, size_t n) {
  size_t i = 0;
  for (struct wrk_list *l = p->idle.next; l != &p->idle && i < n; l = l->next)
    ids[i++] = wrk_container(l, wrk_stream, link)->id;
  return i;
}

/* The open connection that carries stream id: a taken stream's (the newest
 * connection first, its latest stream first), else the idle one's. */
static wrk_conn *stream_conn(wrk_pool *p, uint32_t id) {
  for (struct wrk_list *n = p->conns.prev; n != &p->conns; n = n->prev) {
    wrk_conn *c = wrk_container(n, wrk_conn, link);
    for (struct wrk_list *l = c->streams.prev; l != &c->streams; l = l->prev) {
      wrk_stream *s = wrk_container(l, wrk_stream, conn_link);
      if (s->state == WS_TAKEN && s->id == id)
        return c;
    }
  }
  wrk_stream *s = wrk_idmap_get(&p->ids, id);
  return s ? s->conn : NULL; /* NULL: its connection is gone */
}

int wrk_pool_conn_info(wrk_pool *p, const uint32_t *id,
                       struct wrk_conn_info *ci) {
  wrk_conn *c = NULL;
  if (id) {
    c = stream_conn(p, *id);
    if (!c)
      return -ESRCH;
  } else if (p->cfg.role == WRK_CLIENT) {
    c = p->conn;
  } else {
    for (struct wrk_list *n = p->conns.prev; n != &p->conns && !c; n = n->prev)
      if (wrk_container(n, wrk_conn, link)->handshake_done)
        c = wrk_container(n, wrk_conn, link);
  }
  if (!c || !c->handshake_done || c->closing)
    return -ENOLINK;
  wrk_conn_describe(c, ci);
  return 0;
}

void wrk_pool_flush(wrk_pool *p) {
  while (!wrk_list_empty(&p->idle)) {
    wrk_stream *s = wrk_container(p->idle.next, wrk_stream, link);
    wrk_stream_end(s, 0);
  }
}

/* ---- closing ----------------------------------------------------------------
 */

void wrk_pool_hold(wrk_pool *p) {
  p->handles_open++;
}

void wrk_pool_stream_leaves(wrk_pool *p, wrk_stream *s) {
  if (s->state == WS_IDLE) {
    p->nidle--;
    if (wrk_idmap_get(&p->ids, s->id) == s)
      wrk_idmap_del(&p->ids, s->id);
  }
  wrk_list_del(&s->link);
}

void wrk_pool_release(wrk_pool *p) {
  if (--p->handles_open > 0 || !p->closing)
    return;
  void (*cb)(void *) = p->close_cb;
  void *arg = p->close_arg;
  pool_free(p);
  if (cb)
    cb(arg);
}

static void on_own_handle_closed(uv_handle_t *h) {
  wrk_pool_release(h->data);
}

/* A connection still owes the peer bytes an application handed over: not
 * yet read from its fd, not yet acknowledged, or a FIN not yet sent. */
static int conn_owes_data(wrk_conn *c) {
  for (struct wrk_list *n = c->streams.next; n != &c->streams; n = n->next) {
    wrk_stream *s = wrk_container(n, wrk_stream, conn_link);
    if (s->state != WS_TAKEN || s->tx_stopped)
      continue;
    if (s->tx.bytes > 0 || (s->tx_eof && !s->tx_fin_sent) ||
        wrk_stream_app_pending(s))
      return 1;
  }
  return 0;
}

static void close_finish(wrk_pool *p) {
  while (!wrk_list_empty(&p->conns)) {
    wrk_conn *c = wrk_container(p->conns.next, wrk_conn, link);
    wrk_conn_close(c, "pool closed");
  }
  p->conn = NULL;
  wrk_listener_close(p);
  uv_close((uv_handle_t *)&p->tick, on_own_handle_closed);
  uv_close((uv_handle_t *)&p->setup_timer, on_own_handle_closed);
  uv_close((uv_handle_t *)&p->deferred, on_own_handle_closed);
  uv_close((uv_handle_t *)&p->flusher, on_own_handle_closed);
  uv_close((uv_handle_t *)&p->kick, on_own_handle_closed);
}

/* Lingers (bounded) until written-and-ended streams are acknowledged, so
 * closing a pool loses no byte an application already handed over. */
static void on_linger(uv_timer_t *t) {
  wrk_pool *p = t->data;
  int owed = 0;
  for (struct wrk_list *n = p->conns.next; n != &p->conns && !owed; n = n->next)
    owed = conn_owes_data(wrk_container(n, wrk_conn, link));
  uint64_t now = wrk_now();
  uint64_t progress = p->st.bytes_out + p->acked_total;
  if (progress != p->linger_progress) { /* still moving: keep waiting */
    p->linger_progress = progress;
    p->linger_deadline = now + WRK_LINGER_NS;
  }
  if (owed && now < p->linger_deadline && now < p->linger_cap)
    return;
  if (owed)
    qp_warn("pool %s: closing with unacknowledged stream data (peer %s)",
            p->cfg.name,
            now >= p->linger_cap ? "too slow" : "made no progress for 5 s");
  uv_timer_stop(&p->tick);
  close_finish(p);
}

void wrk_pool_close(wrk_pool *p, void (*cb)(void *arg), void *arg) {
  if (p->closing)
    return;
  p->closing = 1;
  p->close_cb = cb;
  p->close_arg = arg;
  qp_debug("pool %s: closing", p->cfg.name);
  while (!wrk_list_empty(&p->waiters)) {
    struct wrk_waiter *w =
        wrk_container(p->waiters.next, struct wrk_waiter, link);
    waiter_done(w, -ECANCELED, w->id, -1);
  }
  on_deferred(&p->deferred); /* run them now: nothing waits any more */
  wrk_pool_flush(p);
  while (!wrk_list_empty(&p->setup_streams)) {
    wrk_stream *s = wrk_container(p->setup_streams.next, wrk_stream, link);
    wrk_stream_end(s, 0);
  }
  if (p->lfd >= 0)
    uv_poll_stop(&p->lpoll); /* no new connections while lingering */
  p->linger_deadline = wrk_now() + WRK_LINGER_NS;
  p->linger_cap = wrk_now() + WRK_LINGER_CAP_NS;
  p->linger_progress = p->st.bytes_out + p->acked_total;
  uv_timer_stop(&p->tick);
  uv_timer_start(&p->tick, on_linger, 0, 10);
}

int wrk_pool_local_addr(const wrk_pool *p, struct sockaddr_storage *ss,
                        socklen_t *len) {
  if (p->lfd < 0)
    return -ENOTCONN;
  *len = sizeof(*ss);
  return getsockname(p->lfd, (struct sockaddr *)ss, len) < 0 ? -errno : 0;
}
