/* libqpool, embedded mode: a pool of the application's own. The pool's
 * manager starts a private qpoold (and so its sandboxed worker) for it:
 *   - in a new 0700 directory (under $XDG_RUNTIME_DIR, else /tmp) holding
 *     the control socket and the readiness socket;
 *   - with --lifeline 3, the read end of a pipe whose write end only the
 *     application holds: when the application closes the pool or dies,
 *     qpoold reads end of file and stops (no orphan daemons);
 *   - with NOTIFY_SOCKET pointing at the readiness socket: qpoold sends
 *     READY=1 once its control socket and workers are up, or ERRNO=N when it
 *     cannot start (sd_notify protocol, as under systemd).
 * Then the handle attaches to it like qp_pool_attach. */

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>

#include "lib/internal.h"
#include "shared/addr.h"
#include "shared/duration.h"
#include "shared/pool_params.h"
#include "shared/size.h"
#include "shared/pool_rules.h"

extern char **environ;

#define EMB_POOL "embedded"
#define START_MS 15000u /* qpoold's start-up: workers, TLS keys */
#define STOP_MS 15000u  /* its graceful stop (it gives workers 8 s) */

#ifndef QP_SBINDIR
#define QP_SBINDIR "/usr/local/sbin"
#endif
#ifndef QP_LIB_TO_SBIN
#define QP_LIB_TO_SBIN "../sbin"
#endif

/* ---- settings ----------------------------------------------------------- */

