/* Worker processes: fork + exec of qpool-worker with the supervisor's socket
 * on fd 3 and every other fd closed, configuration pushed as messages,
 * hostile-input handling (a bad message ends that worker), restarts with
 * back-off. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "shared/addr.h"
#include "shared/log.h"
#include "shared/msg_rules.h"
#include "shared/stats.h"
#include "shared/settings.h"
#include "supervisor/sup.h"

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000
#define STABLE_NS (10 * UINT64_C(1000000000))

static void on_worker_msg(uv_poll_t *h, int status, int events);

static struct sup *S_of(uv_handle_t *h) {
  return h->loop->data;
}

static void kill_worker(struct sup *s, struct sup_worker *w, const char *why) {
  (void)s;
  if (w->pid > 0) {
    qp_err("worker %d (pid %d): %s: killing it", w->slot, (int)w->pid, why);
    kill(w->pid, SIGKILL);
  }
}

static void out_free(struct sup_out *o) {
  if (o->fd >= 0)
    close(o->fd);
  free(o->frame);
  free(o);
}

static void out_clear(struct sup_worker *w) {
  while (w->out) {
    struct sup_out *o = w->out;
    w->out = o->next;
    out_free(o);
  }
  w->out_tail = NULL;
  w->out_bytes = 0;
}

static void update_poll(struct sup_worker *w) {
  if (w->fd >= 0 && w->poll_open)
    uv_poll_start(&w->poll, UV_READABLE | (w->out ? UV_WRITABLE : 0),
                  on_worker_msg);
}

/* Sends queued frames in order while the socket takes them. */
static void out_flush(struct sup *s, struct sup_worker *w) {
  while (w->out) {
    struct sup_out *o = w->out;
    int rc = qp_frame_send_raw(w->fd, o->frame, o->len, o->fd);
    if (rc == -EAGAIN) {
      if (uv_hrtime() - o->queued_ns > SUP_STUCK_NS)
        kill_worker(s, w, "has not read its messages for 10 s");
      break;
    }
    w->out = o->next;
    if (!w->out)
      w->out_tail = NULL;
    w->out_bytes -= o->len;
    out_free(o);
  }
  update_poll(w);
}

int sup_worker_send(struct sup *s, struct sup_worker *w, Qpool__MsgType t,
                    const ProtobufCMessage *m, int fd) {
  if (w->pid <= 0 || w->fd < 0)
    return -ENOTCONN;
  if (!w->out) {
    int rc = qp_frame_send(w->fd, (uint16_t)t, m, fd);
    if (rc == -EMSGSIZE)
      return rc; /* the caller says what did not fit */
    if (rc != -EAGAIN) {
      if (rc < 0 && rc != -EPIPE && rc != -ECONNRESET)
        qp_warn("worker %d: cannot send message %d: %s", w->slot, t,
                strerror(-rc));
      return 0; /* sent, or the worker is going away (SIGCHLD follows) */
    }
  }
  /* the worker is busy: queue, keeping order, up to a bound */
  struct sup_out *o = calloc(1, sizeof(*o));
  long len = o ? qp_frame_pack((uint16_t)t, m, &o->frame) : -ENOMEM;
  if (len < 0 || w->out_bytes + (size_t)len > SUP_OUT_MAX_BYTES) {
    if (o) {
      free(o->frame);
      free(o);
    }
    return len == -EMSGSIZE ? -EMSGSIZE : -EBUSY;
  }
  o->len = (size_t)len;
  o->fd = fd >= 0 ? fcntl(fd, F_DUPFD_CLOEXEC, 0) : -1;
  o->queued_ns = uv_hrtime();
  if (w->out_tail)
    w->out_tail->next = o;
  else
    w->out = o;
  w->out_tail = o;
  w->out_bytes += o->len;
  update_poll(w);
  return 0;
}

