/* Application sessions: the take path without the supervisor.
 *
 * qpoold authenticates an application (SO_PEERCRED against the pool's allow
 * lists), makes a SOCK_SEQPACKET pair, and gives one end to the application
 * and the other to the pool's worker (MSG_SESSION). On it the application
 * sends control.proto Requests — IncomingGet, OutgoingGet and ConnInfo of
 * that one pool only — and the worker answers each with a Response carrying
 * the stream's fd (or the connection's description): two frames and two
 * processes per take instead of four and three. Session input is untrusted: a
 * malformed frame ends the session; an application that does not read its
 * answers loses its session. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "control.pb-c.h"
#include "shared/ctl_request.h"
#include "shared/frame.h"
#include "shared/log.h"
#include "shared/pool_params.h"
#include "worker/session.h"

#define MAX_SESSIONS 1024
#define MAX_PENDING 4096            /* gets in flight per session */
#define MAX_QUEUED 4096             /* answers waiting for room in the socket */
#define MAX_QUEUED_BYTES (8u << 20) /* ... and their bytes (ConnInfo: KiBs) */

struct get_ctx {
  struct get_ctx *next, *prev; /* the session's gets in flight */
  struct wrk_session *s;
  uint64_t tag;
};

struct out {
  struct out *next;
  uint8_t *frame;
  size_t len;
  int fd; /* the stream, or -1 */
};

struct wrk_session {
  struct wrk_session *next;
  struct wrk_sessions *owner;
  int fd;
  uv_poll_t poll;
  char pool[WRK_NAME_MAX];
  struct get_ctx gets; /* list head */
  int pending;         /* gets whose callback has not run */
  struct out *out, *out_tail;
  int nout;
  size_t out_bytes;
  int gone;   /* closed: callbacks only release it */
  int closed; /* the poll handle's close callback ran */
};

static void on_readable(uv_poll_t *h, int status, int events);

static void maybe_free(struct wrk_session *s) {
  if (s->gone && s->closed && s->pending == 0)
    free(s);
}

static void on_poll_closed(uv_handle_t *h) {
  struct wrk_session *s = h->data;
  s->closed = 1;
  maybe_free(s);
}

static void session_end(struct wrk_session *s, const char *why) {
  if (s->gone)
    return;
  struct wrk_sessions *ss = s->owner;
  if (why)
    qp_info("session of pool %s ended: %s", s->pool, why);
  s->gone = 1;
  for (struct wrk_session **pp = &ss->list; *pp; pp = &(*pp)->next)
    if (*pp == s) {
      *pp = s->next;
      break;
    }
  ss->count--;
  /* its gets in flight are withdrawn: no stream is taken for an
   * application that left (their callbacks run later with ECANCELED) */
  wrk_pool *p = ss->lookup(s->pool, ss->arg);
  for (struct get_ctx *g = s->gets.next; g != &s->gets; g = g->next)
    if (p)
      wrk_pool_get_cancel(p, g);
  while (s->out) { /* answers never delivered: their streams close */
    struct out *o = s->out;
    s->out = o->next;
    if (o->fd >= 0)
      close(o->fd);
    free(o->frame);
    free(o);
  }
  s->out_tail = NULL;
  s->nout = 0;
  s->out_bytes = 0;
  uv_poll_stop(&s->poll);
  close(s->fd);
  s->fd = -1;
  uv_close((uv_handle_t *)&s->poll, on_poll_closed);
}

/* Sends queued answers in order while the socket takes them. */
static void flush_out(struct wrk_session *s) {
  while (s->out) {
    struct out *o = s->out;
    int rc = qp_frame_send_raw(s->fd, o->frame, o->len, o->fd);
    if (rc == -EAGAIN)
      return;
    s->out = o->next;
    if (!s->out)
      s->out_tail = NULL;
    s->nout--;
    s->out_bytes -= o->len;
    if (o->fd >= 0)
      close(o->fd);
    free(o->frame);
    free(o);
    if (rc < 0) {
      session_end(s, strerror(-rc));
      return;
    }
  }
  uv_poll_start(&s->poll, UV_READABLE, on_readable); /* nothing waits */
}

/* Answers a request. When the application's socket is full the answer
 * waits in order (with its stream) until there is room: a slow reader
 * delays its own answers but loses nothing, up to MAX_QUEUED of them
 * (MAX_QUEUED_BYTES together). */
