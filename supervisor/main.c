/* qpoold: the supervisor. Owns the UDP listeners and the client-IP filter,
 * spawns sandboxed qpool-worker processes, hands them connections, restarts
 * them when they die, and keeps the latest report of every pool. One libuv
 * loop; signal handlers only wake the loop. */
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <gnutls/crypto.h>
#include <systemd/sd-daemon.h>

#include "shared/log.h"
#include "supervisor/sup.h"

#define STOP_GRACE_NS (8 * UINT64_C(1000000000))

static struct sup S;
static uv_signal_t sig_term, sig_int, sig_chld, sig_usr1, sig_usr2, sig_hup;
static uv_timer_t status_timer, stop_timer;
static uv_poll_t lifeline;
static const char *status_path;
static int exit_status;

static void pool_free(struct sup_pool *p);

/* A pool object for cfg with its TLS material read and checked (workers
 * cannot open files). Returns NULL with err set. */
static struct sup_pool *pool_new(const struct sup_pool_cfg *pc, char *err,
                                 size_t errlen) {
  struct sup_pool *p = calloc(1, sizeof(*p));
  if (!p) {
    snprintf(err, errlen, "out of memory");
    return NULL;
  }
  p->cfg = *pc;
  p->lfd = -1;
  if (gnutls_rnd(GNUTLS_RND_RANDOM, p->reset_secret, sizeof(p->reset_secret)) <
      0) {
    snprintf(err, errlen, "no random bytes for the reset secret");
    free(p);
    return NULL;
  }
  if (sup_tls_load(pc, &p->tls, err, errlen) < 0) {
    free(p);
    return NULL;
  }
  return p;
}

static void pool_free(struct sup_pool *p) {
  sup_tls_free(&p->tls);
  free(p);
}

/* --check: every pool's TLS files, read and checked as at start. */
static int check_tls(const struct sup_config *c, char *err, size_t errlen) {
  for (size_t i = 0; i < c->npools; i++) {
    struct sup_tls t;
    int rc = sup_tls_load(&c->pools[i], &t, err, errlen);
    if (rc < 0)
      return rc;
    sup_tls_free(&t);
  }
  return 0;
}

/* Pools -> workers: `workers = 0` gives each pool its own worker (tenant
 * isolation); otherwise round robin unless a pool names its worker. */
static int assign(struct sup *s, char *err, size_t errlen) {
  struct sup_config *c = s->cfg;
  s->nworkers = c->workers > 0 ? c->workers : (int)c->npools;
  s->pools = calloc(SUP_POOLS_MAX, sizeof(*s->pools));
  s->workers = calloc(SUP_POOLS_MAX, sizeof(*s->workers));
  if (!s->pools || !s->workers) {
    snprintf(err, errlen, "out of memory");
    return -ENOMEM;
  }
  for (int i = 0; i < s->nworkers; i++)
    if (!(s->workers[i] = calloc(1, sizeof(**s->workers)))) {
      snprintf(err, errlen, "out of memory");
      return -ENOMEM;
    }
  for (size_t i = 0; i < c->npools; i++) {
    struct sup_pool *p = pool_new(&c->pools[i], err, errlen);
    if (!p)
      return -EINVAL;
    p->worker = p->cfg.worker >= 0 ? p->cfg.worker % s->nworkers
                                   : (int)(i % (size_t)s->nworkers);
    s->pools[s->npools++] = p;
  }
  return 0;
}

static void on_pool_listener_closed(uv_handle_t *h) {
  pool_free(h->data);
}