void sup_pool_failed(struct sup *s, struct sup_pool *p, const char *why) {
  if (p->failed && !strcmp(p->last_error, why))
    return; /* said already (a failed pool is reported every second) */
  qp_err("pool %s cannot start: %s", p->cfg.name, why);
  snprintf(p->last_error, sizeof(p->last_error), "%s", why);
  p->failed = 1;
  p->cc_reported = NULL; /* nothing runs: no controller to show */
  p->has_report = 1;     /* nothing more will come: READY must not wait */
  sup_control_notify(s);
  sup_check_ready(s);
}

void sup_worker_send_pool(struct sup *s, struct sup_worker *w,
                          struct sup_pool *p) {
  const struct sup_pool_cfg *c = &p->cfg;
  Qpool__PoolAdd m = QPOOL__POOL_ADD__INIT;
  struct qp_settings_pb_scratch scratch;
  m.name = (char *)c->name;
  m.server = c->server;
  if (c->server) {
    m.has_reset_secret = 1;
    m.reset_secret.data = (uint8_t *)p->reset_secret;
    m.reset_secret.len = sizeof(p->reset_secret);
  }
  qp_pool_settings_to_pb(&c->set, &m, &scratch);
  if (p->tls.cert_pem && p->tls.key_pem) {
    m.has_cert_pem = m.has_key_pem = 1;
    m.cert_pem.data = (uint8_t *)p->tls.cert_pem;
    m.cert_pem.len = p->tls.cert_len;
    m.key_pem.data = (uint8_t *)p->tls.key_pem;
    m.key_pem.len = p->tls.key_len;
  }
  /* the CA bundle (hundreds of KiB for the system one) never fits a
   * frame: it travels as the fd of a sealed memfd */
  int rc = sup_worker_send(s, w, QPOOL__MSG_TYPE__MSG_POOL_ADD, &m.base,
                           p->tls.ca_fd);
  if (rc < 0) {
    char why[256];
    snprintf(why, sizeof(why), "cannot send its settings to worker %d: %s",
             w->slot, strerror(-rc));
    sup_pool_failed(s, p, why);
  }
}

static void send_config(struct sup *s, struct sup_worker *w) {
  for (size_t i = 0; i < s->npools; i++)
    if (s->pools[i]->worker == w->slot)
      sup_worker_send_pool(s, w, s->pools[i]);
  Qpool__ConfigDone d = QPOOL__CONFIG_DONE__INIT;
  d.uid = s->uid;
  d.gid = s->gid;
  d.chroot = geteuid() == 0 ? s->cfg->chroot : "";
  sup_worker_send(s, w, QPOOL__MSG_TYPE__MSG_CONFIG_DONE, &d.base, -1);
}

static int spawn(struct sup *s, struct sup_worker *w) {
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
    return -errno;
  pid_t pid = fork();
  if (pid < 0) {
    int e = -errno;
    close(sv[0]);
    close(sv[1]);
    return e;
  }
  if (pid == 0) {
    /* child: the socket on fd 3, every other fd closed, then exec */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (dup2(sv[1], 3) < 0)
      _exit(127);
    syscall(SYS_close_range, 4U, ~0U, 0U);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    char slot[16];
    snprintf(slot, sizeof(slot), "%d", w->slot);
    setenv("QPOOL_WORKER_SLOT", slot, 1);
    /* the worker logs at qpoold's level (QPOOL_LOG, when set, wins) */
    static const char *const lv[] = {"error", "warn", "info", "debug"};
    int l = s->cfg->log_level;
    setenv("QPOOL_LOG", lv[l < 0 ? 0 : l > 3 ? 3 : l], 0);
    char *argv[] = {(char *)"qpool-worker", NULL};
    execv(s->worker_path, argv);
    fprintf(stderr, "qpoold: cannot run %s: %s\n", s->worker_path,
            strerror(errno));
    _exit(127);
  }
  close(sv[1]);
  fcntl(sv[0], F_SETFL, O_NONBLOCK);
  w->pid = pid;
  w->fd = sv[0];
  w->hello = 0;
  w->seen = 0;     /* a new process: its Hello and Bye to come */
  w->nremoved = 0; /* and nothing of an older one in flight */
  w->started_ns = uv_hrtime();
  uv_poll_init_socket(s->loop, &w->poll, w->fd);
  w->poll.data = w;
  w->poll_open = 1;
  uv_poll_start(&w->poll, UV_READABLE, on_worker_msg);
  qp_info("worker %d started (pid %d)", w->slot, (int)pid);
  send_config(s, w);
  return 0;
}

