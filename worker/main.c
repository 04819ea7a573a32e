/* qpool-worker: runs the pools qpoold assigns to it, inside its sandbox.
 * Started by qpoold only, with the supervisor's SOCK_SEQPACKET socket on
 * fd 3. Configuration (and TLS material) arrives as messages; ConfigDone
 * makes it enter the sandbox and start its pools. */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "ipc.pb-c.h"
#include "shared/frame.h"
#include "shared/log.h"
#include "shared/msg_rules.h"
#include "shared/stats.h"
#include "shared/pool_params.h"
#include "worker/engine.h"
#include "worker/sandbox.h"
#include "worker/session.h"

#define SUP_FD 3
#define REPORT_TICK_MS 250
#define REPORT_MAX_NS (1000 * UINT64_C(1000000)) /* at least once a second */

struct wpool {
  struct wpool *next;
  wrk_pool *p;
  char name[WRK_NAME_MAX];
  Qpool__Report last;
  char last_error[512];
  char sent_error[512]; /* last_error of the last report sent */
  uint64_t last_sent;
  int failed; /* could not be created: reported, never started */
};

static struct {
  uv_loop_t loop;
  uv_poll_t sup;
  uv_timer_t report;
  struct wpool *pools;
  int sandboxed, stopping, closing_pools;
  int probes;    /* QPOOL_ALLOW_PROBES=1: the sandbox proofs of the tests */
  uint64_t seen; /* the once-only messages received (requests[] bits) */
  struct wrk_sessions sessions;
  uint8_t buf[QP_FRAME_HDR + QP_FRAME_MAX];
} W;

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void die(const char *fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  qp_err("%s", msg);
  _exit(1);
}

static void send_msg(Qpool__MsgType type, const ProtobufCMessage *m, int fd) {
  int rc = qp_frame_send(SUP_FD, (uint16_t)type, m, fd);
  if (rc == -EPIPE || rc == -ECONNRESET)
    _exit(0); /* the supervisor is gone: so are we */
  if (rc < 0)
    qp_warn("cannot send message %d to the supervisor: %s", type,
            strerror(-rc));
}

static struct wpool *find_pool(const char *name) {
  for (struct wpool *w = W.pools; w; w = w->next)
    if (!strcmp(w->name, name))
      return w;
  return NULL;
}

/* ---- reports ------------------------------------------------------------ */

static void report_pool(struct wpool *w, int force) {
  Qpool__Report r = QPOOL__REPORT__INIT;
  struct wrk_pool_stats st = {0};
  const char *err = w->last_error;
  r.name = w->name;
  if (w->p) {
    wrk_pool_stats(w->p, &st);
    r.idle_streams = wrk_pool_active(w->p);
    r.capacity = wrk_pool_capacity(w->p);
    r.interval_ns = wrk_pool_interval(w->p);
    r.congestion_control = (char *)qp_cc_name(wrk_pool_cc_algo(w->p));
    r.has_max_stream_window = 1;
    r.max_stream_window = wrk_pool_max_stream_window(w->p);
    if (*wrk_pool_last_error(w->p))
      err = wrk_pool_last_error(w->p);
  }
  r.streams_created = st.streams_created;
  r.streams_taken = st.streams_taken;
  r.streams_failed = st.streams_failed;
  r.streams_refused = st.streams_refused;
  r.setup_errors = st.setup_errors;
  r.in_bytes = st.bytes_in;
  r.out_bytes = st.bytes_out;
  r.dropped_datagrams = st.dropped_datagrams;
  r.connected = st.connected;
  r.connections = st.conns;
  r.last_error = (char *)err;
  r.has_failed = w->failed;
  r.failed = w->failed;
  uint64_t now = uv_hrtime();
  Qpool__Report *l = &w->last;
  int changed = qp_stats_report_changed(&r, l) || /* shared/stats.c */
                strcmp(err, w->sent_error) != 0;  /* a reason: at once */
  if (!force && !changed && now - w->last_sent < REPORT_MAX_NS)
    return;
  send_msg(QPOOL__MSG_TYPE__MSG_REPORT, &r.base, -1);
  *l = r;
  l->name = NULL;
  l->last_error = NULL;
  snprintf(w->sent_error, sizeof(w->sent_error), "%s", err);
  w->last_sent = now;
}