static void remove_pool(struct sup *s, size_t i) {
  struct sup_pool *p = s->pools[i];
  struct sup_worker *w = s->workers[p->worker];
  Qpool__PoolRemove m = QPOOL__POOL_REMOVE__INIT;
  m.name = p->cfg.name;
  sup_worker_send(s, w, QPOOL__MSG_TYPE__MSG_POOL_REMOVE, &m.base, -1);
  snprintf(w->removed[w->nremoved++ % 16], SUP_NAME_MAX, "%s", p->cfg.name);
  qp_info("reload: pool %s removed", p->cfg.name);
  s->pools[i] = s->pools[--s->npools];
  if (p->lfd >= 0) {
    uv_poll_stop(&p->lpoll);
    sup_listener_park(p); /* an added pool may take it over */
    p->lfd = -1;
    p->lpoll.data = p;
    uv_close((uv_handle_t *)&p->lpoll, on_pool_listener_closed);
  } else {
    pool_free(p);
  }
  int left = 0; /* a worker of its own with nothing left stops */
  for (size_t k = 0; k < s->npools; k++)
    left += s->pools[k]->worker == w->slot;
  if (!left && s->cfg->workers == 0) {
    Qpool__Shutdown sd = QPOOL__SHUTDOWN__INIT;
    sd.reason = "no pools left after reload";
    w->retired = 1;
    sup_worker_send(s, w, QPOOL__MSG_TYPE__MSG_SHUTDOWN, &sd.base, -1);
  }
}

/* Adds p (made by pool_new; owned from now on). */
static void add_pool(struct sup *s, struct sup_pool *p) {
  char err[1024];
  const struct sup_pool_cfg *pc = &p->cfg;
  if (s->npools == SUP_POOLS_MAX) {
    qp_err("reload: pool %s not added: too many pools", pc->name);
    pool_free(p);
    return;
  }
  int new_worker = s->cfg->workers == 0;
  p->worker = new_worker        ? s->nworkers
              : pc->worker >= 0 ? pc->worker % s->nworkers
                                : (int)(s->npools % (size_t)s->nworkers);
  /* the listener first: a taken address fails this pool alone and leaves
   * no worker slot behind */
  if (p->cfg.server && sup_listener_open(p, err, sizeof(err)) < 0) {
    qp_err("reload: pool %s not added: %s", pc->name, err);
    pool_free(p);
    return;
  }
  if (new_worker && (s->nworkers == SUP_POOLS_MAX || sup_worker_add(s) < 0)) {
    qp_err("reload: pool %s not added: cannot start a worker", pc->name);
    if (p->lfd >= 0)
      close(p->lfd);
    pool_free(p);
    return;
  }
  if (p->lfd >= 0)
    sup_listener_start(s, p);
  s->pools[s->npools++] = p;
  struct sup_worker *w = s->workers[p->worker];
  if (new_worker)
    sup_workers_start_one(s, w); /* sends its whole configuration */
  else
    sup_worker_send_pool(s, w, p);
  qp_info("reload: pool %s added (worker %d)", pc->name, p->worker);
}

/* SIGHUP: read the configuration again; add, remove or replace the pools
 * that changed and leave every other pool (and its connections) alone. */
static void reload(struct sup *s) {
  char err[1024];
  struct sup_config *nc = calloc(1, sizeof(*nc));
  if (!nc ||
      sup_config_from_args(nc, s->argc, s->argv, err, sizeof(err)) != 0) {
    qp_err("reload failed, keeping the running configuration: %s",
           nc ? err : "out of memory");
    free(nc);
    return;
  }
  /* the pools to add are made first, their TLS files read and checked: a
   * bad file, like a bad key, leaves the running configuration untouched */
  struct sup_pool **fresh = calloc(nc->npools ? nc->npools : 1, sizeof(*fresh));
  for (size_t k = 0; fresh && k < nc->npools; k++) {
    int have = 0;
    for (size_t i = 0; i < s->npools; i++)
      have |= !strcmp(s->pools[i]->cfg.name, nc->pools[k].name) &&
              sup_pool_cfg_equal(&nc->pools[k], &s->pools[i]->cfg);
    if (!have && !(fresh[k] = pool_new(&nc->pools[k], err, sizeof(err)))) {
      qp_err("reload failed, keeping the running configuration: %s", err);
      for (size_t j = 0; j < k; j++)
        if (fresh[j])
          pool_free(fresh[j]);
      free(fresh);
      free(nc);
      return;
    }
  }
  if (!fresh) {
    qp_err("reload failed, keeping the running configuration: out of memory");
    free(nc);
    return;
  }
  if (nc->workers != s->cfg->workers)
    qp_warn("reload: \"workers\" changes need a restart; keeping %d",
            s->cfg->workers);
  nc->workers = s->cfg->workers;
  for (size_t i = s->npools; i-- > 0;) {
    struct sup_pool *p = s->pools[i];
    const struct sup_pool_cfg *n = sup_config_find(nc, p->cfg.name);
    if (!n || !sup_pool_cfg_equal(n, &p->cfg))
      remove_pool(s, i);
  }
  for (size_t k = 0; k < nc->npools; k++)
    if (fresh[k])
      add_pool(s, fresh[k]);
  free(fresh);
  sup_listeners_unpark();
  int metrics_changed = strcmp(s->cfg->metrics_text, nc->metrics_text) != 0;
  if (metrics_changed)
    sup_metrics_close(s);
  free(s->cfg);
  s->cfg = nc;
  if (metrics_changed && sup_metrics_open(s, err, sizeof(err)) < 0)
    qp_err("reload: %s (metrics endpoint off)", err);
  qp_info("reload done: %zu pool(s)", s->npools);
}