static void on_restart(uv_timer_t *t) {
  struct sup_worker *w = t->data;
  struct sup *s = S_of((uv_handle_t *)t);
  if (s->stopping || w->pid > 0)
    return;
  w->restarts++;
  int rc = spawn(s, w);
  if (rc < 0) {
    qp_err("worker %d: cannot start: %s", w->slot, strerror(-rc));
    uv_timer_start(&w->restart, on_restart, w->backoff_ms, 0);
  }
}

static void worker_init(struct sup *s, struct sup_worker *w, int slot) {
  w->slot = slot;
  w->fd = -1;
  w->backoff_ms = BACKOFF_MIN_MS;
  uv_timer_init(s->loop, &w->restart);
  w->restart.data = w;
}

int sup_workers_start_one(struct sup *s, struct sup_worker *w) {
  return spawn(s, w);
}

int sup_worker_add(struct sup *s) {
  struct sup_worker *w = calloc(1, sizeof(*w));
  if (!w)
    return -ENOMEM;
  worker_init(s, w, s->nworkers);
  s->workers[s->nworkers++] = w;
  return 0;
}

int sup_workers_start(struct sup *s) {
  for (int i = 0; i < s->nworkers; i++) {
    worker_init(s, s->workers[i], i);
    int rc = spawn(s, s->workers[i]);
    if (rc < 0)
      return rc;
  }
  return 0;
}

static void on_poll_closed(uv_handle_t *h) {
  struct sup_worker *w = h->data;
  w->poll_open = 0;
}

static void worker_gone(struct sup *s, struct sup_worker *w) {
  out_clear(w);
  if (w->fd >= 0) {
    uv_poll_stop(&w->poll);
    uv_close((uv_handle_t *)&w->poll, on_poll_closed);
    close(w->fd);
    w->fd = -1;
  }
  w->pid = 0;
  sup_control_worker_gone(s, w);
  for (size_t i = 0; i < s->npools; i++)
    if (s->pools[i]->worker == w->slot) {
      s->pools[i]->report.connected = 0;
      s->pools[i]->report.idle_streams = 0;
      s->pools[i]->report.connections = 0;
    }
  sup_control_notify(s); /* watchers see the pool go down */
}

void sup_on_child_exit(struct sup *s, pid_t pid, int status) {
  for (int i = 0; i < s->nworkers; i++) {
    struct sup_worker *w = s->workers[i];
    if (w->pid != pid)
      continue;
    if (WIFSIGNALED(status))
      qp_log(s->stopping ? QP_LOG_INFO : QP_LOG_ERROR,
             "worker %d (pid %d) killed by signal %d (%s)", w->slot, (int)pid,
             WTERMSIG(status), strsignal(WTERMSIG(status)));
    else
      qp_log(s->stopping || WEXITSTATUS(status) == 0 ? QP_LOG_INFO
                                                     : QP_LOG_ERROR,
             "worker %d (pid %d) exited with status %d", w->slot, (int)pid,
             WEXITSTATUS(status));
    worker_gone(s, w);
    if (s->stopping || w->retired)
      return;
    if (uv_hrtime() - w->started_ns > STABLE_NS)
      w->backoff_ms = BACKOFF_MIN_MS;
    qp_info("worker %d: restarting in %u ms", w->slot, w->backoff_ms);
    uv_timer_start(&w->restart, on_restart, w->backoff_ms, 0);
    w->backoff_ms =
        w->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : w->backoff_ms * 2;
    return;
  }
}