static void on_report(uv_timer_t *t) {
  (void)t;
  for (struct wpool *w = W.pools; w; w = w->next)
    report_pool(w, 0);
}

/* ---- requests from the supervisor --------------------------------------- */

static void on_dial(wrk_pool *p, uint64_t seq, void *arg) {
  (void)arg;
  Qpool__DialRequest m = QPOOL__DIAL_REQUEST__INIT;
  m.pool = (char *)wrk_pool_name(p);
  m.seq = seq;
  send_msg(QPOOL__MSG_TYPE__MSG_DIAL_REQUEST, &m.base, -1);
}

/* The CA bundle that came with a PoolAdd: a sealed memfd, mapped (reading
 * it needs no open(), so this works in the sandbox too). Returns 0 with the
 * mapping in *data (munmap it), or -EINVAL with a sentence in err. */
static int map_ca(int fd, void **data, size_t *len, char *err, size_t errlen) {
  struct stat st;
  if (fd < 0) {
    snprintf(err, errlen, "no CA bundle came with the settings (tls mode 2)");
    return -EINVAL;
  }
  if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size <= 0) {
    snprintf(err, errlen, "the CA bundle from the supervisor is unusable");
    return -EINVAL;
  }
  void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
  if (p == MAP_FAILED) {
    snprintf(err, errlen, "cannot map the CA bundle: %s", strerror(errno));
    return -EINVAL;
  }
  *data = p;
  *len = (size_t)st.st_size;
  return 0;
}

/* fd: the CA bundle of a client pool in tls mode 2 (owned: closed here). */
static void handle_pool_add(const Qpool__PoolAdd *m, int fd) {
  if (find_pool(m->name))
    die("supervisor added pool %s twice", m->name);
  int mode2 = !m->server && m->tls_mode[0] == '2';
  if (fd >= 0 && !mode2)
    die("PoolAdd of pool %s carries an fd it has no use for", m->name);
  struct wpool *w = calloc(1, sizeof(*w));
  if (!w)
    die("out of memory");
  snprintf(w->name, sizeof(w->name), "%s", m->name);
  struct wrk_pool_config cfg;
  wrk_pool_config_init(&cfg, m->server ? WRK_SERVER : WRK_CLIENT);
  snprintf(cfg.name, sizeof(cfg.name), "%s", m->name);
  char err[512];
  /* the table reads every setting and checks its range */
  int rc = qp_pool_settings_from_pb(m, &cfg.set, err, sizeof(err));
  /* a configured certificate is used or the pool fails: never replaced by
   * a self-signed one (that is only for a server given neither) */
  if (m->has_cert_pem || m->has_key_pem) {
    if (!m->has_cert_pem || !m->has_key_pem || m->cert_pem.len == 0 ||
        m->key_pem.len == 0) {
      snprintf(err, sizeof(err),
               "the settings hold a certificate without "
               "its key, or an empty one");
      rc = -EINVAL;
    }
    cfg.cert_pem = (const char *)m->cert_pem.data;
    cfg.cert_pem_len = m->cert_pem.len;
    cfg.key_pem = (const char *)m->key_pem.data;
    cfg.key_pem_len = m->key_pem.len;
  }
  void *ca = NULL;
  size_t ca_len = 0;
  if (rc == 0 && mode2 &&
      (rc = map_ca(fd, &ca, &ca_len, err, sizeof(err))) == 0) {
    cfg.ca_pem = ca;
    cfg.ca_pem_len = ca_len;
  }
  if (fd >= 0)
    close(fd);
  if (m->has_reset_secret) {
    cfg.reset_secret = m->reset_secret.data;
    cfg.reset_secret_len = m->reset_secret.len;
  }
  cfg.external_listener = 1;
  cfg.dial = on_dial;
  if (rc == 0)
    rc = wrk_pool_new(&W.loop, &cfg, &w->p, err, sizeof(err));
  if (ca)
    munmap(ca, ca_len); /* the credentials hold their own copy */
  if (rc < 0) {
    qp_err("pool %s: %s", m->name, err);
    snprintf(w->last_error, sizeof(w->last_error), "%s", err);
    w->p = NULL;
    w->failed = 1;
  }
  w->next = W.pools;
  W.pools = w;
  if (W.sandboxed && w->p)
    wrk_pool_start(w->p);
  report_pool(w, 1);
}