static void respond_msg(struct wrk_session *s, Qpool__Response *r, int fd) {
  if (s->gone)
    return;
  int rc = -EAGAIN;
  if (!s->out)
    rc = qp_frame_send(s->fd, QPOOL__CTL_TYPE__CTL_RESPONSE, &r->base, fd);
  if (rc == 0)
    return;
  if (rc != -EAGAIN) {
    session_end(s, strerror(-rc));
    return;
  }
  if (s->nout >= MAX_QUEUED) {
    session_end(s, "the application does not read its answers");
    return;
  }
  struct out *o = calloc(1, sizeof(*o));
  long len =
      o ? qp_frame_pack(QPOOL__CTL_TYPE__CTL_RESPONSE, &r->base, &o->frame)
        : -ENOMEM;
  o = len < 0 ? (free(o), NULL) : o;
  int dup = o && fd >= 0 ? fcntl(fd, F_DUPFD_CLOEXEC, 0) : -1;
  const char *why = !o || (fd >= 0 && dup < 0) ? "out of memory for its answers"
                    : s->out_bytes + (size_t)len > MAX_QUEUED_BYTES
                        ? "the application does not read its answers"
                        : NULL;
  if (why) {
    if (dup >= 0)
      close(dup);
    if (o)
      free(o->frame);
    free(o);
    session_end(s, why);
    return;
  }
  o->len = (size_t)len;
  s->out_bytes += o->len;
  o->fd = dup;
  if (s->out_tail)
    s->out_tail->next = o;
  else
    s->out = o;
  s->out_tail = o;
  s->nout++;
  uv_poll_start(&s->poll, UV_READABLE | UV_WRITABLE, on_readable);
}

static void respond(struct wrk_session *s, uint64_t tag, int code,
                    const char *msg, int has_id, uint32_t id, int fd) {
  Qpool__Response r;
  qp_ctl_response_init(&r, tag, code, msg, has_id, id);
  respond_msg(s, &r, fd);
}

static void on_get(wrk_pool *p, int status, uint32_t id, int fd, void *arg) {
  (void)p;
  struct get_ctx *g = arg;
  struct wrk_session *s = g->s;
  g->prev->next = g->next;
  g->next->prev = g->prev;
  s->pending--;
  if (status == 0)
    respond(s, g->tag, 0, NULL, 1, id, fd);
  else
    respond(s, g->tag, -status,
            status == -ETIMEDOUT ? "no stream before the timeout"
                                 : strerror(-status),
            0, 0, -1);
  if (fd >= 0)
    close(fd); /* the application holds its copy (or nobody waits) */
  free(g);
  maybe_free(s);
}

int wrk_conn_info_msg(wrk_pool *p, const uint32_t *id,
                      struct wrk_conn_info_msg *out) {
  struct wrk_conn_info *ci = &out->ci;
  Qpool__ConnInfo *m = &out->m;
  qpool__conn_info__init(m);
  out->why[0] = 0;
  int rc = wrk_pool_conn_info(p, id, ci);
  if (rc < 0) {
    char hex[9] = "";
    if (id)
      qp_stream_id_format(*id, hex);
    if (rc == -ESRCH)
      snprintf(out->why, sizeof(out->why),
               "no stream %s on an open connection of pool %s", hex,
               wrk_pool_name(p));
    else
      snprintf(out->why, sizeof(out->why), "pool %s has no connection now",
               wrk_pool_name(p));
    return rc;
  }
  m->local = ci->local;
  m->remote = ci->remote;
  m->alpn = ci->alpn;
  m->version = (char *)ci->version;
  m->cipher = (char *)ci->cipher;
  for (size_t i = 0; i < ci->ncerts; i++) {
    out->certs[i].data = (uint8_t *)ci->certs[i].der;
    out->certs[i].len = ci->certs[i].len;
  }
  m->n_certs = ci->ncerts;
  m->certs = out->certs;
  m->has_truncated = ci->truncated;
  m->truncated = ci->truncated;
  m->has_rtt_ns = 1;
  m->rtt_ns = ci->rtt_ns;
  m->congestion_control = (char *)qp_cc_name(ci->cc_algo);
  m->has_cwnd = m->has_bytes_in_flight = 1;
  m->cwnd = ci->cwnd;
  m->bytes_in_flight = ci->bytes_in_flight;
  m->has_pacing_rate_sec = m->has_delivery_rate_sec = 1;
  m->pacing_rate_sec = ci->pacing_rate_sec;
  m->delivery_rate_sec = ci->delivery_rate_sec;
  m->has_pacing_waits = m->has_max_burst = m->has_read_ahead = 1;
  m->pacing_waits = ci->pacing_waits;
  m->max_burst = ci->max_burst;
  m->read_ahead = ci->read_ahead;
  return 0;
}

static void handle_conn_info(struct wrk_session *s, const Qpool__Request *m,
                             wrk_pool *p) {
  struct wrk_conn_info_msg ci;
  int rc = wrk_conn_info_msg(p, m->has_stream_id ? &m->stream_id : NULL, &ci);
  Qpool__Response r;
  qp_ctl_response_init(&r, m->tag, -rc, rc < 0 ? ci.why : NULL,
                       m->has_stream_id, m->stream_id);
  if (rc == 0)
    r.conn = &ci.m;
  respond_msg(s, &r, -1);
}

