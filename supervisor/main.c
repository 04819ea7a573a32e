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

#include "shared/log.h"
#include "supervisor/sup.h"

#define STOP_GRACE_NS (8 * UINT64_C(1000000000))

static struct sup S;
static uv_signal_t sig_term, sig_int, sig_chld, sig_usr1, sig_usr2;
static uv_timer_t status_timer, stop_timer;
static const char *status_path;

static int read_file(const char *path, char **out, size_t *len, char *err,
                     size_t errlen) {
  if (!path || !*path)
    return 0;
  FILE *f = fopen(path, "rb");
  if (!f) {
    snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
    return -errno;
  }
  char *buf = malloc(1 << 20);
  size_t n = buf ? fread(buf, 1, (1 << 20) - 1, f) : 0;
  fclose(f);
  if (!buf) {
    snprintf(err, errlen, "out of memory");
    return -ENOMEM;
  }
  buf[n] = 0;
  *out = buf;
  *len = n;
  return 0;
}

/* Pools -> workers: `workers = 0` gives each pool its own worker (tenant
 * isolation); otherwise round robin unless a pool names its worker. */
static int assign(struct sup *s, char *err, size_t errlen) {
  struct sup_config *c = s->cfg;
  s->npools = c->npools;
  s->nworkers = c->workers > 0 ? c->workers : (int)c->npools;
  s->pools = calloc(s->npools, sizeof(*s->pools));
  s->workers = calloc((size_t)s->nworkers, sizeof(*s->workers));
  if (!s->pools || !s->workers) {
    snprintf(err, errlen, "out of memory");
    return -ENOMEM;
  }
  for (size_t i = 0; i < s->npools; i++) {
    struct sup_pool *p = &s->pools[i];
    const struct sup_pool_cfg *pc = &c->pools[i];
    p->cfg = pc;
    p->worker = pc->worker >= 0 ? pc->worker % s->nworkers
                                : (int)(i % (size_t)s->nworkers);
    int rc;
    if ((rc = read_file(pc->cert_file, &p->cert_pem, &p->cert_len, err,
                        errlen)) < 0 ||
        (rc = read_file(pc->key_file, &p->key_pem, &p->key_len, err, errlen)) <
            0 ||
        (rc = read_file(pc->ca_file, &p->ca_pem, &p->ca_len, err, errlen)) < 0)
      return rc;
  }
  return 0;
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
    snprintf(err, errlen, "cannot create the chroot %s: %s", s->cfg->chroot,
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
    snprintf(err, errlen, "cannot run the worker %s: %s (set QPOOL_WORKER)",
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
    if (S.workers[i].pid > 0) {
      qp_warn("worker %d did not stop in time: killing it", i);
      kill(S.workers[i].pid, SIGKILL);
    }
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
        sup_worker_send(&S, &S.workers[i], QPOOL__MSG_TYPE__MSG_PROBE, &m.base,
                        -1);
      }
    return;
  }
  if (S.stopping)
    return;
  qp_info("%s: stopping (pools close with \"pool closed\")",
          sig == SIGTERM ? "SIGTERM" : "SIGINT");
  S.stopping = 1;
  S.stop_deadline = uv_hrtime() + STOP_GRACE_NS;
  sup_listeners_close(&S);
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
    return 2;
  }
  qp_log_set_level((enum qp_log_level)cfg->log_level);
  S.cfg = cfg;
  S.loop = uv_default_loop();
  S.loop->data = &S;
  signal(SIGPIPE, SIG_IGN);
  if (find_worker(&S, argv[0], err, sizeof(err)) < 0 ||
      prepare_identity(&S, err, sizeof(err)) < 0 ||
      assign(&S, err, sizeof(err)) < 0 ||
      sup_listeners_open(&S, err, sizeof(err)) < 0) {
    qp_err("%s", err);
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
  uv_signal_init(S.loop, &sig_usr2);
  if (getenv("QPOOL_ALLOW_PROBES") &&
      !strcmp(getenv("QPOOL_ALLOW_PROBES"), "1"))
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
    return 1;
  }
  qp_info("running %zu pool(s) in %d worker(s)", S.npools, S.nworkers);
  uv_run(S.loop, UV_RUN_DEFAULT);
  uv_walk(S.loop, close_all, NULL);
  uv_run(S.loop, UV_RUN_DEFAULT);
  for (size_t i = 0; i < S.npools; i++) {
    free(S.pools[i].cert_pem);
    free(S.pools[i].key_pem);
    free(S.pools[i].ca_pem);
  }
  free(S.pools);
  free(S.workers);
  free(cfg);
  return 0;
}
