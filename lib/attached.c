/* libqpool, attached mode: one SOCK_SEQPACKET connection to qpoold's control
 * socket per handle. A reader thread receives every Response and hands it to
 * the caller waiting for its tag (each waiter has its own condition), so any
 * number of threads may block in requests at once. Sends are serialised by
 * their own mutex; the reader never waits for them. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "control.pb-c.h"
#include "shared/frame.h"
#include "qpool.h"

#define QP_GRACE_MS 5000u /* local deadline beyond the request's timeout */
#define QP_STATS_MS 5000u /* deadline of requests that do not wait */

struct waiter {
  struct waiter *next;
  uint64_t tag;
  pthread_cond_t cv;
  int done;
  int code; /* positive errno from qpoold, or 0 */
  uint32_t id;
  int fd;
  Qpool__Response *resp; /* kept for STATS (freed by the waiter) */
};

struct qp_pool {
  int sock;
  char *name;
  pthread_mutex_t mu; /* waiters, next_tag, closing, dead, users */
  pthread_mutex_t send_mu;
  pthread_cond_t idle_cv; /* users dropped to 0 */
  struct waiter *waiters;
  uint64_t next_tag;
  int closing;
  int dead; /* negative errno once the connection is gone */
  int users;
  int reader_started;
  pthread_t reader;
  uint8_t buf[QP_FRAME_HDR + QP_FRAME_MAX];
};

static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Removes w from the list when it is there (mu held). */
static void unlink_waiter(qp_pool *p, struct waiter *w) {
  for (struct waiter **pp = &p->waiters; *pp; pp = &(*pp)->next)
    if (*pp == w) {
      *pp = w->next;
      return;
    }
}

static void *reader_main(void *arg) {
  qp_pool *p = arg;
  int err = 0;
  for (;;) {
    struct pollfd pfd = {.fd = p->sock, .events = POLLIN};
    if (poll(&pfd, 1, -1) < 0) {
      if (errno == EINTR)
        continue;
      err = -errno;
      break;
    }
    struct qp_frame f;
    int rc = qp_frame_recv(p->sock, p->buf, sizeof(p->buf), &f);
    if (rc == -EAGAIN || rc == -EINTR)
      continue;
    if (rc == 0) {
      err = -ECONNRESET;
      break;
    }
    if (rc < 0) {
      if (rc == -EPROTO || rc == -EMSGSIZE)
        continue; /* a bad frame is skipped (and its fd closed) */
      err = rc;
      break;
    }
    Qpool__Response *m = f.type == QPOOL__CTL_TYPE__CTL_RESPONSE
                             ? qpool__response__unpack(NULL, f.len, f.payload)
                             : NULL;
    if (!m) {
      if (f.fd >= 0)
        close(f.fd);
      continue;
    }
    pthread_mutex_lock(&p->mu);
    struct waiter *w = p->waiters;
    while (w && w->tag != m->tag)
      w = w->next;
    if (w) {
      unlink_waiter(p, w);
      w->done = 1;
      w->code = m->code;
      w->id = m->has_stream_id ? m->stream_id : 0;
      w->fd = f.fd;
      f.fd = -1;
      w->resp = m;
      m = NULL;
      pthread_cond_signal(&w->cv);
    }
    pthread_mutex_unlock(&p->mu);
    if (f.fd >= 0)
      close(f.fd); /* for a request nobody waits for any more */
    if (m)
      qpool__response__free_unpacked(m, NULL);
  }
  pthread_mutex_lock(&p->mu);
  p->dead = err ? err : -ECONNRESET;
  for (struct waiter *w = p->waiters; w; w = w->next)
    pthread_cond_signal(&w->cv);
  pthread_mutex_unlock(&p->mu);
  return NULL;
}

/* Sends r, waiting for room in the socket until deadline (send_mu taken
 * here). Returns 0 or a negative errno. */