static int add_arg(struct qp_embedded *e, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int add_arg(struct qp_embedded *e, const char *fmt, ...) {
  char **n = realloc(e->argv, (size_t)(e->argc + 2) * sizeof(*n));
  if (!n)
    return -ENOMEM;
  e->argv = n;
  va_list ap;
  va_start(ap, fmt);
  int rc = vasprintf(&n[e->argc], fmt, ap);
  va_end(ap);
  if (rc < 0)
    return -ENOMEM;
  n[++e->argc] = NULL;
  return 0;
}

void qp__embedded_free(struct qp_embedded *e) {
  if (!e)
    return;
  for (int i = 0; i < e->argc; i++)
    free(e->argv[i]);
  free(e->argv);
  free(e);
}

/* A flag's value must not be empty, look like a flag, or hold a newline. */
static int text_ok(const char *s) {
  return s && *s && *s != '-' && !strpbrk(s, "\n\r");
}

static int dur_ok(int64_t d) {
  return d >= 0 && (uint64_t)d <= QP_DURATION_MAX_NS;
}

/* "host:port" or "[v6]:port" with a port 1-65535; numeric_only: no host
 * name (a listener binds an address). */
static int addr_ok(const char *s, int numeric_only) {
  char host[256];
  unsigned port;
  struct sockaddr_storage ss;
  socklen_t len;
  if (!text_ok(s) || qp_addr_split(s, host, sizeof(host), &port, 0) < 0)
    return 0;
  int numeric = qp_addr_parse_numeric(s, &ss, &len) == 0;
  return numeric || (!numeric_only && *host && *s != '[');
}

static void dur_text(int64_t ns, char *buf, size_t len) {
  if (ns < 0) {
    buf[0] = '-';
    qp_duration_format((uint64_t)0 - (uint64_t)ns, buf + 1, len - 1);
  } else {
    qp_duration_format((uint64_t)ns, buf, len);
  }
}

/* Code ported from the Go package passes what its constructors fix up
 * (docs/protocol.md, "The client pool's manager"): capacities below 1 become 1,
 * intervals of 0 or less 1s, a min above its max is swapped. The same rule as
 * the engine's (shared/pool_rules.c), and a warning on stderr naming what was
 * used. */
static void normalize(const char *fn, int server, int *min_cap, int *max_cap,
                      int64_t *min_ivl, int64_t *max_ivl) {
  struct qp_rules r;
  qp_rules_normalize(&r, *min_cap, *max_cap, *min_ivl, *max_ivl);
  if (server && (r.max_cap != *max_cap))
    fprintf(stderr,
            "qpool: %s: max_cap %d: using %d (as the Go package: a capacity "
            "below 1 is 1)\n",
            fn, *max_cap, r.max_cap);
  else if (!server && (r.min_cap != *min_cap || r.max_cap != *max_cap))
    fprintf(stderr,
            "qpool: %s: min_cap %d, max_cap %d: using min_cap %d, max_cap %d "
            "(as the Go package: a capacity below 1 is 1, min above max is "
            "swapped)\n",
            fn, *min_cap, *max_cap, r.min_cap, r.max_cap);
  if (!server && ((uint64_t)*min_ivl != r.min_ivl || *min_ivl < 0 ||
                  (uint64_t)*max_ivl != r.max_ivl || *max_ivl < 0)) {
    char a[40], b[40], c[40], d[40];
    dur_text(*min_ivl, a, sizeof(a));
    dur_text(*max_ivl, b, sizeof(b));
    dur_text((int64_t)r.min_ivl, c, sizeof(c));
    dur_text((int64_t)r.max_ivl, d, sizeof(d));
    fprintf(stderr,
            "qpool: %s: min_ivl %s, max_ivl %s: using min_ivl %s, max_ivl %s "
            "(as the Go package: an interval of 0 or less is 1s, min above "
            "max is swapped)\n",
            fn, a, b, c, d);
  }
  *min_cap = r.min_cap;
  *max_cap = r.max_cap;
  *min_ivl = (int64_t)r.min_ivl;
  *max_ivl = (int64_t)r.max_ivl;
}

/* qp_close of an embedded pool, after the channels closed: stop the
 * private qpoold, free the settings. */
static void embedded_close(qp_pool *p) {
  qp__embedded_stop(p);
  qp__embedded_free(p->emb);
  p->emb = NULL;
}

static int new_pool(struct qp_embedded *e, qp_pool **out) {
  qp_pool *p = qp__pool_alloc(EMB_POOL);
  if (!p) {
    qp__embedded_free(e);
    return -ENOMEM;
  }
  p->emb = e;
  p->on_close = embedded_close;
  e->lifeline = -1;
  *out = p;
  return 0;
}

/* Records a value a constructor gave (already checked). */
static void give(struct qp_embedded *e, enum qp_setting_id id) {
  e->given[id] = 1;
}

int qp_client_pool_new(int min_cap, int max_cap, int64_t min_ivl,
                       int64_t max_ivl, int64_t keep_alive,
                       const char *tls_mode, const char *hostname,
                       const char *target, qp_pool **out) {
  if (!out || !dur_ok(keep_alive) || !addr_ok(target, 0))
    return -EINVAL;
  if (!tls_mode || !*tls_mode)
    tls_mode = "1";
  if (min_cap > QP_CAP_MAX || max_cap > QP_CAP_MAX ||
      (min_ivl > 0 && !dur_ok(min_ivl)) || (max_ivl > 0 && !dur_ok(max_ivl)))
    return -EINVAL; /* more than qpoold takes: refused, not guessed */
  struct qp_embedded *e = calloc(1, sizeof(*e));
  if (!e)
    return -ENOMEM;
  qp_pool_settings_defaults(&e->set);
  if (qp_setting_parse(QP_SET_TLS_MODE, tls_mode, &e->set, NULL, 0) < 0 ||
      (hostname && *hostname &&
       qp_setting_parse(QP_SET_HOSTNAME, hostname, &e->set, NULL, 0) < 0) ||
      (e->set.tls_mode == '2' && !e->set.hostname[0])) { /* mode 2 verifies
                                                            the name */
    free(e);
    return -EINVAL;
  }
  normalize("qp_client_pool_new", 0, &min_cap, &max_cap, &min_ivl, &max_ivl);
  e->set.min_cap = min_cap;
  e->set.max_cap = max_cap;
  e->set.min_ivl_ns = (uint64_t)min_ivl;
  e->set.max_ivl_ns = (uint64_t)max_ivl;
  e->set.keep_alive_ns = (uint64_t)keep_alive;
  give(e, QP_SET_MIN_CAP);
  give(e, QP_SET_MAX_CAP);
  give(e, QP_SET_MIN_INTERVAL);
  give(e, QP_SET_MAX_INTERVAL);
  give(e, QP_SET_KEEP_ALIVE);
  give(e, QP_SET_TLS_MODE);
  if (e->set.hostname[0])
    give(e, QP_SET_HOSTNAME);
  int rc = add_arg(e, "client");
  rc = rc ?: add_arg(e, "--target=%s", target);
  if (rc) {
    qp__embedded_free(e);
    return rc;
  }
  return new_pool(e, out);
}

int qp_client_pool_tls(qp_pool *p, const struct qp_tls *tls) {
  if (!p || !p->emb || p->emb->server || !tls || !text_ok(tls->ca_file) ||
      tls->cert_file || tls->key_file)
    return -EINVAL;
  pthread_mutex_lock(&p->mu);
  struct qp_embedded *e = p->emb;
  int rc = e->state || e->has_ca || e->set.tls_mode != '2' ? -EINVAL : 0;
  if (rc == 0 && (rc = add_arg(e, "--ca=%s", tls->ca_file)) == 0)
    e->has_ca = 1;
  pthread_mutex_unlock(&p->mu);
  return rc;
}

int qp_server_pool_new(int max_cap, const char *client_ip,
                       const struct qp_tls *tls, const char *listen_addr,
                       int64_t keep_alive, qp_pool **out) {
  if (!out || max_cap > QP_CAP_MAX || !dur_ok(keep_alive) ||
      !addr_ok(listen_addr, 1) ||
      (client_ip && *client_ip && !text_ok(client_ip)))
    return -EINVAL;
  if (tls && (!text_ok(tls->cert_file) || !text_ok(tls->key_file)))
    return -EINVAL; /* both files, or tls = NULL for a self-signed one */
  int min_cap = max_cap;
  /* servers have no intervals */
  int64_t min_ivl = (int64_t)QP_INTERVAL_DEFAULT_NS, max_ivl = min_ivl;
  normalize("qp_server_pool_new", 1, &min_cap, &max_cap, &min_ivl, &max_ivl);
  struct qp_embedded *e = calloc(1, sizeof(*e));
  if (!e)
    return -ENOMEM;
  e->server = 1;
  qp_pool_settings_defaults(&e->set);
  e->set.max_cap = max_cap;
  e->set.keep_alive_ns = (uint64_t)keep_alive;
  give(e, QP_SET_MAX_CAP);
  give(e, QP_SET_KEEP_ALIVE);
  int rc = add_arg(e, "server");
  rc = rc ?: add_arg(e, "--listen=%s", listen_addr);
  if (client_ip && *client_ip)
    rc = rc ?: add_arg(e, "--client-ip=%s", client_ip);
  if (tls) {
    rc = rc ?: add_arg(e, "--cert=%s", tls->cert_file);
    rc = rc ?: add_arg(e, "--key=%s", tls->key_file);
  }
  if (rc) {
    qp__embedded_free(e);
    return rc;
  }
  return new_pool(e, out);
}

int qp_pool_set(qp_pool *p, const char *key, const char *value) {
  if (!p || !p->emb || !key || !value)
    return -EINVAL;
  const struct qp_setting *s = qp_setting_find(key);
  if (!s)
    return -EINVAL;
  enum qp_setting_id id = (enum qp_setting_id)(s - qp_settings);
  pthread_mutex_lock(&p->mu);
  struct qp_embedded *e = p->emb;
  struct qp_pool_settings t = e->set;
  int rc = e->state ? -EINVAL : 0;
  if (rc == 0 && !(s->scope & (e->server ? QP_SCOPE_SERVER : QP_SCOPE_CLIENT)))
    rc = -EINVAL; /* a setting of the other side */
  if (rc == 0)
    rc = qp_setting_parse(id, value, &t, NULL, 0);
  if (rc == 0) { /* a later call replaces the value */
    e->set = t;
    e->given[id] = 1;
  }
  pthread_mutex_unlock(&p->mu);
  return rc;
}

int qp_pool_congestion_control(qp_pool *p, const char *name) {
  return name ? qp_pool_set(p, "congestion_control", name) : -EINVAL;
}

int qp_pool_max_stream_window(qp_pool *p, uint64_t bytes) {
  char size[32];
  if (!qp_stream_window_ok(bytes))
    return -EINVAL;
  qp_size_format(bytes, size, sizeof(size));
  return qp_pool_set(p, "max_stream_window", size);
}

char **qp__embedded_args(const struct qp_embedded *e) {
  char **a = calloc((size_t)e->argc + QP_SET_N + 1, sizeof(*a));
  int n = 0;
  if (!a)
    return NULL;
  for (int i = 0; i < e->argc; i++)
    if (!(a[n++] = strdup(e->argv[i])))
      goto fail;
  for (int i = 0; i < QP_SET_N; i++) {
    char v[300];
    if (!e->given[i])
      continue;
    qp_setting_format((enum qp_setting_id)i, &e->set, v, sizeof(v));
    if (asprintf(&a[n++], "%s=%s", qp_settings[i].flag, v) < 0) {
      a[--n] = NULL;
      goto fail;
    }
  }
  return a;
fail:
  qp__args_free(a);
  return NULL;
}

void qp__args_free(char **args) {
  for (size_t i = 0; args && args[i]; i++)
    free(args[i]);
  free(args);
}

/* ---- the private qpoold ------------------------------------------------- */

static int is_exec(const char *path) {
  return access(path, X_OK) == 0;
}

/* $QPOOL_QPOOLD, else beside this library (a build tree), else where the
 * install put it relative to the library, else the configured sbindir. */
static int find_qpoold(char *out, size_t cap) {
  const char *env = getenv("QPOOL_QPOOLD");
  if (env && *env) {
    snprintf(out, cap, "%s", env);
    return is_exec(out) ? 0 : -ENOENT;
  }
  Dl_info info;
  if (dladdr((void *)find_qpoold, &info) && info.dli_fname) {
    char dir[PATH_MAX];
    snprintf(dir, sizeof(dir), "%s", info.dli_fname);
    char *slash = strrchr(dir, '/');
    if (slash) {
      *slash = 0;
      snprintf(out, cap, "%s/qpoold", dir);
      if (is_exec(out))
        return 0;
      snprintf(out, cap, "%s/%s/qpoold", dir, QP_LIB_TO_SBIN);
      if (is_exec(out))
        return 0;
    }
  }
  snprintf(out, cap, "%s/qpoold", QP_SBINDIR);
  return is_exec(out) ? 0 : -ENOENT;
}

static void cleanup_dir(struct qp_embedded *e) {
  if (!e->dir[0])
    return;
  char path[PATH_MAX];
  snprintf(path, sizeof(path), "%s/notify", e->dir);
  unlink(path);
  unlink(e->control); /* qpoold removes it on a clean stop */
  rmdir(e->dir);
  e->dir[0] = 0;
}

/* Waits up to ms for the child to exit; SIGKILL after that. */
static void reap(pid_t pid, unsigned ms) {
  uint64_t deadline = qp__now_ms() + ms;
  for (;;) {
    pid_t r = waitpid(pid, NULL, WNOHANG);
    if (r == pid || (r < 0 && errno != EINTR))
      return; /* gone (ECHILD: SIGCHLD ignored, reaped by the kernel) */
    if (qp__now_ms() >= deadline)
      break;
    usleep(5000);
  }
  kill(pid, SIGKILL);
  while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
    ;
}

/* qpoold's start-up errors in this API's terms: a file it could not read
 * is a bad setting, not "no pool of that name". */
static int start_error(int e) {
  switch (e) {
  case ENOENT:
  case EACCES:
  case EISDIR:
  case ENOTDIR:
    return -EINVAL;
  default:
    return e > 0 ? -e : -EIO;
  }
}

/* Reads sd_notify datagrams until READY=1 (0), ERRNO=N (an error), the
 * child's exit (then *reaped = 1), qp_close or the deadline. */
static int wait_ready(qp_pool *p, int nsock, pid_t pid, uint64_t deadline,
                      int *reaped) {
  for (;;) {
    uint64_t now = qp__now_ms();
    if (now >= deadline)
      return -ETIMEDOUT;
    pthread_mutex_lock(&p->mu);
    int closing = p->closing;
    pthread_mutex_unlock(&p->mu);
    if (closing)
      return -ECANCELED;
    struct pollfd pfd = {.fd = nsock, .events = POLLIN};
    uint64_t left = deadline - now;
    int n = poll(&pfd, 1, left > 50 ? 50 : (int)left);
    if (n > 0) {
      char msg[1024];
      ssize_t len = recv(nsock, msg, sizeof(msg) - 1, MSG_DONTWAIT);
      if (len > 0) {
        msg[len] = 0;
        char *save = NULL;
        for (char *line = strtok_r(msg, "\n", &save); line;
             line = strtok_r(NULL, "\n", &save)) {
          if (!strcmp(line, "READY=1"))
            return 0;
          if (!strncmp(line, "ERRNO=", 6))
            return start_error(atoi(line + 6));
        }
      }
      continue;
    }
    int status;
    pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) { /* exited without telling why: 2 is a bad setting */
      *reaped = 1;
      return WIFEXITED(status) && WEXITSTATUS(status) == 2 ? -EINVAL : -EIO;
    }
  }
}

