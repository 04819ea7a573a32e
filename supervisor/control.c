/* qpoold's control socket (proto/control.proto): applications ask for
 * streams; each request goes to the pool's worker, whose answer carries the
 * stream's fd back through the supervisor to the application. Client input
 * is untrusted: a malformed frame ends that client only. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <grp.h>
#include <pwd.h>

#include "control.pb-c.h"
#include "shared/conn_info.h"
#include "shared/ctl_request.h"
#include "shared/log.h"
#include "shared/stats.h"
#include "supervisor/sup.h"

#define MAX_CLIENTS 1024
#define MAX_PENDING_PER_CLIENT 4096

struct sup_client {
  struct sup_client *next;
  struct sup *s;
  int fd;
  uv_poll_t poll;
  int pending;
  int gone;
  int watching;
  uint64_t watch_tag;
  struct ucred cred; /* the peer, from SO_PEERCRED at accept */
  gid_t groups[64];  /* its user's groups (primary + supplementary) */
  int ngroups;
};

struct sup_pending {
  struct sup_pending *next;
  uint64_t token, tag;
  struct sup_client *client; /* NULL once the client left */
  int worker;
  int conn_info; /* a ConnInfoGet (answered at once), not a Get */
};

static void client_drop(struct sup_client *c);

static void respond(struct sup_client *c, uint64_t tag, int code,
                    const char *msg, int has_id, uint32_t id, int fd) {
  if (!c || c->gone)
    return;
  Qpool__Response r;
  qp_ctl_response_init(&r, tag, code, msg, has_id, id);
  int rc = qp_frame_send(c->fd, QPOOL__CTL_TYPE__CTL_RESPONSE, &r.base, fd);
  if (rc < 0) { /* a client that does not read its answers is dropped */
    qp_info("control: dropping a client: %s",
            rc == -EAGAIN ? "it does not read its answers" : strerror(-rc));
    client_drop(c);
  }
}

static void on_client_closed(uv_handle_t *h) {
  struct sup_client *c = h->data;
  free(c);
}

static void client_drop(struct sup_client *c) {
  struct sup *s = c->s;
  if (c->gone)
    return;
  c->gone = 1;
  for (struct sup_pending *p = s->pending; p; p = p->next)
    if (p->client == c) {
      p->client = NULL; /* its answer, when it comes, goes nowhere */
      if (p->conn_info)
        continue;
      /* and the worker takes no stream for it */
      Qpool__Cancel m = QPOOL__CANCEL__INIT;
      m.token = p->token;
      sup_worker_send(s, s->workers[p->worker], QPOOL__MSG_TYPE__MSG_CANCEL,
                      &m.base, -1);
    }
  for (struct sup_client **pp = &s->clients; *pp; pp = &(*pp)->next)
    if (*pp == c) {
      *pp = c->next;
      break;
    }
  s->nclients--;
  uv_poll_stop(&c->poll);
  close(c->fd);
  uv_close((uv_handle_t *)&c->poll, on_client_closed);
}

static struct sup_pool *find_pool(struct sup *s, const char *name) {
  for (size_t i = 0; i < s->npools; i++)
    if (!strcmp(s->pools[i]->cfg.name, name))
      return s->pools[i];
  return NULL;
}

void sup_pool_stats(const struct sup *s, const struct sup_pool *p,
                    Qpool__PoolStats *st) {
  const Qpool__Report *r = &p->report;
  const struct sup_worker *w = s->workers[p->worker];
  qpool__pool_stats__init(st);
  st->name = (char *)p->cfg.name;
  st->server = p->cfg.server;
  st->worker = p->worker;
  st->worker_pid = w->pid > 0 ? (uint32_t)w->pid : 0;
  st->worker_restarts = w->restarts;
  st->ready = w->pid > 0 && w->hello && p->has_report && !p->failed;
  st->has_failed = 1;
  st->failed = p->failed;
  /* the worker's entries of shared/stats.c, then qpoold's own */
  qp_stats_from_report(st, r);
  if (!p->has_report)
    st->capacity = p->cfg.server ? p->cfg.set.max_cap : p->cfg.set.min_cap;
  st->app_errors = p->app_errors;
  st->rejected_ips = p->rejected_ip;
  st->dropped_datagrams += p->dropped; /* the listener's, and the worker's */
  st->handoffs = p->handoffs;
  st->sessions = p->sessions;
  st->stateless_resets = p->resets;
  st->last_error = (char *)p->last_error;
  st->congestion_control = (char *)p->cc_reported; /* NULL: not yet */
  /* the worker's, range-checked on receipt; absent before its report */
  st->has_max_stream_window = r->has_max_stream_window;
  st->max_stream_window = r->max_stream_window;
}