static int send_request(qp_pool *p, Qpool__Request *r, uint64_t deadline) {
  int rc;
  pthread_mutex_lock(&p->send_mu);
  for (;;) {
    rc = qp_frame_send(p->sock, QPOOL__CTL_TYPE__CTL_REQUEST, &r->base, -1);
    if (rc != -EAGAIN)
      break;
    uint64_t now = now_ms();
    if (now >= deadline) {
      rc = -ETIMEDOUT;
      break;
    }
    struct pollfd pfd = {.fd = p->sock, .events = POLLOUT};
    uint64_t left = deadline - now;
    poll(&pfd, 1, left > 100 ? 100 : (int)left);
  }
  pthread_mutex_unlock(&p->send_mu);
  if (rc == -EPIPE || rc == -ECONNRESET)
    rc = -ECONNRESET;
  return rc;
}

/* One request and its answer. On 0 the caller gets w->code/id/fd/resp (and
 * must free resp); otherwise a negative errno and nothing to free. */
static int roundtrip(qp_pool *p, Qpool__Request *r, uint64_t wait_ms,
                     struct waiter *w) {
  memset(w, 0, sizeof(*w));
  w->fd = -1;
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&w->cv, &ca);
  pthread_condattr_destroy(&ca);

  uint64_t deadline = now_ms() + wait_ms;
  int rc = 0;
  pthread_mutex_lock(&p->mu);
  if (p->closing) {
    pthread_mutex_unlock(&p->mu);
    pthread_cond_destroy(&w->cv);
    return -ECANCELED;
  }
  if (p->dead) {
    rc = p->dead;
    pthread_mutex_unlock(&p->mu);
    pthread_cond_destroy(&w->cv);
    return rc;
  }
  p->users++;
  w->tag = r->tag = ++p->next_tag;
  w->next = p->waiters;
  p->waiters = w;
  pthread_mutex_unlock(&p->mu);

  rc = send_request(p, r, deadline);

  pthread_mutex_lock(&p->mu);
  if (rc < 0) {
    unlink_waiter(p, w);
  } else {
    struct timespec ts = {.tv_sec = (time_t)(deadline / 1000),
                          .tv_nsec = (long)(deadline % 1000) * 1000000};
    while (!w->done && !p->closing && !p->dead) {
      if (pthread_cond_timedwait(&w->cv, &p->mu, &ts) == ETIMEDOUT &&
          !w->done) {
        rc = -ETIMEDOUT;
        break;
      }
    }
    if (!w->done) {
      unlink_waiter(p, w);
      if (!rc)
        rc = p->closing ? -ECANCELED : p->dead;
    } else {
      rc = 0;
    }
  }
  if (--p->users == 0)
    pthread_cond_broadcast(&p->idle_cv);
  pthread_mutex_unlock(&p->mu);
  pthread_cond_destroy(&w->cv);
  return rc;
}

static void waiter_free(struct waiter *w) {
  if (w->fd >= 0)
    close(w->fd);
  w->fd = -1;
  if (w->resp)
    qpool__response__free_unpacked(w->resp, NULL);
  w->resp = NULL;
}

static int get(qp_pool *p, int any, uint32_t sid, uint32_t timeout_ms,
               uint32_t *id, int *fd) {
  if (fd)
    *fd = -1;
  if (!p || !fd)
    return -EINVAL;
  Qpool__Request r = QPOOL__REQUEST__INIT;
  r.op = any ? QPOOL__CTL_OP__OP_INCOMING_GET : QPOOL__CTL_OP__OP_OUTGOING_GET;
  r.pool = p->name;
  r.has_stream_id = !any;
  r.stream_id = sid;
  r.has_timeout_ms = 1;
  r.timeout_ms = timeout_ms;
  struct waiter w;
  int rc = roundtrip(p, &r, (uint64_t)timeout_ms + QP_GRACE_MS, &w);
  if (rc < 0)
    return rc;
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
  return rc;
}

int qp_incoming_get(qp_pool *p, uint32_t timeout_ms, uint32_t *id, int *fd) {
  return get(p, 1, 0, timeout_ms, id, fd);
}