static int spawn(struct qp_embedded *e, const char *qpoold, int lifeline_r) {
  char ctl[160], notify[160];
  snprintf(ctl, sizeof(ctl), "--control=%s", e->control);
  snprintf(notify, sizeof(notify), "NOTIFY_SOCKET=%s/notify", e->dir);

  /* argv: qpoold MODE flags --name --control --lifeline --log-level */
  char **flags = qp__embedded_args(e);
  if (!flags)
    return -ENOMEM;
  const char *argv[64];
  int n = 0;
  argv[n++] = qpoold;
  for (int i = 0; flags[i] && n < 58; i++)
    argv[n++] = flags[i];
  argv[n++] = "--name=" EMB_POOL;
  argv[n++] = ctl;
  argv[n++] = "--lifeline=3";
  argv[n++] = "--log-level=warn"; /* $QPOOL_LOG overrides it */
  argv[n] = NULL;

  size_t ne = 0;
  while (environ && environ[ne])
    ne++;
  const char **envp = calloc(ne + 2, sizeof(*envp));
  if (!envp) {
    qp__args_free(flags);
    return -ENOMEM;
  }
  size_t k = 0;
  for (size_t i = 0; i < ne; i++)
    if (strncmp(environ[i], "NOTIFY_SOCKET=", 14))
      envp[k++] = environ[i];
  envp[k++] = notify;
  envp[k] = NULL;

  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  /* stdout and stderr as the application has them; closed ones (or ones
   * that close on exec) become /dev/null, so that none of qpoold's own
   * sockets lands on fd 1 or 2 */
  for (int fd = 1; fd <= 2; fd++) {
    int fl = fcntl(fd, F_GETFD);
    if (fl < 0 || (fl & FD_CLOEXEC))
      posix_spawn_file_actions_addopen(&fa, fd, "/dev/null", O_WRONLY, 0);
  }
  posix_spawn_file_actions_adddup2(&fa, lifeline_r, 3);
  /* none of the application's other fds leak into qpoold */
  posix_spawn_file_actions_addclosefrom_np(&fa, 4);
  posix_spawnattr_t at;
  posix_spawnattr_init(&at);
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  posix_spawnattr_setsigmask(&at, &none);
  posix_spawnattr_setsigdefault(&at, &all);
  posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF |
                                    POSIX_SPAWN_SETPGROUP);
  posix_spawnattr_setpgroup(&at, 0); /* the terminal's Ctrl-C is the app's */
  pid_t pid;
  int rc = posix_spawn(&pid, qpoold, &fa, &at, (char *const *)argv,
                       (char *const *)envp);
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&at);
  free(envp);
  qp__args_free(flags);
  if (rc != 0)
    return -rc;
  e->pid = pid;
  return 0;
}