static void handle_config_done(const Qpool__ConfigDone *m) {
  struct wrk_sandbox_opts o = {0};
  o.uid = m->uid;
  o.gid = m->gid;
  o.chroot_dir = *m->chroot ? m->chroot : NULL;
#ifdef QP_SECCOMP_TRAP /* cmake -DQP_SECCOMP_TRAP=ON: debugging builds */
  o.seccomp_mode = 2;
#else
  o.seccomp_mode = getenv("QPOOL_SECCOMP_TRAP") ? 2 : 1;
#endif
  struct rlimit rl;
  o.max_fds = 65536; /* never above the hard limit we inherited */
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_max < o.max_fds)
    o.max_fds = rl.rlim_max;
  char err[512];
  if (wrk_sandbox_enter(&o, getppid(), err, sizeof(err)) < 0)
    die("cannot enter the sandbox: %s", err);
  W.sandboxed = 1;
  for (struct wpool *w = W.pools; w; w = w->next)
    if (w->p)
      wrk_pool_start(w->p);
  uv_timer_start(&W.report, on_report, REPORT_TICK_MS, REPORT_TICK_MS);
  qp_info("in the sandbox (uid %u, chroot %s), %s", m->uid,
          *m->chroot ? m->chroot : "none", "serving");
}

static void handle_handoff(const Qpool__HandOff *m, int fd) {
  struct wpool *w = find_pool(m->pool);
  if (!w || !w->p || m->n_datagrams == 0) {
    qp_warn("hand-off for unknown pool %s dropped", m->pool);
    close(fd);
    return;
  }
  const uint8_t *d[64];
  size_t l[64];
  size_t n = m->n_datagrams < 64 ? m->n_datagrams : 64;
  for (size_t i = 0; i < n; i++) {
    d[i] = m->datagrams[i].data;
    l[i] = m->datagrams[i].len;
  }
  (void)wrk_pool_adopt(w->p, fd, d, l, n);
}

static void handle_datagram(const Qpool__Datagram *m) {
  struct wpool *w = find_pool(m->pool);
  if (w && w->p && m->peer.len <= sizeof(struct sockaddr_storage) &&
      m->peer.len >= sizeof(struct sockaddr_in)) {
    struct sockaddr_storage ss = {0};
    memcpy(&ss, m->peer.data, m->peer.len);
    (void)wrk_pool_datagram(w->p, (struct sockaddr *)&ss, m->data.data,
                            m->data.len);
  }
}

static void handle_dial_reply(const Qpool__DialReply *m, int fd) {
  struct wpool *w = find_pool(m->pool);
  if (!w || !w->p) {
    if (fd >= 0)
      close(fd);
    return;
  }
  if (m->ok && fd >= 0)
    wrk_pool_dial_done(w->p, m->seq, fd, NULL);
  else {
    if (fd >= 0)
      close(fd);
    wrk_pool_dial_done(w->p, m->seq, -EHOSTUNREACH,
                       m->error ? m->error : "supervisor could not dial");
  }
}

static void on_pool_closed(void *arg) {
  (void)arg;
  if (--W.closing_pools == 0 && W.stopping) {
    Qpool__Bye b = QPOOL__BYE__INIT;
    b.reason = "shutdown";
    send_msg(QPOOL__MSG_TYPE__MSG_BYE, &b.base, -1);
    uv_stop(&W.loop);
  }
}

static void close_pool(struct wpool *w) {
  if (w->p) {
    W.closing_pools++;
    wrk_pool_close(w->p, on_pool_closed, NULL);
    w->p = NULL;
  }
}

static void handle_pool_remove(const Qpool__PoolRemove *m) {
  for (struct wpool **pp = &W.pools; *pp; pp = &(*pp)->next) {
    if (!strcmp((*pp)->name, m->name)) {
      struct wpool *w = *pp;
      *pp = w->next;
      close_pool(w);
      free(w);
      return;
    }
  }
}

