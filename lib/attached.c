/* libqpool: requests to qpoold. A handle talks over up to two channels, each
 * a SOCK_SEQPACKET socket carrying control.proto frames:
 *   - the control channel to qpoold's control socket (stats, counters,
 *     flush, and takes when there is no session);
 *   - a session channel straight to the pool's worker, granted by qpoold
 *     (OP_SESSION) after its access check: IncomingGet / OutgoingGet go
 *     there, two frames and two processes per take instead of four and
 *     three. A dead session (worker restart) is replaced at most once a
 *     second; meanwhile takes go through qpoold.
 * No background thread: callers waiting on a channel take turns reading it
 * (leader/followers). The leader polls the socket and hands each answer to
 * the caller waiting for its tag (each has its own condition); when its own
 * answer has come it passes the reading role on. So an answer wakes its
 * caller directly, and any number of threads may wait at once. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "control.pb-c.h"
#include "shared/conn_info.h"
#include "shared/frame.h"
#include "lib/internal.h"

#define QP_GRACE_MS 5000u   /* local deadline beyond a take's timeout */
#define QP_STATS_MS 5000u   /* deadline of requests that do not wait */
#define QP_SESS_RETRY 1000u /* ms between attempts to get a session */

struct waiter {
  struct waiter *next;
  uint64_t tag;
  pthread_cond_t cv;
  int done;
  int code; /* positive errno from qpoold or the worker, or 0 */
  uint32_t id;
  int fd;
  Qpool__Response *resp; /* the whole answer (freed by the waiter) */
};

struct chan {
  int sock;
  int refs;    /* holds by calls in progress */
  int dead;    /* negative errno once the socket failed or closed */
  int reading; /* a caller is the leader: it polls and dispatches */
  struct waiter *waiters;
  pthread_mutex_t send_mu;
  uint8_t buf[QP_FRAME_HDR + QP_FRAME_MAX]; /* the leader's */
};

uint64_t qp__now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ---- channels ----------------------------------------------------------- */

static struct chan *chan_new(int sock) {
  struct chan *c = malloc(sizeof(*c));
  if (!c)
    return NULL;
  memset(c, 0, offsetof(struct chan, buf));
  c->sock = sock;
  pthread_mutex_init(&c->send_mu, NULL);
  int fl = fcntl(sock, F_GETFL);
  if (fl >= 0)
    fcntl(sock, F_SETFL, fl | O_NONBLOCK);
  return c;
}

static void chan_free(struct chan *c) {
  close(c->sock);
  pthread_mutex_destroy(&c->send_mu);
  free(c);
}

/* Removes w from c's waiters when it is there (p->mu held). */
static void unlink_waiter(struct chan *c, struct waiter *w) {
  for (struct waiter **pp = &c->waiters; *pp; pp = &(*pp)->next)
    if (*pp == w) {
      *pp = w->next;
      return;
    }
}

/* Drops a hold on c (p->mu held); a channel that is no longer p's is freed
 * with its last hold. */
static void chan_release(qp_pool *p, struct chan *c) {
  if (--c->refs == 0 && c != p->ctl && c != p->sess)
    chan_free(c);
}

static void chan_kill(struct chan *c, int err) { /* p->mu held */
  if (!c->dead)
    c->dead = err;
  for (struct waiter *w = c->waiters; w; w = w->next)
    pthread_cond_signal(&w->cv);
}

/* The leader's turn: waits for the socket until deadline (at most 1 s) and
 * hands every answer read to its waiter. Called without p->mu. */