/* The pool named in a worker's message must be one this worker runs. */
static struct sup_pool *own_pool(struct sup *s, struct sup_worker *w,
                                 const char *name) {
  for (size_t i = 0; i < s->npools; i++)
    if (s->pools[i]->worker == w->slot && !strcmp(s->pools[i]->cfg.name, name))
      return s->pools[i];
  return NULL;
}

static void store_report(struct sup *s, struct sup_pool *p,
                         const Qpool__Report *m) {
  if (m->has_failed && m->failed) { /* the worker could not create it */
    p->report = (Qpool__Report)QPOOL__REPORT__INIT;
    sup_pool_failed(s, p,
                    m->last_error && *m->last_error
                        ? m->last_error
                        : "the worker could not start it");
    return;
  }
  if (m->connected)
    p->dials_unconnected = 0; /* the next dial starts at the first address */
  p->report = *m;
  snprintf(p->last_error, sizeof(p->last_error), "%s",
           m->last_error ? m->last_error : "");
  p->report.name = NULL;
  p->report.last_error = NULL;
  p->report.congestion_control = NULL; /* freed with m: see cc_reported */
  p->has_report = 1;
  p->failed = 0;
}

/* 1 if a reload removed pool `name` from w (its messages may still come). */
static int removed_pool(const struct sup_worker *w, const char *name) {
  unsigned n = w->nremoved < 16 ? w->nremoved : 16;
  for (unsigned i = 0; i < n; i++)
    if (!strcmp(w->removed[i], name))
      return 1;
  return 0;
}

static int msg_hello(struct sup *s, struct sup_worker *w, struct qp_frame *f) {
  Qpool__Hello *m = qpool__hello__unpack(NULL, f->len, f->payload);
  if (!m || w->hello) {
    if (m)
      qpool__hello__free_unpacked(m, NULL);
    kill_worker(s, w, "sent a bad or second Hello");
    return -1;
  }
  if (strcmp(m->version, QP_VERSION) != 0) {
    /* a half-upgraded install: the messages' required fields differ
     * between versions, so the two must come from one build */
    char why[160];
    snprintf(why, sizeof(why),
             "is version %.40s, qpoold is " QP_VERSION
             ": install qpoold and qpool-worker from one build",
             m->version);
    qpool__hello__free_unpacked(m, NULL);
    kill_worker(s, w, why);
    return -1;
  }
  w->hello = 1;
  qp_debug("worker %d: hello (pid %u, %s)", w->slot, m->pid, m->version);
  qpool__hello__free_unpacked(m, NULL);
  sup_check_ready(s);
  return 0;
}

static int msg_dial_request(struct sup *s, struct sup_worker *w,
                            struct qp_frame *f) {
  Qpool__DialRequest *m = qpool__dial_request__unpack(NULL, f->len, f->payload);
  struct sup_pool *p = m ? own_pool(s, w, m->pool) : NULL;
  if (m && !p && removed_pool(w, m->pool)) { /* the pool is gone there too */
    qpool__dial_request__free_unpacked(m, NULL);
    return 0;
  }
  if (!p || p->cfg.server) {
    if (m)
      qpool__dial_request__free_unpacked(m, NULL);
    kill_worker(s, w, "asked to dial for a pool it does not run");
    return -1;
  }
  sup_dial_request(s, w, p, m->seq, p->dials_unconnected++);
  qpool__dial_request__free_unpacked(m, NULL);
  return 0;
}