static int prepare_identity(struct sup *s, char *err, size_t errlen) {
  s->uid = getuid();
  s->gid = getgid();
  if (geteuid() != 0)
    return 0; /* not root: workers keep our ids; no chroot */
  struct passwd *pw = getpwnam(s->cfg->user);
  if (!pw) {
    snprintf(err, errlen, "unknown worker user \"%s\"", s->cfg->user);
    return -EINVAL;
  }
  if (pw->pw_uid == 0) {
    snprintf(err, errlen, "worker user \"%s\" is root: choose another",
             s->cfg->user);
    return -EINVAL;
  }
  s->uid = pw->pw_uid;
  s->gid = pw->pw_gid;
  char path[4096];
  snprintf(path, sizeof(path), "%s", s->cfg->chroot);
  for (char *q = path + 1; *q; q++) /* create missing parents */
    if (*q == '/') {
      *q = 0;
      (void)mkdir(path, 0755);
      *q = '/';
    }
  if (mkdir(s->cfg->chroot, 0755) < 0 && errno != EEXIST) {
    snprintf(err, errlen, "cannot create the chroot %.512s: %s", s->cfg->chroot,
             strerror(errno));
    return -errno;
  }
  return 0;
}

static int find_worker(struct sup *s, const char *argv0, char *err,
                       size_t errlen) {
  const char *env = getenv("QPOOL_WORKER");
  if (env && *env) {
    snprintf(s->worker_path, sizeof(s->worker_path), "%s", env);
  } else {
    char self[4000];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n < 0) {
      snprintf(err, errlen, "cannot find my own path: %s", strerror(errno));
      return -errno;
    }
    self[n] = 0;
    char *slash = strrchr(self, '/');
    if (slash)
      *slash = 0;
    snprintf(s->worker_path, sizeof(s->worker_path), "%s/qpool-worker", self);
  }
  (void)argv0;
  if (access(s->worker_path, X_OK) < 0) {
    snprintf(err, errlen, "cannot run the worker %.512s: %s (set QPOOL_WORKER)",
             s->worker_path, strerror(errno));
    return -errno;
  }
  return 0;
}

static void on_status(uv_timer_t *t) {
  (void)t;
  sup_status_write(&S, status_path);
}

static void close_all(uv_handle_t *h, void *arg) {
  (void)arg;
  if (!uv_is_closing(h))
    uv_close(h, NULL);
}

static void maybe_exit(void) {
  if (!S.stopping || sup_workers_running(&S) > 0)
    return;
  if (status_path)
    sup_status_write(&S, status_path);
  qp_info("stopped");
  uv_stop(S.loop);
}

static void on_stop_timer(uv_timer_t *t) {
  (void)t;
  if (uv_hrtime() < S.stop_deadline) {
    maybe_exit();
    return;
  }
  for (int i = 0; i < S.nworkers; i++)
    if (S.workers[i]->pid > 0) {
      qp_warn("worker %d did not stop in time: killing it", i);
      kill(S.workers[i]->pid, SIGKILL);
    }
}

static void stop(const char *why);