static void handle_shutdown(const Qpool__Shutdown *m) {
  if (W.stopping) /* a retired worker, then qpoold's own stop: once is
                     enough */
    return;
  qp_info("shutting down: %s", m->reason);
  W.stopping = 1;
  uv_timer_stop(&W.report);
  W.closing_pools++; /* guard until every pool was asked */
  for (struct wpool *w = W.pools; w; w = w->next)
    close_pool(w);
  on_pool_closed(NULL);
}

/* Gets asked by the supervisor and not answered yet (for Cancel). */
struct sup_get {
  struct sup_get *next;
  uint64_t token;
  char pool[WRK_NAME_MAX];
};
static struct sup_get *sup_gets;

static void on_get(wrk_pool *p, int status, uint32_t id, int fd, void *arg) {
  (void)p;
  struct sup_get *g = arg;
  for (struct sup_get **pp = &sup_gets; *pp; pp = &(*pp)->next)
    if (*pp == g) {
      *pp = g->next;
      break;
    }
  uint64_t *token = &g->token;
  Qpool__GetResult r = QPOOL__GET_RESULT__INIT;
  r.token = *token;
  r.status = status;
  r.has_stream_id = status == 0;
  r.stream_id = id;
  send_msg(QPOOL__MSG_TYPE__MSG_GET_RESULT, &r.base, status == 0 ? fd : -1);
  if (fd >= 0)
    close(fd); /* the supervisor holds the application's copy now */
  free(g);
}

static void handle_get(const Qpool__Get *m) {
  struct wpool *w = find_pool(m->pool);
  struct sup_get *g = calloc(1, sizeof(*g));
  int rc = -ENOENT;
  if (g && w && w->p) {
    g->token = m->token;
    snprintf(g->pool, sizeof(g->pool), "%s", m->pool);
    g->next = sup_gets; /* listed first: the callback never runs inline */
    sup_gets = g;
    rc = m->any ? wrk_pool_incoming_get(w->p, m->timeout_ms, on_get, g)
                : wrk_pool_outgoing_get(w->p, m->stream_id, m->timeout_ms,
                                        on_get, g);
    if (rc < 0)
      sup_gets = g->next;
  }
  if (rc < 0) { /* the callback will not run: answer now */
    Qpool__GetResult r = QPOOL__GET_RESULT__INIT;
    r.token = m->token;
    r.status = g ? rc : -ENOMEM;
    send_msg(QPOOL__MSG_TYPE__MSG_GET_RESULT, &r.base, -1);
    free(g);
  }
}

static void handle_cancel(const Qpool__Cancel *m) {
  for (struct sup_get *g = sup_gets; g; g = g->next)
    if (g->token == m->token) {
      struct wpool *w = find_pool(g->pool);
      if (w && w->p)
        wrk_pool_get_cancel(w->p, g);
      return;
    }
}

/* Answered at once: nothing to cancel. */
static void handle_conn_info(const Qpool__ConnInfoGet *m) {
  struct wpool *w = find_pool(m->pool);
  struct wrk_conn_info_msg ci;
  Qpool__ConnInfoResult r = QPOOL__CONN_INFO_RESULT__INIT;
  r.token = m->token;
  if (!w || !w->p) {
    r.status = -ENOENT;
    r.error = "the pool does not run in this worker";
  } else {
    r.status =
        wrk_conn_info_msg(w->p, m->has_stream_id ? &m->stream_id : NULL, &ci);
    if (r.status == 0)
      r.conn = &ci.m;
    else
      r.error = ci.why;
  }
  send_msg(QPOOL__MSG_TYPE__MSG_CONN_INFO_RESULT, &r.base, -1);
}

static wrk_pool *lookup_pool(const char *name, void *arg) {
  (void)arg;
  struct wpool *w = find_pool(name);
  return w && !W.stopping ? w->p : NULL;
}

static void handle_session(const Qpool__Session *m, int fd) {
  if (W.stopping || !find_pool(m->pool)) {
    close(fd); /* the application sees EOF and falls back to qpoold */
    return;
  }
  if (wrk_session_add(&W.sessions, m->pool, fd) == 0)
    qp_debug("session of pool %s for uid %u", m->pool, m->uid);
}