Qpool__PoolStats **sup_stats_collect(const struct sup *s,
                                     const struct sup_pool *only, size_t *n) {
  *n = only ? 1 : s->npools;
  /* one block: the pointer array, then the structs it points at */
  Qpool__PoolStats **ptrs =
      malloc((*n ? *n : 1) * (sizeof(*ptrs) + sizeof(Qpool__PoolStats)));
  if (!ptrs)
    return NULL;
  Qpool__PoolStats *st = (Qpool__PoolStats *)(ptrs + (*n ? *n : 1));
  for (size_t i = 0; i < *n; i++) {
    sup_pool_stats(s, only ? only : s->pools[i], &st[i]);
    ptrs[i] = &st[i];
  }
  return ptrs;
}

/* Answers with the stats of one pool (p) or of all pools (p == NULL). */
static void respond_stats(struct sup_client *c, uint64_t tag,
                          const struct sup_pool *only) {
  size_t n;
  Qpool__PoolStats **ptrs = sup_stats_collect(c->s, only, &n);
  if (!ptrs) {
    respond(c, tag, ENOMEM, "out of memory", 0, 0, -1);
    return;
  }
  Qpool__Response r;
  qp_ctl_response_init(&r, tag, 0, NULL, 0, 0);
  r.n_pools = n;
  r.pools = ptrs;
  int rc = qp_frame_send(c->fd, QPOOL__CTL_TYPE__CTL_RESPONSE, &r.base, -1);
  free(ptrs);
  if (rc < 0) {
    qp_info("control: dropping a client: %s",
            rc == -EAGAIN ? "it does not read its answers" : strerror(-rc));
    client_drop(c);
  }
}

void sup_control_notify(struct sup *s) {
  for (struct sup_client *c = s->clients, *next; c; c = next) {
    next = c->next; /* respond_stats may drop c */
    if (c->watching)
      respond_stats(c, c->watch_tag, NULL);
  }
}

/* Root and qpoold's own user may do anything; others only what the pool's
 * allow_users / allow_groups grant. Stats and Watch are open to anyone who
 * can connect. */
static int allowed(const struct sup_client *c, const struct sup_pool *p) {
  uid_t uid = c->cred.uid;
  if (uid == 0 || uid == geteuid())
    return 1;
  for (size_t i = 0; i < p->cfg.n_allow_uid; i++)
    if (p->cfg.allow_uid[i] == uid)
      return 1;
  for (size_t i = 0; i < p->cfg.n_allow_gid; i++)
    for (int g = 0; g < c->ngroups; g++)
      if (p->cfg.allow_gid[i] == c->groups[g])
        return 1;
  return 0;
}

/* OP_SESSION: a socket pair, one end to the pool's worker, the other to the
 * (already authorised) application, which takes streams on it directly. */
static void open_session(struct sup_client *c, uint64_t tag,
                         struct sup_pool *p) {
  struct sup *s = c->s;
  struct sup_worker *w = s->workers[p->worker];
  if (w->pid <= 0 || !w->hello || s->stopping) {
    respond(c, tag, EAGAIN,
            s->stopping ? "qpoold is stopping"
                        : "the pool's worker is restarting: try again",
            0, 0, -1);
    return;
  }
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0,
                 sv) < 0) {
    respond(c, tag, errno == EMFILE || errno == ENFILE ? EBUSY : errno,
            "cannot make a session socket", 0, 0, -1);
    return;
  }
  Qpool__Session m = QPOOL__SESSION__INIT;
  m.pool = p->cfg.name;
  m.uid = (uint32_t)c->cred.uid;
  if (sup_worker_send(s, w, QPOOL__MSG_TYPE__MSG_SESSION, &m.base, sv[1]) < 0)
    respond(c, tag, EBUSY, "the pool's worker is busy: try again", 0, 0, -1);
  else {
    p->sessions++;
    respond(c, tag, 0, NULL, 0, 0, sv[0]);
  }
  close(sv[0]);
  close(sv[1]);
}

/* ---- the requests an application may send (control.proto CtlOp) ------
 * One table, as at the worker boundary (shared/msg_rules.h), but answered:
 * an application gets an error for a request it may not make, and keeps
 * its connection. */

static void op_stats(struct sup_client *c, const Qpool__Request *m,
                     struct sup_pool *p) {
  if (m->op == QPOOL__CTL_OP__OP_WATCH) {
    c->watching = 1;
    c->watch_tag = m->tag;
  }
  respond_stats(c, m->tag, p);
}