int qp__embedded_start(qp_pool *p) {
  struct qp_embedded *e = p->emb;
  char qpoold[PATH_MAX];
  int rc = find_qpoold(qpoold, sizeof(qpoold));
  if (rc < 0)
    return -ENOEXEC;

  const char *base = getenv("XDG_RUNTIME_DIR");
  if (!base || !*base || strlen(base) > 60 || access(base, W_OK) < 0)
    base = "/tmp";
  snprintf(e->dir, sizeof(e->dir), "%s/qpool-XXXXXX", base);
  if (!mkdtemp(e->dir)) {
    rc = -errno;
    e->dir[0] = 0;
    return rc;
  }
  snprintf(e->control, sizeof(e->control), "%.80s/control.sock", e->dir);

  int nsock = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  snprintf(sa.sun_path, sizeof(sa.sun_path), "%.80s/notify", e->dir);
  int pfd[2] = {-1, -1};
  if (nsock < 0 || bind(nsock, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
      pipe2(pfd, O_CLOEXEC) < 0) {
    rc = -errno;
    goto fail;
  }
  /* keep the read end off fd 3, so that dup2 onto 3 clears close-on-exec */
  int r = fcntl(pfd[0], F_DUPFD_CLOEXEC, 10);
  if (r < 0) {
    rc = -errno;
    goto fail;
  }
  close(pfd[0]);
  pfd[0] = r;
  rc = spawn(e, qpoold, pfd[0]);
  close(pfd[0]);
  pfd[0] = -1;
  if (rc < 0)
    goto fail;
  e->lifeline = pfd[1];
  pfd[1] = -1;
  uint64_t deadline = qp__now_ms() + START_MS;
  int reaped = 0;
  rc = wait_ready(p, nsock, e->pid, deadline, &reaped);
  close(nsock);
  nsock = -1;
  if (reaped)
    e->pid = 0; /* waited for already: its pid may be reused */
  if (rc == 0)
    rc = qp__connect(p, e->control, deadline);
  if (rc == 0)
    return 0;
  qp__reset(p); /* no channel to the qpoold that is going away */
  qp__embedded_stop(p);
  return rc;
fail:
  if (nsock >= 0)
    close(nsock);
  if (pfd[0] >= 0)
    close(pfd[0]);
  if (pfd[1] >= 0)
    close(pfd[1]);
  cleanup_dir(e);
  return rc;
}

/* Closing the lifeline asks qpoold to stop (pools close gracefully; bytes
 * in flight are delivered); waits for it, killing it after STOP_MS. */
void qp__embedded_stop(qp_pool *p) {
  struct qp_embedded *e = p->emb;
  if (e->lifeline >= 0) {
    close(e->lifeline);
    e->lifeline = -1;
  }
  if (e->pid > 0) {
    reap(e->pid, STOP_MS);
    e->pid = 0;
  }
  cleanup_dir(e);
}

static int manager(qp_pool *p, int server) {
  if (!p || !p->emb || p->emb->server != server)
    return -EINVAL;      /* attached pools are managed by their qpoold */
  int rc = qp__enter(p); /* a call in progress: qp_close waits for it */
  if (rc < 0)
    return rc;
  pthread_mutex_lock(&p->mu);
  rc = p->emb->state ? -EALREADY : 0;
  if (!rc)
    p->emb->state = 1;
  pthread_mutex_unlock(&p->mu);
  if (rc == 0) {
    rc = qp__embedded_start(p);
    pthread_mutex_lock(&p->mu);
    p->emb->state = rc < 0 ? 0 : 2;
    pthread_mutex_unlock(&p->mu);
  }
  qp__leave(p);
  return rc;
}

int qp_client_manager(qp_pool *p) {
  return manager(p, 0);
}

int qp_server_manager(qp_pool *p) {
  return manager(p, 1);
}