static int msg_report(struct sup *s, struct sup_worker *w, struct qp_frame *f) {
  Qpool__Report *m = qpool__report__unpack(NULL, f->len, f->payload);
  struct sup_pool *p = m ? own_pool(s, w, m->name) : NULL;
  if (m && !p && removed_pool(w, m->name)) { /* sent before our PoolRemove */
    qpool__report__free_unpacked(m, NULL);
    return 0;
  }
  int algo = -1;
  const char *bad = NULL;
  if (!p)
    bad = "reported a pool it does not run";
  else if (m->congestion_control &&
           qp_cc_parse(m->congestion_control, &algo) < 0)
    bad = "reported an unknown congestion controller";
  else if (m->has_max_stream_window &&
           !qp_stream_window_ok(m->max_stream_window))
    bad = "reported a max_stream_window out of range";
  if (bad) {
    if (m)
      qpool__report__free_unpacked(m, NULL);
    kill_worker(s, w, bad);
    return -1;
  }
  int changed = !p->has_report || qp_stats_report_changed(m, &p->report);
  if (m->congestion_control)
    p->cc_reported = qp_cc_name(algo); /* static: outlives m */
  store_report(s, p, m);
  qpool__report__free_unpacked(m, NULL);
  if (changed)
    sup_control_notify(s);
  sup_check_ready(s);
  return 0;
}

static int msg_probe_result(struct sup *s, struct sup_worker *w,
                            struct qp_frame *f) {
  Qpool__ProbeResult *m = qpool__probe_result__unpack(NULL, f->len, f->payload);
  if (!m) {
    kill_worker(s, w, "sent a malformed probe result");
    return -1;
  }
  qp_info("worker %d: probe %s -> %d (%s)", w->slot, m->what, m->err,
          m->err ? strerror(-m->err) : "ALLOWED");
  qpool__probe_result__free_unpacked(m, NULL);
  return 0;
}

static int msg_get_result(struct sup *s, struct sup_worker *w,
                          struct qp_frame *f) {
  Qpool__GetResult *m = qpool__get_result__unpack(NULL, f->len, f->payload);
  const char *bad = !m ? "a malformed"
                    : m->status == 0 && f->fd < 0 && !f->fd_lost
                        ? "a stream without its fd in a"
                    : m->status != 0 && f->fd >= 0 ? "an fd with a failed"
                                                   : NULL;
  if (!bad && f->fd_lost) { /* we are out of fds, not the worker's fault */
    m->status = -EMFILE;
    m->has_stream_id = 0;
  }
  /* sup_control_get_result owns f->fd from the call on, whatever it
   * returns; every other path closes it here */
  if (bad || sup_control_get_result(s, w, m, f->fd) < 0) {
    if (bad && f->fd >= 0)
      close(f->fd);
    if (m)
      qpool__get_result__free_unpacked(m, NULL);
    char why[96];
    snprintf(why, sizeof(why), "sent %s GetResult",
             bad ? bad : "an unasked-for");
    kill_worker(s, w, why);
    return -1;
  }
  qpool__get_result__free_unpacked(m, NULL);
  return 0;
}

static int msg_conn_info_result(struct sup *s, struct sup_worker *w,
                                struct qp_frame *f) {
  Qpool__ConnInfoResult *m =
      qpool__conn_info_result__unpack(NULL, f->len, f->payload);
  const char *bad = "malformed";
  if (!m || sup_control_conn_info_result(s, w, m, &bad) < 0) {
    if (m)
      qpool__conn_info_result__free_unpacked(m, NULL);
    char why[128];
    snprintf(why, sizeof(why), "sent a bad ConnInfoResult (%s)", bad);
    kill_worker(s, w, why);
    return -1;
  }
  qpool__conn_info_result__free_unpacked(m, NULL);
  return 0;
}

static int msg_bye(struct sup *s, struct sup_worker *w, struct qp_frame *f) {
  (void)s, (void)w, (void)f;
  return 0; /* its exit follows */
}

/* What a worker may send, in which of its states as we see them (shared/
 * msg_rules.h): Hello first and once; nothing else before it. A GetResult
 * carries the application's stream; nothing else carries an fd. Probe
 * results only when the tests enabled probes. Anything else ends the
 * worker. */