void sup_check_ready(struct sup *s) {
  if (s->ready_sent || s->stopping)
    return;
  for (int i = 0; i < s->nworkers; i++)
    if (s->workers[i]->pid > 0 && !s->workers[i]->hello)
      return;
  for (size_t i = 0; i < s->npools; i++)
    if (!s->pools[i]->has_report)
      return;
  for (size_t i = 0; i < s->npools; i++)
    if (s->pools[i]->failed) { /* at start, a pool that cannot run fails it */
      sd_notifyf(0, "ERRNO=%d\nSTATUS=pool %s cannot start: %s", EINVAL,
                 s->pools[i]->cfg.name, s->pools[i]->last_error);
      exit_status = 1;
      stop("a pool cannot start");
      return;
    }
  s->ready_sent = 1;
  sd_notifyf(0, "READY=1\nSTATUS=%zu pool(s) in %d worker(s)\nMAINPID=%ld",
             s->npools, s->nworkers, (long)getpid());
}

static void on_signal(uv_signal_t *h, int sig) {
  (void)h;
  if (sig == SIGCHLD) {
    int status;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
      sup_on_child_exit(&S, pid, status);
    maybe_exit();
    return;
  }
  if (sig == SIGHUP) {
    if (!S.stopping) {
      sd_notify(0, "RELOADING=1");
      reload(&S);
      sd_notifyf(0, "READY=1\nSTATUS=%zu pool(s) in %d worker(s)", S.npools,
                 S.nworkers);
    }
    return;
  }
  if (sig == SIGUSR1) {
    sup_status_write(&S, NULL);
    return;
  }
  if (sig == SIGUSR2) { /* sandbox proofs: enabled by QPOOL_ALLOW_PROBES=1 */
    static const char *what[] = {"open", "socket", "bind",  "connect",
                                 "fork", "execve", "ptrace"};
    for (int i = 0; i < S.nworkers; i++)
      for (size_t k = 0; k < sizeof(what) / sizeof(what[0]); k++) {
        Qpool__Probe m = QPOOL__PROBE__INIT;
        m.what = (char *)what[k];
        sup_worker_send(&S, S.workers[i], QPOOL__MSG_TYPE__MSG_PROBE, &m.base,
                        -1);
      }
    return;
  }
  stop(sig == SIGTERM ? "SIGTERM" : "SIGINT");
}

/* --lifeline: the process that started us (libqpool's embedded mode) holds
 * the pipe's other end; end of file means it closed the pool or died. */
static void on_lifeline(uv_poll_t *h, int status, int events) {
  (void)events;
  char b[64];
  ssize_t n = status < 0 ? 0 : read(S.cfg->lifeline, b, sizeof(b));
  if (n > 0 || (n < 0 && (errno == EAGAIN || errno == EINTR)))
    return; /* bytes mean nothing; only the end matters */
  uv_poll_stop(h);
  stop("lifeline closed");
}

static void stop(const char *why) {
  if (S.stopping)
    return;
  qp_info("%s: stopping (pools close with \"pool closed\")", why);
  sd_notify(0, "STOPPING=1");
  S.stopping = 1;
  S.stop_deadline = uv_hrtime() + STOP_GRACE_NS;
  sup_listeners_close(&S);
  sup_control_close(&S);
  sup_metrics_close(&S);
  sup_dial_cancel_all(&S);
  sup_workers_stop(&S);
  uv_timer_start(&stop_timer, on_stop_timer, 50, 50);
  maybe_exit();
}