static void pump(qp_pool *p, struct chan *c, uint64_t deadline) {
  uint64_t now = qp__now_ms();
  uint64_t left = deadline > now ? deadline - now : 0;
  struct pollfd pfd = {.fd = c->sock, .events = POLLIN};
  if (poll(&pfd, 1, left > 1000 ? 1000 : (int)left) <= 0)
    return;
  for (int i = 0; i < 64; i++) {
    struct qp_frame f;
    int rc = qp_frame_recv(c->sock, c->buf, sizeof(c->buf), &f);
    if (rc == -EAGAIN || rc == -EINTR)
      return;
    if (rc == -EPROTO || rc == -EMSGSIZE)
      continue; /* a bad frame is skipped (and its fd closed) */
    if (rc <= 0) {
      pthread_mutex_lock(&p->mu);
      chan_kill(c, rc == 0 ? -ECONNRESET : rc);
      pthread_mutex_unlock(&p->mu);
      return;
    }
    Qpool__Response *m = f.type == QPOOL__CTL_TYPE__CTL_RESPONSE
                             ? qpool__response__unpack(NULL, f.len, f.payload)
                             : NULL;
    if (m) {
      pthread_mutex_lock(&p->mu);
      struct waiter *w = c->waiters;
      while (w && w->tag != m->tag)
        w = w->next;
      if (w) {
        unlink_waiter(c, w);
        w->done = 1;
        /* an answer whose stream fd this process had no room for */
        w->code = f.fd_lost && m->code == 0 ? EMFILE : m->code;
        w->id = m->has_stream_id ? m->stream_id : 0;
        w->fd = f.fd;
        f.fd = -1;
        w->resp = m;
        m = NULL;
        pthread_cond_signal(&w->cv);
      }
      pthread_mutex_unlock(&p->mu);
    }
    if (f.fd >= 0)
      close(f.fd); /* an answer nobody waits for any more */
    if (m)
      qpool__response__free_unpacked(m, NULL);
  }
}

/* Sends r, waiting for room until deadline. 0 or a negative errno. */
static int send_request(struct chan *c, Qpool__Request *r, uint64_t deadline) {
  int rc;
  pthread_mutex_lock(&c->send_mu);
  for (;;) {
    rc = qp_frame_send(c->sock, QPOOL__CTL_TYPE__CTL_REQUEST, &r->base, -1);
    if (rc != -EAGAIN)
      break;
    uint64_t now = qp__now_ms();
    if (now >= deadline) {
      rc = -ETIMEDOUT;
      break;
    }
    struct pollfd pfd = {.fd = c->sock, .events = POLLOUT};
    uint64_t left = deadline - now;
    poll(&pfd, 1, left > 100 ? 100 : (int)left);
  }
  pthread_mutex_unlock(&c->send_mu);
  if (rc == -EPIPE || rc == -ECONNRESET || rc == -ENOTCONN)
    rc = -ECONNRESET;
  return rc;
}

/* One request and its answer on c, which the caller holds. Returns 0 with
 * w->code/id/fd/resp filled (free with waiter_free), or a negative errno
 * and nothing to free. */
static int roundtrip(qp_pool *p, struct chan *c, Qpool__Request *r,
                     uint64_t deadline, struct waiter *w) {
  memset(w, 0, sizeof(*w));
  w->fd = -1;
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&w->cv, &ca);
  pthread_condattr_destroy(&ca);

  int rc = 0;
  pthread_mutex_lock(&p->mu);
  if (p->closing || c->dead) {
    rc = p->closing ? -ECANCELED : c->dead;
    pthread_mutex_unlock(&p->mu);
    pthread_cond_destroy(&w->cv);
    return rc;
  }
  w->tag = r->tag = ++p->next_tag;
  w->next = c->waiters;
  c->waiters = w;
  pthread_mutex_unlock(&p->mu);

  rc = send_request(c, r, deadline);
  if (rc < 0) {
    pthread_mutex_lock(&p->mu);
    if (p->closing)
      rc = -ECANCELED; /* qp_close shut the socket under us */
    else if (rc == -ECONNRESET)
      chan_kill(c, rc);
  } else {
    pthread_mutex_lock(&p->mu);
    struct timespec ts = {.tv_sec = (time_t)(deadline / 1000),
                          .tv_nsec = (long)(deadline % 1000) * 1000000};
    while (!w->done && !p->closing && !c->dead) {
      if (!c->reading) {
        c->reading = 1;
        pthread_mutex_unlock(&p->mu);
        pump(p, c, deadline);
        pthread_mutex_lock(&p->mu);
        c->reading = 0;
        if (!w->done && qp__now_ms() >= deadline) {
          rc = -ETIMEDOUT;
          break;
        }
      } else if (pthread_cond_timedwait(&w->cv, &p->mu, &ts) == ETIMEDOUT &&
                 !w->done) {
        rc = -ETIMEDOUT;
        break;
      }
    }
    if (!w->done && !rc)
      rc = p->closing ? -ECANCELED : c->dead;
  }
  if (!w->done)
    unlink_waiter(c, w);
  if (!c->reading && c->waiters) /* pass the reading role on */
    pthread_cond_signal(&c->waiters->cv);
  pthread_mutex_unlock(&p->mu);
  pthread_cond_destroy(&w->cv);
  return w->done ? 0 : rc;
}