int qp_outgoing_get(qp_pool *p, uint32_t id, uint32_t timeout_ms, int *fd) {
  return get(p, 0, id, timeout_ms, NULL, fd);
}

/* A request without a stream: fills *st with pools[0] for STATS. */
static int simple(qp_pool *p, Qpool__CtlOp op, Qpool__PoolStats *st) {
  if (!p)
    return -EINVAL;
  Qpool__Request r = QPOOL__REQUEST__INIT;
  r.op = op;
  r.pool = p->name;
  struct waiter w;
  int rc = roundtrip(p, &r, QP_STATS_MS, &w);
  if (rc < 0)
    return rc;
  if (w.code != 0)
    rc = w.code > 0 ? -w.code : -EPROTO;
  else if (st && (w.resp->n_pools < 1 || !w.resp->pools[0]))
    rc = -EPROTO;
  else if (st) {
    const Qpool__PoolStats *s = w.resp->pools[0];
    st->ready = s->ready;
    st->active = s->active;
    st->capacity = s->capacity;
    st->interval_ns = s->interval_ns;
    st->errors = s->errors;
  }
  waiter_free(&w);
  return rc;
}

int qp_ready(qp_pool *p) {
  Qpool__PoolStats st;
  int rc = simple(p, QPOOL__CTL_OP__OP_STATS, &st);
  return rc < 0 ? rc : st.ready ? 1 : 0;
}

int qp_active(qp_pool *p) {
  Qpool__PoolStats st;
  int rc = simple(p, QPOOL__CTL_OP__OP_STATS, &st);
  return rc < 0 ? rc : st.active;
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
  return rc < 0 ? rc : (int64_t)(st.errors & INT64_MAX);
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

static void pool_free(qp_pool *p) {
  if (p->sock >= 0)
    close(p->sock);
  pthread_mutex_destroy(&p->mu);
  pthread_mutex_destroy(&p->send_mu);
  pthread_cond_destroy(&p->idle_cv);
  free(p->name);
  free(p);
}

void qp_close(qp_pool *p) {
  if (!p)
    return;
  pthread_mutex_lock(&p->mu);
  p->closing = 1;
  for (struct waiter *w = p->waiters; w; w = w->next)
    pthread_cond_signal(&w->cv);
  while (p->users > 0)
    pthread_cond_wait(&p->idle_cv, &p->mu);
  pthread_mutex_unlock(&p->mu);
  /* wakes the reader: poll() reports POLLHUP, recv returns 0 */
  shutdown(p->sock, SHUT_RDWR);
  if (p->reader_started)
    pthread_join(p->reader, NULL);
  pool_free(p);
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
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  if (strlen(socket_path) >= sizeof(sa.sun_path))
    return -EINVAL;
  strcpy(sa.sun_path, socket_path);

  qp_pool *p = calloc(1, sizeof(*p));
  if (!p)
    return -ENOMEM;
  p->sock = -1;
  pthread_mutex_init(&p->mu, NULL);
  pthread_mutex_init(&p->send_mu, NULL);
  pthread_cond_init(&p->idle_cv, NULL);
  p->name = strdup(pool_name);
  if (!p->name) {
    pool_free(p);
    return -ENOMEM;
  }
  p->sock = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  if (p->sock < 0) {
    int e = -errno;
    pool_free(p);
    return e;
  }
  int rc;
  do
    rc = connect(p->sock, (struct sockaddr *)&sa, sizeof(sa));
  while (rc < 0 && errno == EINTR);
  if (rc < 0) {
    int e = errno == ENOENT || errno == ENOTSOCK ? -ECONNREFUSED : -errno;
    pool_free(p);
    return e;
  }
  rc = pthread_create(&p->reader, NULL, reader_main, p);
  if (rc != 0) {
    pool_free(p);
    return -rc;
  }
  p->reader_started = 1;
  /* the pool must exist (and the caller may see it) */
  Qpool__PoolStats st;
  rc = simple(p, QPOOL__CTL_OP__OP_STATS, &st);
  if (rc < 0) {
    qp_close(p);
    return rc;
  }
  *out = p;
  return 0;
}