static void handle_flush(const Qpool__Flush *m) {
  struct wpool *w = find_pool(m->pool);
  if (w && w->p) {
    wrk_pool_flush(w->p);
    report_pool(w, 1);
  }
}

static void handle_probe(const Qpool__Probe *m) {
  Qpool__ProbeResult r = QPOOL__PROBE_RESULT__INIT;
  r.what = m->what;
  r.err = wrk_sandbox_probe(m->what);
  send_msg(QPOOL__MSG_TYPE__MSG_PROBE_RESULT, &r.base, -1);
}

/* ---- dispatch ------------------------------------------------------------ */

#define UNPACK(T, lower, f)                                                    \
  Qpool__##T *m = qpool__##lower##__unpack(NULL, (f)->len, (f)->payload);      \
  if (!m)                                                                      \
    die("malformed " #T " message from the supervisor");

/* One handler per message: unpack, act, free. f->fd is the handler's. */
#define HANDLER(T, lower, call)                                                \
  static void msg_##lower(struct qp_frame *f) {                                \
    UNPACK(T, lower, f);                                                       \
    call;                                                                      \
    qpool__##lower##__free_unpacked(m, NULL);                                  \
  }
HANDLER(PoolAdd, pool_add, handle_pool_add(m, f->fd))
HANDLER(ConfigDone, config_done, handle_config_done(m))
HANDLER(HandOff, hand_off, handle_handoff(m, f->fd))
HANDLER(Datagram, datagram, handle_datagram(m))
HANDLER(DialReply, dial_reply, handle_dial_reply(m, f->fd))
HANDLER(PoolRemove, pool_remove, handle_pool_remove(m))
HANDLER(Probe, probe, handle_probe(m))
HANDLER(Get, get, handle_get(m))
HANDLER(Session, session, handle_session(m, f->fd))
HANDLER(Cancel, cancel, handle_cancel(m))
HANDLER(ConnInfoGet, conn_info_get, handle_conn_info(m))
HANDLER(Flush, flush, handle_flush(m))
HANDLER(Shutdown, shutdown, handle_shutdown(m))

/* What the supervisor may send, in which of our states (shared/
 * msg_rules.h). Before ConfigDone we only take settings: nothing that
 * reaches the network or an application runs outside the sandbox. After
 * Shutdown, what was already on its way is still served (pools close). */
enum { ST_CONFIG = 1, ST_RUNNING = 2, ST_STOPPING = 4 };
#define RUN (ST_RUNNING | ST_STOPPING)
static const struct {
  struct qp_msg_rule r;
  void (*handle)(struct qp_frame *f);
} requests[] = {
#define M(t) QPOOL__MSG_TYPE__MSG_##t
    {{M(POOL_ADD), "PoolAdd", QP_FD_MAY, ST_CONFIG | ST_RUNNING, 0},
     msg_pool_add},
    {{M(CONFIG_DONE), "ConfigDone", QP_FD_NONE, ST_CONFIG, QP_MSG_ONCE},
     msg_config_done},
    {{M(HANDOFF), "HandOff", QP_FD_MUST, RUN, 0}, msg_hand_off},
    {{M(DATAGRAM), "Datagram", QP_FD_NONE, RUN, 0}, msg_datagram},
    {{M(DIAL_REPLY), "DialReply", QP_FD_MAY, RUN, 0}, msg_dial_reply},
    {{M(POOL_REMOVE), "PoolRemove", QP_FD_NONE, ST_CONFIG | RUN, 0},
     msg_pool_remove},
    {{M(PROBE), "Probe", QP_FD_NONE, RUN, QP_MSG_PROBES}, msg_probe},
    {{M(GET), "Get", QP_FD_NONE, RUN, 0}, msg_get},
    {{M(SESSION), "Session", QP_FD_MUST, RUN, 0}, msg_session},
    {{M(CANCEL), "Cancel", QP_FD_NONE, RUN, 0}, msg_cancel},
    {{M(CONN_INFO), "ConnInfoGet", QP_FD_NONE, RUN, 0}, msg_conn_info_get},
    {{M(FLUSH), "Flush", QP_FD_NONE, RUN, 0}, msg_flush},
    {{M(SHUTDOWN), "Shutdown", QP_FD_NONE, ST_CONFIG | RUN, 0}, msg_shutdown},
#undef M
};
#undef RUN