static void waiter_free(struct waiter *w) {
  if (w->fd >= 0)
    close(w->fd);
  w->fd = -1;
  if (w->resp)
    qpool__response__free_unpacked(w->resp, NULL);
  w->resp = NULL;
}

/* ---- calls ------------------------------------------------------------- */

static int enter(qp_pool *p) {
  pthread_mutex_lock(&p->mu);
  int rc = p->closing ? -ECANCELED : 0;
  if (!rc)
    p->users++;
  pthread_mutex_unlock(&p->mu);
  return rc;
}

static void leave(qp_pool *p) {
  pthread_mutex_lock(&p->mu);
  if (--p->users == 0)
    pthread_cond_broadcast(&p->idle_cv);
  pthread_mutex_unlock(&p->mu);
}

int qp__enter(qp_pool *p) {
  return enter(p);
}
void qp__leave(qp_pool *p) {
  leave(p);
}

/* A request on the control channel (caller inside enter/leave). */
static int ctl_roundtrip(qp_pool *p, Qpool__Request *r, uint64_t deadline,
                         struct waiter *w) {
  pthread_mutex_lock(&p->mu);
  struct chan *c = p->ctl;
  if (c)
    c->refs++;
  pthread_mutex_unlock(&p->mu);
  if (!c)
    return -ENOTCONN;
  int rc = roundtrip(p, c, r, deadline, w);
  pthread_mutex_lock(&p->mu);
  chan_release(p, c);
  pthread_mutex_unlock(&p->mu);
  return rc;
}

/* Asks qpoold for a session of this pool; 0 and *fd, or a negative errno. */
static int open_session(qp_pool *p, int *fd) {
  Qpool__Request r = QPOOL__REQUEST__INIT;
  r.op = QPOOL__CTL_OP__OP_SESSION;
  r.pool = p->name;
  struct waiter w;
  int rc = ctl_roundtrip(p, &r, qp__now_ms() + QP_STATS_MS, &w);
  if (rc < 0)
    return rc;
  if (w.code != 0)
    rc = w.code > 0 ? -w.code : -EPROTO;
  else if (w.fd < 0)
    rc = -EPROTO;
  else {
    *fd = w.fd;
    w.fd = -1;
  }
  waiter_free(&w);
  return rc;
}

/* The live session, held for the caller, or NULL (then use qpoold). Opens a
 * new one when there is none or it died, at most once per QP_SESS_RETRY. */
static struct chan *session_hold(qp_pool *p) {
  pthread_mutex_lock(&p->mu);
  struct chan *s = p->sess;
  if (!p->sess_off && !p->closing && !(s && !s->dead) && p->ctl &&
      qp__now_ms() >= p->sess_retry_ms) {
    p->sess_retry_ms = qp__now_ms() + QP_SESS_RETRY; /* one opener at once */
    pthread_mutex_unlock(&p->mu);
    int fd = -1;
    int rc = open_session(p, &fd);
    struct chan *n = rc == 0 ? chan_new(fd) : NULL;
    if (rc == 0 && !n)
      close(fd);
    pthread_mutex_lock(&p->mu);
    if (n && p->closing) { /* qp_close ran meanwhile: nobody wants it */
      chan_free(n);
      n = NULL;
    }
    if (n) {
      struct chan *old = p->sess;
      p->sess = n;
      if (old && old->refs == 0)
        chan_free(old);
      p->sess_retry_ms = 0;
    }
  }
  s = p->sess && !p->sess->dead && !p->sess_off ? p->sess : NULL;
  if (s)
    s->refs++;
  pthread_mutex_unlock(&p->mu);
  return s;
}