int main(int argc, char **argv) {
  char err[1024];
  qp_log_set_ident("qpoold");
  struct sup_config *cfg = calloc(1, sizeof(*cfg));
  if (!cfg) {
    fprintf(stderr, "qpoold: out of memory\n");
    return 1;
  }
  int rc = sup_config_from_args(cfg, argc, argv, err, sizeof(err));
  if (rc != 0) {
    free(cfg);
    if (rc == 1)
      return 0; /* --help / --version */
    fprintf(stderr, "qpoold: %s\n(see qpoold --help)\n", err);
    sd_notifyf(0, "ERRNO=%d\nSTATUS=%s", EINVAL, err);
    return 2;
  }
  if (cfg->check) { /* like nginx -t: nothing is started */
    if (check_tls(cfg, err, sizeof(err)) < 0) {
      fprintf(stderr, "qpoold: %s\n", err);
      free(cfg);
      return 2;
    }
    printf("qpoold: configuration ok: %zu pool(s)", cfg->npools);
    for (size_t i = 0; i < cfg->npools; i++)
      printf("%s %s (%s)", i ? "," : ":", cfg->pools[i].name,
             cfg->pools[i].server ? "server" : "client");
    printf("\n");
    free(cfg);
    return 0;
  }
  qp_log_set_level((enum qp_log_level)cfg->log_level);
  S.cfg = cfg;
  S.ctl_fd = -1;
  S.http_fd = -1;
  S.argc = argc;
  S.argv = argv;
  S.loop = uv_default_loop();
  S.loop->data = &S;
  signal(SIGPIPE, SIG_IGN);
  if ((rc = assign(&S, err, sizeof(err))) < 0) { /* TLS files: a setting */
    qp_err("%s", err);
    sd_notifyf(0, "ERRNO=%d\nSTATUS=%s", -rc, err);
    return 2;
  }
  if ((rc = find_worker(&S, argv[0], err, sizeof(err))) < 0 ||
      (rc = prepare_identity(&S, err, sizeof(err))) < 0 ||
      (rc = sup_listeners_open(&S, err, sizeof(err))) < 0 ||
      (rc = sup_control_open(&S, err, sizeof(err))) < 0 ||
      (rc = sup_metrics_open(&S, err, sizeof(err))) < 0) {
    qp_err("%s", err);
    /* whoever waits for READY (systemd, libqpool) learns why not */
    sd_notifyf(0, "ERRNO=%d\nSTATUS=%s", -rc, err);
    return 1;
  }
  uv_signal_init(S.loop, &sig_term);
  uv_signal_start(&sig_term, on_signal, SIGTERM);
  uv_signal_init(S.loop, &sig_int);
  uv_signal_start(&sig_int, on_signal, SIGINT);
  uv_signal_init(S.loop, &sig_chld);
  uv_signal_start(&sig_chld, on_signal, SIGCHLD);
  uv_signal_init(S.loop, &sig_usr1);
  uv_signal_start(&sig_usr1, on_signal, SIGUSR1);
  uv_signal_init(S.loop, &sig_hup);
  uv_signal_start(&sig_hup, on_signal, SIGHUP);
  uv_signal_init(S.loop, &sig_usr2);
  S.probes = getenv("QPOOL_ALLOW_PROBES") &&
             !strcmp(getenv("QPOOL_ALLOW_PROBES"), "1");
  if (S.probes) /* the workers inherit the variable: they take probes too */
    uv_signal_start(&sig_usr2, on_signal, SIGUSR2);
  uv_timer_init(S.loop, &stop_timer);
  uv_timer_init(S.loop, &status_timer);
  status_path = getenv("QPOOL_STATUS_FILE");
  if (status_path && *status_path)
    uv_timer_start(&status_timer, on_status, 200, 200);
  else
    status_path = NULL;
  if ((rc = sup_workers_start(&S)) < 0) {
    qp_err("cannot start workers: %s", strerror(-rc));
    sd_notifyf(0, "ERRNO=%d\nSTATUS=cannot start workers", -rc);
    return 1;
  }
  if (S.cfg->lifeline >= 0) {
    fcntl(S.cfg->lifeline, F_SETFD, FD_CLOEXEC);
    fcntl(S.cfg->lifeline, F_SETFL, O_NONBLOCK);
    uv_poll_init(S.loop, &lifeline, S.cfg->lifeline);
    uv_poll_start(&lifeline, UV_READABLE | UV_DISCONNECT, on_lifeline);
  }
  qp_info("running %zu pool(s) in %d worker(s)", S.npools, S.nworkers);
  sup_check_ready(&S); /* READY=1 when the workers are up (no pools: now) */
  uv_run(S.loop, UV_RUN_DEFAULT);
  uv_walk(S.loop, close_all, NULL);
  uv_run(S.loop, UV_RUN_DEFAULT);
  for (size_t i = 0; i < S.npools; i++)
    pool_free(S.pools[i]);
  for (int i = 0; i < S.nworkers; i++)
    free(S.workers[i]);
  free(S.pools);
  free(S.workers);
  free(S.cfg);
  return exit_status;
}