static void dispatch(struct qp_frame *f) {
  size_t i = 0, n = sizeof(requests) / sizeof(requests[0]);
  while (i < n && requests[i].r.type != (int)f->type)
    i++;
  const struct qp_msg_rule *r = i < n ? &requests[i].r : NULL;
  unsigned state = W.stopping    ? ST_STOPPING
                   : W.sandboxed ? ST_RUNNING
                                 : ST_CONFIG;
  const char *why;
  if (qp_msg_rule_check(r, i, f->fd >= 0, state, W.probes ? QP_MSG_PROBES : 0,
                        &W.seen, &why) < 0)
    die("message %s (%u) from the supervisor %s (state %s)", r ? r->name : "?",
        f->type, why,
        state == ST_CONFIG    ? "configuring"
        : state == ST_RUNNING ? "running"
                              : "stopping");
  requests[i].handle(f);
}

static void on_sup(uv_poll_t *h, int status, int events) {
  (void)h, (void)events;
  if (status < 0) { /* POLLERR (libuv says UV_EBADF): SO_ERROR has why */
    int e = 0;
    socklen_t el = sizeof(e);
    (void)getsockopt(SUP_FD, SOL_SOCKET, SO_ERROR, &e, &el);
    if (e == ECONNRESET || e == EPIPE)
      _exit(0); /* the supervisor is gone: so are we */
    die("supervisor socket: %s", e ? strerror(e) : uv_strerror(status));
  }
  for (int i = 0; i < 64; i++) {
    struct qp_frame f;
    int rc = qp_frame_recv(SUP_FD, W.buf, sizeof(W.buf), &f);
    if (rc == -EAGAIN)
      return;
    if (rc == 0)
      _exit(0); /* supervisor closed: nothing left to do */
    if (rc < 0)
      die("bad frame from the supervisor: %s", strerror(-rc));
    dispatch(&f);
  }
}

int main(int argc, char **argv) {
  (void)argv;
  int type = 0;
  socklen_t tl = sizeof(type);
  if (argc > 1 || getsockopt(SUP_FD, SOL_SOCKET, SO_TYPE, &type, &tl) < 0 ||
      type != SOCK_SEQPACKET) {
    fprintf(stderr, "qpool-worker is started by qpoold (it expects the "
                    "supervisor's socket on fd 3); run qpoold instead.\n");
    return 2;
  }
  char ident[32];
  snprintf(ident, sizeof(ident), "qpool-worker");
  qp_log_set_ident(ident);
  signal(SIGPIPE, SIG_IGN);
  /* The supervisor decides when we stop (Shutdown: pools close with "pool
   * closed", Bye). A stop of the whole process group (systemd, Ctrl-C)
   * signals us too; dying at once would lose that and leave the Shutdown
   * unread, which the supervisor sees as an error on our socket. */
  signal(SIGINT, SIG_IGN);
  signal(SIGTERM, SIG_IGN);
  const char *pr = getenv("QPOOL_ALLOW_PROBES"); /* as qpoold's */
  W.probes = pr && !strcmp(pr, "1");
  uv_loop_init(&W.loop);
  uv_timer_init(&W.loop, &W.report);
  wrk_sessions_init(&W.sessions, &W.loop, lookup_pool, NULL, W.buf,
                    sizeof(W.buf));
  uv_poll_init_socket(&W.loop, &W.sup, SUP_FD);
  uv_poll_start(&W.sup, UV_READABLE, on_sup);
  Qpool__Hello hello = QPOOL__HELLO__INIT;
  hello.pid = (uint32_t)getpid();
  hello.version = QP_VERSION;
  send_msg(QPOOL__MSG_TYPE__MSG_HELLO, &hello.base, -1);
  uv_run(&W.loop, UV_RUN_DEFAULT);
  return 0;
}