/* A request the pool's worker answers (takes, ConnInfo), on the session
 * when there is one, else (or when it ended without an answer) through
 * qpoold, which says EAGAIN while the worker restarts. The worker may take
 * timeout_ms (r->timeout_ms, when set, is lowered for qpoold by the time
 * the session used). Returns 0 with *w filled (waiter_free it), or a
 * negative errno. The caller is inside enter/leave. */
static int worker_call(qp_pool *p, Qpool__Request *r, uint32_t timeout_ms,
                       struct waiter *w) {
  uint64_t deadline = qp__now_ms() + timeout_ms + QP_GRACE_MS;
  struct chan *s = session_hold(p);
  int rc = -ECONNRESET;
  if (s) {
    rc = roundtrip(p, s, r, deadline, w);
    /* the worker no longer runs this pool (reload, removal): retire the
     * session; qpoold knows whether the pool still exists */
    int retire = rc == 0 && (w->code == ENOENT || w->code == ECANCELED);
    if (retire) {
      waiter_free(w);
      rc = -ECONNRESET;
    }
    pthread_mutex_lock(&p->mu);
    if (retire && !p->closing && !s->dead) {
      shutdown(s->sock, SHUT_RDWR); /* wakes its leader */
      chan_kill(s, -ECONNRESET);
    }
    chan_release(p, s);
    pthread_mutex_unlock(&p->mu);
  }
  if (rc < 0 && rc != -ETIMEDOUT && rc != -ECANCELED) {
    uint64_t now = qp__now_ms();
    uint32_t left =
        (uint32_t)(deadline - QP_GRACE_MS > now ? deadline - QP_GRACE_MS - now
                                                : 0);
    if (left > timeout_ms)
      left = timeout_ms;
    if (r->has_timeout_ms)
      r->timeout_ms = left;
    rc = ctl_roundtrip(p, r, now + left + QP_GRACE_MS, w);
  }
  return rc;
}

static int get(qp_pool *p, int any, uint32_t sid, uint32_t timeout_ms,
               uint32_t *id, int *fd) {
  if (fd)
    *fd = -1;
  if (!p || !fd)
    return -EINVAL;
  int rc = enter(p);
  if (rc < 0)
    return rc;
  Qpool__Request r = QPOOL__REQUEST__INIT;
  r.op = any ? QPOOL__CTL_OP__OP_INCOMING_GET : QPOOL__CTL_OP__OP_OUTGOING_GET;
  r.pool = p->name;
  r.has_stream_id = !any;
  r.stream_id = sid;
  r.has_timeout_ms = 1;
  r.timeout_ms = timeout_ms;
  struct waiter w;
  rc = worker_call(p, &r, timeout_ms, &w);
  if (rc == 0) {
    if (w.code != 0) {
      rc = w.code > 0 ? -w.code : -EPROTO;
    } else if (w.fd < 0) {
      rc = -EPROTO; /* a success without a stream */
    } else {
      int fl = fcntl(w.fd, F_GETFL);
      if (fl >= 0 && (fl & O_NONBLOCK))
        fcntl(w.fd, F_SETFL, fl & ~O_NONBLOCK);
      *fd = w.fd;
      w.fd = -1;
      if (id)
        *id = w.id;
    }
    waiter_free(&w);
  }
  leave(p);
  return rc;
}

int qp_incoming_get(qp_pool *p, uint32_t timeout_ms, uint32_t *id, int *fd) {
  return get(p, 1, 0, timeout_ms, id, fd);
}

int qp_outgoing_get(qp_pool *p, uint32_t id, uint32_t timeout_ms, int *fd) {
  return get(p, 0, id, timeout_ms, NULL, fd);
}