static void op_errors(struct sup_client *c, const Qpool__Request *m,
                      struct sup_pool *p) {
  p->app_errors = m->op == QPOOL__CTL_OP__OP_ADD_ERROR ? p->app_errors + 1 : 0;
  respond(c, m->tag, 0, NULL, 0, 0, -1);
  sup_control_notify(c->s); /* watchers see the counter change */
}

static void op_flush(struct sup_client *c, const Qpool__Request *m,
                     struct sup_pool *p) {
  struct sup *s = c->s;
  Qpool__Flush fl = QPOOL__FLUSH__INIT;
  fl.pool = p->cfg.name;
  int rc = sup_worker_send(s, s->workers[p->worker], QPOOL__MSG_TYPE__MSG_FLUSH,
                           &fl.base, -1);
  respond(c, m->tag, rc == 0 ? 0 : EAGAIN,
          rc == 0 ? NULL : "the pool's worker is restarting: try again", 0, 0,
          -1);
}

static void op_session(struct sup_client *c, const Qpool__Request *m,
                       struct sup_pool *p) {
  open_session(c, m->tag, p);
}

/* IncomingGet, OutgoingGet, ConnInfo: forwarded to the pool's worker (the
 * path of applications without a session). */
static void op_forward(struct sup_client *c, const Qpool__Request *m,
                       struct sup_pool *p) {
  struct sup *s = c->s;
  if (m->op == QPOOL__CTL_OP__OP_OUTGOING_GET && !m->has_stream_id) {
    respond(c, m->tag, EINVAL, "OutgoingGet needs a stream_id", 0, 0, -1);
    return;
  }
  struct sup_worker *w = s->workers[p->worker];
  if (w->pid <= 0 || s->stopping) {
    respond(c, m->tag, EAGAIN,
            s->stopping ? "qpoold is stopping"
                        : "the pool's worker is restarting: try again",
            0, 0, -1);
    return;
  }
  if (c->pending >= MAX_PENDING_PER_CLIENT) {
    respond(c, m->tag, EBUSY, "too many requests in flight", 0, 0, -1);
    return;
  }
  struct sup_pending *pd = calloc(1, sizeof(*pd));
  if (!pd) {
    respond(c, m->tag, ENOMEM, "out of memory", 0, 0, -1);
    return;
  }
  pd->token = ++s->next_token;
  pd->tag = m->tag;
  pd->client = c;
  pd->worker = w->slot;
  pd->conn_info = m->op == QPOOL__CTL_OP__OP_CONN_INFO;
  pd->next = s->pending;
  s->pending = pd;
  c->pending++;
  int rc;
  if (pd->conn_info) {
    Qpool__ConnInfoGet ci = QPOOL__CONN_INFO_GET__INIT;
    ci.token = pd->token;
    ci.pool = p->cfg.name;
    ci.has_stream_id = m->has_stream_id;
    ci.stream_id = m->stream_id;
    rc = sup_worker_send(s, w, QPOOL__MSG_TYPE__MSG_CONN_INFO, &ci.base, -1);
  } else {
    Qpool__Get g = QPOOL__GET__INIT;
    g.token = pd->token;
    g.pool = p->cfg.name;
    g.any = m->op == QPOOL__CTL_OP__OP_INCOMING_GET;
    g.has_stream_id = !g.any;
    g.stream_id = m->stream_id;
    g.timeout_ms = m->has_timeout_ms ? m->timeout_ms : 0;
    rc = sup_worker_send(s, w, QPOOL__MSG_TYPE__MSG_GET, &g.base, -1);
  }
  if (rc < 0) {
    s->pending = pd->next; /* it is still the list's head */
    c->pending--;
    free(pd);
    respond(c, m->tag, EBUSY, "the pool's worker is busy: try again", 0, 0, -1);
  }
}

#define OP_POOL 1u    /* names an existing pool (else: optional) */
#define OP_ALLOWED 2u /* the caller must be allowed to use it */
static const struct {
  int op;
  unsigned flags;
  void (*handle)(struct sup_client *c, const Qpool__Request *m,
                 struct sup_pool *p);
} ops[] = {
#define O(x) QPOOL__CTL_OP__OP_##x
    {O(STATS), 0, op_stats}, /* read-only: open to every caller */
    {O(WATCH), 0, op_stats},
    {O(ADD_ERROR), OP_POOL | OP_ALLOWED, op_errors},
    {O(RESET_ERROR), OP_POOL | OP_ALLOWED, op_errors},
    {O(FLUSH), OP_POOL | OP_ALLOWED, op_flush},
    {O(SESSION), OP_POOL | OP_ALLOWED, op_session},
    {O(INCOMING_GET), OP_POOL | OP_ALLOWED, op_forward},
    {O(OUTGOING_GET), OP_POOL | OP_ALLOWED, op_forward},
    {O(CONN_INFO), OP_POOL | OP_ALLOWED, op_forward},
#undef O
};