enum { WS_NEW = 1, WS_UP = 2, WS_STOPPING = 4 };
#define LIVE (WS_UP | WS_STOPPING)
static const struct {
  struct qp_msg_rule r;
  int (*handle)(struct sup *s, struct sup_worker *w, struct qp_frame *f);
} from_worker[] = {
#define M(t) QPOOL__MSG_TYPE__MSG_##t
    {{M(HELLO), "Hello", QP_FD_NONE, WS_NEW, QP_MSG_ONCE}, msg_hello},
    {{M(DIAL_REQUEST), "DialRequest", QP_FD_NONE, LIVE, 0}, msg_dial_request},
    {{M(REPORT), "Report", QP_FD_NONE, LIVE, 0}, msg_report},
    {{M(PROBE_RESULT), "ProbeResult", QP_FD_NONE, LIVE, QP_MSG_PROBES},
     msg_probe_result},
    {{M(BYE), "Bye", QP_FD_NONE, LIVE, QP_MSG_ONCE}, msg_bye},
    {{M(GET_RESULT), "GetResult", QP_FD_MAY, LIVE, 0}, msg_get_result},
    {{M(CONN_INFO_RESULT), "ConnInfoResult", QP_FD_NONE, LIVE, 0},
     msg_conn_info_result},
#undef M
};
#undef LIVE

/* Worker input is hostile: anything malformed or unexpected ends it. */
static void on_worker_msg(uv_poll_t *h, int status, int events) {
  struct sup_worker *w = h->data;
  struct sup *s = S_of((uv_handle_t *)h);
  if (status < 0) { /* POLLERR: libuv says UV_EBADF; SO_ERROR says why */
    int e = 0;
    socklen_t el = sizeof(e);
    if (getsockopt(w->fd, SOL_SOCKET, SO_ERROR, &e, &el) == 0 &&
        (e == ECONNRESET || e == EPIPE)) {
      /* the worker exited with messages of ours unread: SIGCHLD follows */
      qp_debug("worker %d: socket closed (%s)", w->slot, strerror(e));
      uv_poll_stop(&w->poll);
      return;
    }
    kill_worker(s, w, e ? strerror(e) : uv_strerror(status));
    return;
  }
  if (events & UV_WRITABLE)
    out_flush(s, w);
  for (int i = 0; i < 64 && w->fd >= 0; i++) {
    struct qp_frame f;
    int rc = qp_frame_recv(w->fd, s->buf, sizeof(s->buf), &f);
    if (rc == -EAGAIN)
      return;
    if (rc == 0) { /* exit follows; SIGCHLD does the bookkeeping */
      uv_poll_stop(&w->poll);
      return;
    }
    if (rc < 0) {
      kill_worker(s, w, "sent a malformed frame");
      return;
    }
    size_t k = 0, n = sizeof(from_worker) / sizeof(from_worker[0]);
    while (k < n && from_worker[k].r.type != (int)f.type)
      k++;
    const struct qp_msg_rule *r = k < n ? &from_worker[k].r : NULL;
    unsigned state = !w->hello ? WS_NEW : s->stopping ? WS_STOPPING : WS_UP;
    const char *why;
    if (qp_msg_rule_check(r, k, f.fd >= 0, state, s->probes ? QP_MSG_PROBES : 0,
                          &w->seen, &why) < 0) {
      char msg[160];
      if (f.fd >= 0)
        close(f.fd);
      snprintf(msg, sizeof(msg), "sent %s (type %u) %s%s",
               r ? r->name : "a message", f.type, why,
               state == WS_NEW ? " (before its Hello)" : "");
      kill_worker(s, w, msg);
      return;
    }
    if (from_worker[k].handle(s, w, &f) < 0)
      return; /* it was killed */
  }
}

void sup_workers_stop(struct sup *s) {
  Qpool__Shutdown m = QPOOL__SHUTDOWN__INIT;
  m.reason = "qpoold is stopping";
  for (int i = 0; i < s->nworkers; i++) {
    uv_timer_stop(&s->workers[i]->restart);
    sup_worker_send(s, s->workers[i], QPOOL__MSG_TYPE__MSG_SHUTDOWN, &m.base,
                    -1);
  }
}

int sup_workers_running(const struct sup *s) {
  int n = 0;
  for (int i = 0; i < s->nworkers; i++)
    n += s->workers[i]->pid > 0;
  return n;
}