/* Copies a checked ConnInfo into one allocation. 0 or -EPROTO / -ENOMEM. */
static int conn_info_copy(const Qpool__ConnInfo *m, struct qp_conn_info **out) {
  const char *why;
  if (qp_conn_info_check(m, &why) < 0)
    return -EPROTO;
  const char *cc = m->congestion_control ? m->congestion_control : "";
  const char *strs[] = {m->local,   m->remote, m->alpn,
                        m->version, m->cipher, cc};
  size_t nstr = sizeof(strs) / sizeof(strs[0]);
  size_t size =
      sizeof(struct qp_conn_info) + m->n_certs * sizeof(struct qp_cert);
  for (size_t i = 0; i < nstr; i++)
    size += strlen(strs[i]) + 1;
  for (size_t i = 0; i < m->n_certs; i++)
    size += m->certs[i].len; /* bounded by the check */
  struct qp_conn_info *ci = calloc(1, size);
  if (!ci)
    return -ENOMEM;
  struct qp_cert *certs = (struct qp_cert *)(ci + 1);
  char *at = (char *)(certs + m->n_certs);
  const char **dst[] = {&ci->local,   &ci->remote, &ci->alpn,
                        &ci->version, &ci->cipher, &ci->congestion_control};
  for (size_t i = 0; i < nstr; i++) {
    size_t n = strlen(strs[i]) + 1;
    memcpy(at, strs[i], n);
    *dst[i] = at;
    at += n;
  }
  for (size_t i = 0; i < m->n_certs; i++) {
    memcpy(at, m->certs[i].data, m->certs[i].len);
    certs[i].der = (const uint8_t *)at;
    certs[i].len = m->certs[i].len;
    at += m->certs[i].len;
  }
  ci->ncerts = m->n_certs;
  ci->certs = certs;
  ci->truncated = m->has_truncated && m->truncated;
  ci->rtt_ns = m->has_rtt_ns ? (int64_t)(m->rtt_ns & INT64_MAX) : 0;
  ci->cwnd = m->has_cwnd ? m->cwnd : 0;
  ci->bytes_in_flight = m->has_bytes_in_flight ? m->bytes_in_flight : 0;
  ci->pacing_rate_sec = m->has_pacing_rate_sec ? m->pacing_rate_sec : 0;
  ci->delivery_rate_sec = m->has_delivery_rate_sec ? m->delivery_rate_sec : 0;
  ci->pacing_waits = m->has_pacing_waits ? m->pacing_waits : 0;
  ci->max_burst = m->has_max_burst ? m->max_burst : 0;
  ci->read_ahead = m->has_read_ahead ? m->read_ahead : 0;
  *out = ci;
  return 0;
}

int qp_conn_info(qp_pool *p, const uint32_t *id, struct qp_conn_info **out) {
  if (out)
    *out = NULL;
  if (!p || !out)
    return -EINVAL;
  int rc = enter(p);
  if (rc < 0)
    return rc;
  Qpool__Request r = QPOOL__REQUEST__INIT;
  r.op = QPOOL__CTL_OP__OP_CONN_INFO;
  r.pool = p->name;
  r.has_stream_id = id != NULL;
  r.stream_id = id ? *id : 0;
  struct waiter w;
  rc = worker_call(p, &r, 0, &w);
  if (rc == 0) {
    if (w.code != 0)
      rc = w.code > 0 ? -w.code : -EPROTO;
    else if (!w.resp->conn)
      rc = -EPROTO;
    else
      rc = conn_info_copy(w.resp->conn, out);
    waiter_free(&w);
  }
  leave(p);
  return rc;
}

void qp_conn_info_free(struct qp_conn_info *ci) {
  free(ci);
}