static void handle_request(struct sup_client *c, const Qpool__Request *m) {
  struct sup *s = c->s;
  char msg[160];
  size_t i = 0, n = sizeof(ops) / sizeof(ops[0]);
  while (i < n && ops[i].op != (int)m->op)
    i++;
  if (i == n) {
    respond(c, m->tag, EINVAL, "unknown operation", 0, 0, -1);
    return;
  }
  if ((ops[i].flags & OP_POOL) && !m->pool) {
    respond(c, m->tag, EINVAL, "this request needs a pool name", 0, 0, -1);
    return;
  }
  struct sup_pool *p = m->pool ? find_pool(s, m->pool) : NULL;
  if (m->pool && !p) {
    snprintf(msg, sizeof(msg), "no pool named \"%.64s\"", m->pool);
    respond(c, m->tag, ENOENT, msg, 0, 0, -1);
    return;
  }
  if ((ops[i].flags & OP_ALLOWED) && !allowed(c, p)) {
    snprintf(msg, sizeof(msg),
             "permission denied: uid %u may not use pool \"%.64s\"",
             (unsigned)c->cred.uid, p->cfg.name);
    respond(c, m->tag, EACCES, msg, 0, 0, -1);
    return;
  }
  ops[i].handle(c, m, p);
}

static void on_client(uv_poll_t *h, int status, int events) {
  struct sup_client *c = h->data;
  struct sup *s = c->s;
  (void)events;
  if (status < 0) {
    client_drop(c);
    return;
  }
  for (int i = 0; i < 64 && !c->gone; i++) {
    Qpool__Request *m;
    const char *why;
    int rc = qp_ctl_recv_request(c->fd, s->buf, sizeof(s->buf), &m, &why);
    if (rc == -EAGAIN)
      return;
    if (rc <= 0) { /* closed, or bad input: this client only */
      if (rc < 0)
        qp_info("control: dropping a client: %s (%s)", why, strerror(-rc));
      client_drop(c);
      return;
    }
    handle_request(c, m);
    qpool__request__free_unpacked(m, NULL);
  }
}

static void on_accept(uv_poll_t *h, int status, int events) {
  struct sup *s = h->data;
  (void)status, (void)events;
  for (int i = 0; i < 64; i++) {
    int fd = accept4(s->ctl_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0)
      return;
    struct sup_client *c =
        s->nclients < MAX_CLIENTS ? calloc(1, sizeof(*c)) : NULL;
    if (!c) {
      close(fd);
      continue;
    }
    c->s = s;
    c->fd = fd;
    socklen_t cl = sizeof(c->cred);
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &c->cred, &cl) < 0) {
      close(fd);
      free(c);
      continue;
    }
    c->ngroups = 1;
    c->groups[0] = c->cred.gid;
    struct passwd *pw = getpwuid(c->cred.uid); /* supplementary groups */
    if (pw) {
      int n = (int)(sizeof(c->groups) / sizeof(c->groups[0]));
      if (getgrouplist(pw->pw_name, c->cred.gid, c->groups, &n) >= 0)
        c->ngroups = n;
    }
    uv_poll_init_socket(s->loop, &c->poll, fd);
    c->poll.data = c;
    uv_poll_start(&c->poll, UV_READABLE, on_client);
    c->next = s->clients;
    s->clients = c;
    s->nclients++;
  }
}