static void handle(struct wrk_session *s, const Qpool__Request *m) {
  int any = m->op == QPOOL__CTL_OP__OP_INCOMING_GET;
  int info = m->op == QPOOL__CTL_OP__OP_CONN_INFO;
  if (!any && !info && m->op != QPOOL__CTL_OP__OP_OUTGOING_GET) {
    respond(s, m->tag, EINVAL,
            "a session takes streams only (and describes connections): ask "
            "qpoold's control socket",
            0, 0, -1);
    return;
  }
  if (m->pool && strcmp(m->pool, s->pool) != 0) {
    respond(s, m->tag, EINVAL, "this session belongs to another pool", 0, 0,
            -1);
    return;
  }
  if (info) {
    wrk_pool *p = s->owner->lookup(s->pool, s->owner->arg);
    if (p)
      handle_conn_info(s, m, p);
    else
      respond(s, m->tag, ENOENT, "the pool was removed", 0, 0, -1);
    return;
  }
  if (!any && !m->has_stream_id) {
    respond(s, m->tag, EINVAL, "OutgoingGet needs a stream_id", 0, 0, -1);
    return;
  }
  wrk_pool *p = s->owner->lookup(s->pool, s->owner->arg);
  if (!p) {
    respond(s, m->tag, ENOENT, "the pool was removed", 0, 0, -1);
    return;
  }
  if (s->pending >= MAX_PENDING) {
    respond(s, m->tag, EBUSY, "too many requests in flight", 0, 0, -1);
    return;
  }
  struct get_ctx *g = malloc(sizeof(*g));
  if (!g) {
    respond(s, m->tag, ENOMEM, "out of memory", 0, 0, -1);
    return;
  }
  g->s = s;
  g->tag = m->tag;
  g->next = s->gets.next; /* linked before the call: a cancel may follow */
  g->prev = &s->gets;
  s->gets.next->prev = g;
  s->gets.next = g;
  uint64_t t = m->has_timeout_ms ? m->timeout_ms : 0;
  int rc = any ? wrk_pool_incoming_get(p, t, on_get, g)
               : wrk_pool_outgoing_get(p, m->stream_id, t, on_get, g);
  if (rc < 0) { /* the callback will not run */
    g->prev->next = g->next;
    g->next->prev = g->prev;
    free(g);
    respond(s, m->tag, -rc, strerror(-rc), 0, 0, -1);
    return;
  }
  s->pending++;
}

static void on_readable(uv_poll_t *h, int status, int events) {
  struct wrk_session *s = h->data;
  if (status < 0) {
    session_end(s, uv_strerror(status));
    return;
  }
  if (events & UV_WRITABLE)
    flush_out(s);
  if (s->gone || !(events & UV_READABLE))
    return;
  for (int i = 0; i < 64 && !s->gone; i++) {
    Qpool__Request *m;
    const char *why;
    int rc =
        qp_ctl_recv_request(s->fd, s->owner->buf, s->owner->bufsize, &m, &why);
    if (rc == -EAGAIN)
      return;
    if (rc <= 0) {
      session_end(s, why);
      return;
    }
    handle(s, m);
    qpool__request__free_unpacked(m, NULL);
  }
}

void wrk_sessions_init(struct wrk_sessions *ss, uv_loop_t *loop,
                       wrk_pool *(*lookup)(const char *, void *), void *arg,
                       uint8_t *buf, size_t bufsize) {
  memset(ss, 0, sizeof(*ss));
  ss->loop = loop;
  ss->lookup = lookup;
  ss->arg = arg;
  ss->buf = buf;
  ss->bufsize = bufsize;
}

int wrk_session_add(struct wrk_sessions *ss, const char *pool, int fd) {
  if (ss->count >= MAX_SESSIONS || strlen(pool) >= WRK_NAME_MAX) {
    qp_warn("refusing a session of pool %s: %d sessions open", pool, ss->count);
    close(fd); /* the application sees EOF and uses qpoold instead */
    return -EMFILE;
  }
  struct wrk_session *s = calloc(1, sizeof(*s));
  if (!s) {
    close(fd);
    return -ENOMEM;
  }
  s->owner = ss;
  s->fd = fd;
  s->gets.next = s->gets.prev = &s->gets;
  strcpy(s->pool, pool);
  int rc = uv_poll_init_socket(ss->loop, &s->poll, fd);
  if (rc < 0) {
    close(fd);
    free(s);
    return rc;
  }
  s->poll.data = s;
  uv_poll_start(&s->poll, UV_READABLE, on_readable);
  s->next = ss->list;
  ss->list = s;
  ss->count++;
  return 0;
}

void wrk_sessions_close(struct wrk_sessions *ss) {
  while (ss->list)
    session_end(ss->list, NULL);
}