/* A request without a stream: fills *st with pools[0] for STATS. */
static int simple(qp_pool *p, Qpool__CtlOp op, Qpool__PoolStats *st) {
  if (!p)
    return -EINVAL;
  int rc = enter(p);
  if (rc < 0)
    return rc;
  Qpool__Request r = QPOOL__REQUEST__INIT;
  r.op = op;
  r.pool = p->name;
  struct waiter w;
  rc = ctl_roundtrip(p, &r, qp__now_ms() + QP_STATS_MS, &w);
  if (rc == 0) {
    if (w.code != 0)
      rc = w.code > 0 ? -w.code : -EPROTO;
    else if (st && (w.resp->n_pools < 1 || !w.resp->pools[0]))
      rc = -EPROTO;
    else if (st) {
      const Qpool__PoolStats *s = w.resp->pools[0];
      st->ready = s->ready;
      st->idle_streams = s->idle_streams;
      st->capacity = s->capacity;
      st->interval_ns = s->interval_ns;
      st->app_errors = s->app_errors;
    }
    waiter_free(&w);
  }
  leave(p);
  return rc;
}

int qp_ready(qp_pool *p) {
  Qpool__PoolStats st;
  int rc = simple(p, QPOOL__CTL_OP__OP_STATS, &st);
  if (rc == -ENOTCONN)
    return 0; /* an embedded pool whose manager has not started */
  return rc < 0 ? rc : st.ready ? 1 : 0;
}

int qp_active(qp_pool *p) {
  Qpool__PoolStats st;
  int rc = simple(p, QPOOL__CTL_OP__OP_STATS, &st);
  return rc < 0 ? rc : st.idle_streams;
}

int qp_capacity(qp_pool *p) {
  Qpool__PoolStats st;
  int rc = simple(p, QPOOL__CTL_OP__OP_STATS, &st);
  return rc < 0 ? rc : st.capacity;
}

int64_t qp_interval(qp_pool *p) {
  Qpool__PoolStats st;
  int rc = simple(p, QPOOL__CTL_OP__OP_STATS, &st);
  return rc < 0 ? rc : (int64_t)(st.interval_ns & INT64_MAX);
}

int64_t qp_error_count(qp_pool *p) {
  Qpool__PoolStats st;
  int rc = simple(p, QPOOL__CTL_OP__OP_STATS, &st);
  return rc < 0 ? rc : (int64_t)(st.app_errors & INT64_MAX);
}

int qp_add_error(qp_pool *p) {
  return simple(p, QPOOL__CTL_OP__OP_ADD_ERROR, NULL);
}

int qp_reset_error(qp_pool *p) {
  return simple(p, QPOOL__CTL_OP__OP_RESET_ERROR, NULL);
}

int qp_flush(qp_pool *p) {
  return simple(p, QPOOL__CTL_OP__OP_FLUSH, NULL);
}

/* ---- handles ------------------------------------------------------------ */

qp_pool *qp__pool_alloc(const char *name) {
  qp_pool *p = calloc(1, sizeof(*p));
  if (!p)
    return NULL;
  pthread_mutex_init(&p->mu, NULL);
  pthread_cond_init(&p->idle_cv, NULL);
  p->name = strdup(name);
  const char *off = getenv("QPOOL_NO_SESSION");
  p->sess_off = off && !strcmp(off, "1");
  if (!p->name) {
    qp__pool_free(p);
    return NULL;
  }
  return p;
}

const char *qp_control_path(qp_pool *p) {
  if (!p)
    return NULL;
  pthread_mutex_lock(&p->mu);
  const char *s = p->path;
  pthread_mutex_unlock(&p->mu);
  return s;
}

const char *qp_pool_name(qp_pool *p) {
  return p ? p->name : NULL;
}

void qp__pool_free(qp_pool *p) {
  free(p->path);
  pthread_mutex_destroy(&p->mu);
  pthread_cond_destroy(&p->idle_cv);
  free(p->name);
  free(p);
}

/* Frees p's channels (p->mu held, no call in progress). */
static void drop_channels(qp_pool *p) {
  struct chan *cs[2] = {p->ctl, p->sess};
  p->ctl = p->sess = NULL;
  for (int i = 0; i < 2; i++)
    if (cs[i] && cs[i]->refs == 0)
      chan_free(cs[i]);
}