int sup_control_open(struct sup *s, char *err, size_t errlen) {
  const char *path = s->cfg->control;
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  if (strlen(path) >= sizeof(sa.sun_path)) {
    snprintf(err, errlen, "control socket path too long: %.200s", path);
    return -ENAMETOOLONG;
  }
  strcpy(sa.sun_path, path);
  char dir[sizeof(sa.sun_path)];
  memcpy(dir, path, strlen(path) + 1);
  char *slash = strrchr(dir, '/');
  if (slash && slash != dir) {
    *slash = 0;
    (void)mkdir(dir, 0755);
  }
  int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    snprintf(err, errlen, "control socket: %s", strerror(errno));
    return -errno;
  }
  (void)unlink(path); /* a stale socket of an earlier run */
  /* anyone may connect: SO_PEERCRED and the pools' allow lists decide what
   * a caller may do (stats are open, taking streams is not) */
  mode_t old = umask(0111);
  int rc = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
  umask(old);
  if (rc < 0 || listen(fd, 128) < 0) {
    snprintf(err, errlen, "cannot listen on the control socket %.200s: %s",
             path, strerror(errno));
    rc = -errno;
    close(fd);
    return rc;
  }
  s->ctl_fd = fd;
  uv_poll_init_socket(s->loop, &s->ctl_poll, fd);
  s->ctl_poll.data = s;
  uv_poll_start(&s->ctl_poll, UV_READABLE, on_accept);
  qp_info("control socket %s", path);
  return 0;
}

void sup_control_close(struct sup *s) {
  if (s->ctl_fd < 0)
    return;
  uv_poll_stop(&s->ctl_poll);
  uv_close((uv_handle_t *)&s->ctl_poll, NULL);
  close(s->ctl_fd);
  s->ctl_fd = -1;
  (void)unlink(s->cfg->control);
  while (s->clients)
    client_drop(s->clients);
  while (s->pending) {
    struct sup_pending *p = s->pending;
    s->pending = p->next;
    free(p);
  }
}

static struct sup_pending *take_pending(struct sup *s, uint64_t token,
                                        int worker, int conn_info) {
  for (struct sup_pending **pp = &s->pending; *pp; pp = &(*pp)->next)
    if ((*pp)->token == token && (*pp)->worker == worker &&
        (*pp)->conn_info == conn_info) {
      struct sup_pending *p = *pp;
      *pp = p->next;
      if (p->client)
        p->client->pending--;
      return p;
    }
  return NULL;
}

int sup_control_get_result(struct sup *s, struct sup_worker *w,
                           const Qpool__GetResult *m, int fd) {
  struct sup_pending *p = take_pending(s, m->token, w->slot, 0);
  if (!p) {
    if (fd >= 0)
      close(fd);
    return -EPROTO; /* a result nobody asked this worker for */
  }
  if (m->status == 0 && fd >= 0) {
    respond(p->client, p->tag, 0, NULL, 1, m->stream_id, fd);
  } else {
    int code = m->status < 0 ? -m->status : EIO;
    respond(p->client, p->tag, code,
            code == ETIMEDOUT ? "no stream before the timeout" : strerror(code),
            0, 0, -1);
  }
  if (fd >= 0)
    close(fd); /* the application has its own copy now (or nobody waits) */
  free(p);
  return 0;
}

int sup_control_conn_info_result(struct sup *s, struct sup_worker *w,
                                 const Qpool__ConnInfoResult *m,
                                 const char **why) {
  *why = NULL;
  if (m->status == 0 && !m->conn)
    *why = "status 0 without a description";
  else if (m->status == 0 && qp_conn_info_check(m->conn, why) < 0)
    ; /* *why says what */
  else if (m->status > 0 || m->status < -4095)
    *why = "a status that is no negative errno";
  if (*why)
    return -EPROTO;
  struct sup_pending *p = take_pending(s, m->token, w->slot, 1);
  if (!p) {
    *why = "nobody asked for it";
    return -EPROTO;
  }
  if (m->status == 0) {
    Qpool__Response r;
    qp_ctl_response_init(&r, p->tag, 0, NULL, 0, 0);
    r.conn = m->conn; /* checked: fits a frame with room to spare */
    if (p->client && !p->client->gone &&
        qp_frame_send(p->client->fd, QPOOL__CTL_TYPE__CTL_RESPONSE, &r.base,
                      -1) < 0) {
      qp_info("control: dropping a client: it does not read its answers");
      client_drop(p->client);
    }
  } else {
    char msg[QP_CONN_STR_MAX + 1];
    snprintf(msg, sizeof(msg), "%s",
             m->error ? m->error : strerror(-m->status));
    respond(p->client, p->tag, -m->status, msg, 0, 0, -1);
  }
  free(p);
  return 0;
}

void sup_control_worker_gone(struct sup *s, struct sup_worker *w) {
  for (struct sup_pending **pp = &s->pending; *pp;) {
    struct sup_pending *p = *pp;
    if (p->worker != w->slot) {
      pp = &p->next;
      continue;
    }
    *pp = p->next;
    if (p->client)
      p->client->pending--;
    respond(p->client, p->tag, EAGAIN, "the pool's worker stopped: try again",
            0, 0, -1);
    free(p);
  }
}