void qp__disconnect(qp_pool *p) {
  pthread_mutex_lock(&p->mu);
  p->closing = 1;
  for (;;) {
    /* wake every caller: a leader in poll() by the shutdown; the channels
     * are read again after each wait, as a call may have replaced one */
    struct chan *cs[2] = {p->ctl, p->sess};
    for (int i = 0; i < 2; i++)
      if (cs[i]) {
        shutdown(cs[i]->sock, SHUT_RDWR);
        chan_kill(cs[i], -ECANCELED);
      }
    if (p->users == 0)
      break;
    pthread_cond_wait(&p->idle_cv, &p->mu);
  }
  drop_channels(p);
  pthread_mutex_unlock(&p->mu);
}

void qp__reset(qp_pool *p) {
  pthread_mutex_lock(&p->mu);
  drop_channels(p);
  pthread_mutex_unlock(&p->mu);
}

int qp__connect(qp_pool *p, const char *path, uint64_t deadline_ms) {
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  if (strlen(path) >= sizeof(sa.sun_path))
    return -EINVAL;
  strcpy(sa.sun_path, path);
  int sock = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (sock < 0)
    return -errno;
  int rc = connect(sock, (struct sockaddr *)&sa, sizeof(sa));
  if (rc < 0 && (errno == EAGAIN || errno == EINPROGRESS || errno == EINTR)) {
    /* qpoold's backlog is full: wait for room, not past the deadline */
    uint64_t now = qp__now_ms();
    struct pollfd pfd = {.fd = sock, .events = POLLOUT};
    int left = deadline_ms > now ? (int)(deadline_ms - now) : 0;
    if (poll(&pfd, 1, left) <= 0) {
      close(sock);
      return -ETIMEDOUT;
    }
    int soerr = 0;
    socklen_t sl = sizeof(soerr);
    getsockopt(sock, SOL_SOCKET, SO_ERROR, &soerr, &sl);
    rc = soerr ? -1 : 0;
    errno = soerr;
  }
  if (rc < 0) {
    rc = errno == ENOENT || errno == ENOTSOCK ? -ECONNREFUSED : -errno;
    close(sock);
    return rc;
  }
  struct chan *c = chan_new(sock);
  if (!c) {
    close(sock);
    return -ENOMEM;
  }
  char *dup = strdup(path);
  pthread_mutex_lock(&p->mu);
  if (p->closing || p->ctl) { /* qp_close ran meanwhile (or a bug) */
    pthread_mutex_unlock(&p->mu);
    chan_free(c);
    free(dup);
    return -ECANCELED;
  }
  p->ctl = c;
  if (dup) {
    free(p->path);
    p->path = dup;
  }
  pthread_mutex_unlock(&p->mu);
  /* the pool must exist (and the caller may see it) */
  Qpool__PoolStats st;
  rc = simple(p, QPOOL__CTL_OP__OP_STATS, &st);
  if (rc == 0) { /* a session now, so that the first take is fast */
    struct chan *s = session_hold(p);
    if (s) {
      pthread_mutex_lock(&p->mu);
      chan_release(p, s);
      pthread_mutex_unlock(&p->mu);
    }
  }
  return rc;
}

int qp_pool_attach(const char *socket_path, const char *pool_name,
                   qp_pool **out) {
  if (!pool_name || !*pool_name || !out)
    return -EINVAL;
  if (!socket_path || !*socket_path) {
    socket_path = getenv("QPOOL_CONTROL");
    if (!socket_path || !*socket_path)
      socket_path = QP_DEFAULT_CONTROL;
  }
  if (strlen(socket_path) >= sizeof(((struct sockaddr_un *)0)->sun_path))
    return -EINVAL;
  qp_pool *p = qp__pool_alloc(pool_name);
  if (!p)
    return -ENOMEM;
  int rc = qp__connect(p, socket_path, qp__now_ms() + QP_STATS_MS);
  if (rc < 0) {
    qp__disconnect(p);
    qp__pool_free(p);
    return rc;
  }
  *out = p;
  return 0;
}

void qp_close(qp_pool *p) {
  if (!p)
    return;
  qp__disconnect(p);
  if (p->on_close) /* embedded mode: its private qpoold stops */
    p->on_close(p);
  qp__pool_free(p);
}
