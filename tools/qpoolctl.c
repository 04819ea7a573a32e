/* qpoolctl: talks to qpoold's control socket (proto/control.proto): pool
 * status, stats as JSON, Prometheus metrics, a live view, the application
 * error counter, flushing, a connection's peer identity and addresses, and
 * taking a stream onto stdin/stdout like netcat. Exit codes: 0 ok, 1 error
 * (with a message), 2 usage. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <jansson.h>

#include "control.pb-c.h"
#include "shared/duration.h"
#include "shared/frame.h"
#include "shared/stats.h"
#include "shared/size.h"
#include "shared/stream_id.h"

#define DEFAULT_CONTROL "/run/qpool/qpoold.sock"
#define EXIT_USAGE 2
#define DEFAULT_TIMEOUT_NS (30 * QP_NS_PER_S)
#define ANSWER_SLACK_MS 5000 /* beyond a GET's own timeout */
#define RELAY_BUF 65536

static const char *control_path;
static uint64_t next_tag;
static uint8_t frame_buf[QP_FRAME_HDR + QP_FRAME_MAX];

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2)))
__attribute__((noreturn));
static void die(const char *fmt, ...) {
  va_list ap;
  fputs("qpoolctl: ", stderr);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
  exit(1);
}

static void usage_error(const char *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3))) __attribute__((noreturn));
static void usage_error(const char *cmd, const char *fmt, ...) {
  va_list ap;
  fputs("qpoolctl: ", stderr);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fprintf(stderr, "\nTry 'qpoolctl %s%s--help'.\n", cmd ? cmd : "",
          cmd ? " " : "");
  exit(EXIT_USAGE);
}

static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ---- the control socket ------------------------------------------------- */

static int ctl_connect(void) {
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  if (strlen(control_path) >= sizeof(sa.sun_path))
    die("control socket path too long (at most %zu bytes): %s",
        sizeof(sa.sun_path) - 1, control_path);
  memcpy(sa.sun_path, control_path, strlen(control_path) + 1);
  int s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  if (s < 0)
    die("cannot create a Unix socket: %s", strerror(errno));
  if (connect(s, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
    int e = errno;
    die("cannot connect to %s: %s%s", control_path, strerror(e),
        e == ENOENT || e == ECONNREFUSED ? " (is qpoold running? use --control)"
        : e == EACCES ? " (not allowed to use qpoold's control socket)"
                      : "");
  }
  return s;
}

static void ctl_send(int s, Qpool__Request *r) {
  r->tag = ++next_tag;
  for (;;) {
    int rc = qp_frame_send(s, QPOOL__CTL_TYPE__CTL_REQUEST, &r->base, -1);
    if (rc == 0)
      return;
    if (rc != -EAGAIN)
      die("cannot send a request to qpoold (%s): %s", control_path,
          strerror(-rc));
    struct pollfd p = {.fd = s, .events = POLLOUT};
    if (poll(&p, 1, ANSWER_SLACK_MS) == 0)
      die("qpoold (%s) does not accept requests", control_path);
  }
}

/* Waits up to timeout_ms (-1: forever) for the next Response. Returns it
 * (free with qpool__response__free_unpacked), *fd = a passed fd or -1. */
static Qpool__Response *ctl_recv(int s, int timeout_ms, int *fd) {
  uint64_t deadline = timeout_ms < 0 ? 0 : now_ms() + (uint64_t)timeout_ms;
  for (;;) {
    struct qp_frame f;
    int rc = qp_frame_recv(s, frame_buf, sizeof(frame_buf), &f);
    if (rc == 0)
      die("qpoold closed the control connection (%s)", control_path);
    if (rc == -EAGAIN) {
      int wait = -1;
      if (timeout_ms >= 0) {
        uint64_t now = now_ms();
        if (now >= deadline)
          die("no answer from qpoold (%s) in time", control_path);
        wait = (int)(deadline - now);
      }
      struct pollfd p = {.fd = s, .events = POLLIN};
      if (poll(&p, 1, wait) < 0 && errno != EINTR)
        die("poll: %s", strerror(errno));
      continue;
    }
    if (rc < 0)
      die("bad frame from qpoold (%s): %s", control_path, strerror(-rc));
    if (f.type != QPOOL__CTL_TYPE__CTL_RESPONSE) {
      if (f.fd >= 0)
        close(f.fd);
      die("unexpected frame type %u from qpoold", (unsigned)f.type);
    }
    Qpool__Response *m = qpool__response__unpack(NULL, f.len, f.payload);
    if (!m) {
      if (f.fd >= 0)
        close(f.fd);
      die("malformed response from qpoold (%s)", control_path);
    }
    if (fd)
      *fd = f.fd;
    else if (f.fd >= 0)
      close(f.fd);
    return m;
  }
}

/* One request, its answer. Exits with the error sentence when code != 0. */
static Qpool__Response *ctl_call(int s, Qpool__Request *r, int timeout_ms,
                                 int *fd, const char *what) {
  ctl_send(s, r);
  for (;;) {
    int got_fd = -1;
    Qpool__Response *m = ctl_recv(s, timeout_ms, &got_fd);
    if (m->tag != r->tag) { /* not ours (cannot happen: one at a time) */
      if (got_fd >= 0)
        close(got_fd);
      qpool__response__free_unpacked(m, NULL);
      continue;
    }
    if (m->code != 0) {
      if (got_fd >= 0)
        close(got_fd);
      die("%s: %s", what,
          m->message && *m->message ? m->message : strerror(m->code));
    }
    if (fd)
      *fd = got_fd;
    else if (got_fd >= 0)
      close(got_fd);
    return m;
  }
}

static Qpool__Response *fetch_stats(const char *pool) {
  int s = ctl_connect();
  Qpool__Request r = QPOOL__REQUEST__INIT;
  r.op = QPOOL__CTL_OP__OP_STATS;
  r.pool = (char *)pool;
  Qpool__Response *m = ctl_call(s, &r, ANSWER_SLACK_MS, NULL, "stats");
  close(s);
  return m;
}

/* ---- option parsing helpers --------------------------------------------- */

/* Parses the options of one command (argv[0] = the command). Common:
 * --help, --control PATH. Returns the option character for others. */
#define COMMON_LONGOPTS                                                        \
  {"help", no_argument, NULL, 'h'}, {                                          \
    "control", required_argument, NULL, 'c'                                    \
  }

static int cmd_getopt(int argc, char **argv, const char *shortopts,
                      const struct option *lo, const char *usage) {
  int c = getopt_long(argc, argv, shortopts, lo, NULL);
  switch (c) {
  case 'h':
    fputs(usage, stdout);
    exit(0);
  case 'c':
    control_path = optarg;
    return 0;
  case '?':
    fprintf(stderr, "Try 'qpoolctl %s --help'.\n", argv[0]);
    exit(EXIT_USAGE);
  default:
    return c;
  }
}

static uint64_t parse_dur(const char *cmd, const char *opt, const char *s) {
  uint64_t ns;
  if (qp_duration_parse(s, &ns) < 0)
    usage_error(cmd, "%s: bad duration \"%s\" (examples: 500ms, 2s, 1m)", opt,
                s);
  return ns;
}

/* A stream ID as 'incoming' prints it: 1 to 8 hex digits. */
static uint32_t parse_id(const char *cmd, const char *s) {
  size_t len = strlen(s);
  if (len == 0 || len > 8 || strspn(s, "0123456789abcdefABCDEF") != len)
    usage_error(cmd, "%s: bad stream ID \"%s\" (8 hex digits)", cmd, s);
  return (uint32_t)strtoul(s, NULL, 16);
}

static void need_args(int argc, char **argv, int want, const char *names) {
  int have = argc - optind;
  if (have < want)
    usage_error(argv[0], "%s: missing %s", argv[0], names);
  if (have > want)
    usage_error(argv[0], "%s: unexpected argument \"%s\"", argv[0],
                argv[optind + want]);
}

/* ---- formatting ---------------------------------------------------------- */

static const char *pool_state(const Qpool__PoolStats *p) {
  if (p->has_failed && p->failed)
    return "failed"; /* LAST ERROR says why */
  if (p->worker_pid == 0)
    return "restarting";
  if (!p->ready)
    return "starting";
  if (!p->server && !p->connected)
    return "connecting";
  return "ready";
}

static void fmt_interval(const Qpool__PoolStats *p, char *buf, size_t len) {
  if (p->server)
    snprintf(buf, len, "-");
  else
    qp_duration_format(p->interval_ns, buf, len);
}

/* The worker's max_stream_window as "16MiB", or "-" before its report. */
static void fmt_window(const Qpool__PoolStats *p, char *buf, size_t len) {
  if (p->has_max_stream_window)
    qp_size_format(p->max_stream_window, buf, len);
  else
    snprintf(buf, len, "-");
}

static void print_table(FILE *out, const Qpool__Response *m) {
  fprintf(out, "%-16s %-6s %7s %-10s %6s %8s %8s %6s %5s  %-5s %6s  %s\n",
          "POOL", "ROLE", "PID", "STATE", "IDLE", "CAPACITY", "INTERVAL",
          "ERRORS", "CONNS", "CC", "WINDOW", "LAST ERROR");
  for (size_t i = 0; i < m->n_pools; i++) {
    const Qpool__PoolStats *p = m->pools[i];
    char ivl[32], pid[16], win[32];
    fmt_interval(p, ivl, sizeof(ivl));
    fmt_window(p, win, sizeof(win));
    if (p->worker_pid)
      snprintf(pid, sizeof(pid), "%" PRIu32, p->worker_pid);
    else
      snprintf(pid, sizeof(pid), "-");
    fprintf(out,
            "%-16s %-6s %7s %-10s %6" PRId32 " %8" PRId32 " %8s %6" PRIu64
            " %5" PRId32 "  %-5s %6s  %s\n",
            p->name, p->server ? "server" : "client", pid, pool_state(p),
            p->idle_streams, p->capacity, ivl, p->app_errors, p->connections,
            p->congestion_control ? p->congestion_control : "-", win,
            p->last_error && *p->last_error ? p->last_error : "-");
  }
  if (m->n_pools == 0)
    fprintf(out, "(no pools)\n");
}

/* One line per pool, key=value (shared/stats.c: the status file's keys),
 * after a timestamp and the pool's state, for logs and pipes. */
static void print_lines(FILE *out, const Qpool__Response *m) {
  char ts[32];
  time_t t = time(NULL);
  struct tm tm;
  localtime_r(&t, &tm);
  strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
  for (size_t i = 0; i < m->n_pools; i++) {
    fprintf(out, "%s state=%s ", ts, pool_state(m->pools[i]));
    qp_stats_line(out, m->pools[i]);
  }
  if (m->n_pools == 0)
    fprintf(out, "%s (no pools)\n", ts);
}

static json_t *ju64(uint64_t v) {
  return json_integer(v > (uint64_t)INT64_MAX ? (json_int_t)INT64_MAX
                                              : (json_int_t)v);
}

/* A pool's attributes, then every counter and gauge of shared/stats.c
 * under its name (seconds as a number, 0/1 gauges as booleans). */
static json_t *stats_json(const Qpool__Response *m) {
  json_t *pools = json_array();
  for (size_t i = 0; i < m->n_pools; i++) {
    const Qpool__PoolStats *p = m->pools[i];
    json_t *o = json_object();
    json_object_set_new(o, "name", json_string(p->name));
    json_object_set_new(o, "role",
                        json_string(p->server ? "server" : "client"));
    json_object_set_new(o, "worker", json_integer(p->worker));
    json_object_set_new(o, "worker_pid", ju64(p->worker_pid));
    json_object_set_new(o, "failed", json_boolean(p->has_failed && p->failed));
    for (size_t k = 0; k < qp_stats_n; k++) {
      const struct qp_stat *st = &qp_stats[k];
      double v = qp_stat_value(st, p);
      json_t *j = st->type == QP_SV_BOOL  ? json_boolean(v != 0)
                  : st->type == QP_SV_NS  ? json_real(v)
                  : st->type == QP_SV_I32 ? json_integer((json_int_t)v)
                                          : ju64(qp_stat_raw(st, p));
      json_object_set_new(o, st->name, j);
    }
    json_object_set_new(o, "congestion_control",
                        p->congestion_control
                            ? json_string(p->congestion_control)
                            : json_null());
    json_object_set_new(o, "max_stream_window",
                        p->has_max_stream_window ? ju64(p->max_stream_window)
                                                 : json_null());
    json_object_set_new(o, "last_error",
                        p->last_error ? json_string(p->last_error)
                                      : json_null());
    json_array_append_new(pools, o);
  }
  json_t *root = json_object();
  json_object_set_new(root, "pools", pools);
  return root;
}

static void flush_stdout(void) {
  if (fflush(stdout) != 0 || ferror(stdout))
    die("cannot write to standard output: %s", strerror(errno));
}

/* ---- commands ------------------------------------------------------------ */

static int cmd_status(int argc, char **argv) {
  static const char usage[] =
      "Usage: qpoolctl status [--control PATH] [POOL]\n"
      "A table of qpoold's pools: role, worker pid, state, idle streams\n"
      "(active), capacity, refill interval, application error counter,\n"
      "QUIC connections, their congestion controller (CC) and the cap of a\n"
      "stream's receive window and read-ahead (WINDOW, max_stream_window),\n"
      "both as the pool's worker reports them, and the last error.\n";
  static const struct option lo[] = {COMMON_LONGOPTS, {0}};
  int c;
  while ((c = cmd_getopt(argc, argv, "+h", lo, usage)) != -1)
    ;
  if (argc - optind > 1)
    usage_error(argv[0], "status: unexpected argument \"%s\"",
                argv[optind + 1]);
  Qpool__Response *m = fetch_stats(optind < argc ? argv[optind] : NULL);
  print_table(stdout, m);
  qpool__response__free_unpacked(m, NULL);
  flush_stdout();
  return 0;
}

static int cmd_stats(int argc, char **argv) {
  static const char usage[] =
      "Usage: qpoolctl stats [--json] [--control PATH] [POOL]\n"
      "Every counter and gauge of every pool (or of POOL), named as in\n"
      "docs/metrics.md: one line of key=value pairs per pool (the status\n"
      "file's), or with --json one object {\"pools\": [...]} with the\n"
      "same names (units: seconds, bytes, counts).\n";
  static const struct option lo[] = {
      COMMON_LONGOPTS, {"json", no_argument, NULL, 'j'}, {0}};
  int c, json = 0;
  while ((c = cmd_getopt(argc, argv, "+hj", lo, usage)) != -1)
    if (c == 'j')
      json = 1;
  if (argc - optind > 1)
    usage_error(argv[0], "stats: unexpected argument \"%s\"", argv[optind + 1]);
  Qpool__Response *m = fetch_stats(optind < argc ? argv[optind] : NULL);
  if (json) {
    json_t *root = stats_json(m);
    if (json_dumpf(root, stdout,
                   JSON_INDENT(2) | JSON_PRESERVE_ORDER |
                       JSON_REAL_PRECISION(9)) < 0)
      die("cannot write JSON to standard output");
    fputc('\n', stdout);
    json_decref(root);
  } else { /* the status file's lines (shared/stats.c) */
    for (size_t i = 0; i < m->n_pools; i++)
      qp_stats_line(stdout, m->pools[i]);
  }
  qpool__response__free_unpacked(m, NULL);
  flush_stdout();
  return 0;
}

static int cmd_metrics(int argc, char **argv) {
  static const char usage[] =
      "Usage: qpoolctl metrics [--control PATH] [POOL]\n"
      "Every pool's counters in the Prometheus text exposition format\n"
      "0.0.4 (names prefixed qpool_, label pool=\"NAME\").\n";
  static const struct option lo[] = {COMMON_LONGOPTS, {0}};
  int c;
  while ((c = cmd_getopt(argc, argv, "+h", lo, usage)) != -1)
    ;
  if (argc - optind > 1)
    usage_error(argv[0], "metrics: unexpected argument \"%s\"",
                argv[optind + 1]);
  Qpool__Response *m = fetch_stats(optind < argc ? argv[optind] : NULL);
  qp_stats_prometheus(stdout, m->pools, m->n_pools);
  qpool__response__free_unpacked(m, NULL);
  flush_stdout();
  return 0;
}

static void watch_draw(const Qpool__Response *m, int tty) {
  if (tty) {
    char ts[32];
    time_t t = time(NULL);
    struct tm tm;
    localtime_r(&t, &tm);
    strftime(ts, sizeof(ts), "%H:%M:%S", &tm);
    fputs("\033[H\033[2J", stdout);
    printf("qpoolctl watch  %s  %s  (Ctrl-C to stop)\n\n", control_path, ts);
    print_table(stdout, m);
  } else {
    print_lines(stdout, m);
  }
  flush_stdout();
}

static int cmd_watch(int argc, char **argv) {
  static const char usage[] =
      "Usage: qpoolctl watch [--interval DUR] [--count N] [--control PATH] "
      "[POOL]\n"
      "A live view: the status table, redrawn whenever a pool changes\n"
      "(at most once per --interval, default 1s; 0 = every change). When\n"
      "standard output is not a terminal: one line per pool per update.\n"
      "--count N stops after N updates.\n";
  static const struct option lo[] = {COMMON_LONGOPTS,
                                     {"interval", required_argument, NULL, 'i'},
                                     {"count", required_argument, NULL, 'n'},
                                     {0}};
  int c;
  uint64_t ivl_ns = QP_NS_PER_S;
  long count = -1;
  while ((c = cmd_getopt(argc, argv, "+hi:n:", lo, usage)) != -1) {
    if (c == 'i')
      ivl_ns = parse_dur(argv[0], "--interval", optarg);
    else if (c == 'n') {
      char *end;
      errno = 0;
      count = strtol(optarg, &end, 10);
      if (errno || *end || end == optarg || count < 1)
        usage_error(argv[0], "--count: not a positive number: \"%s\"", optarg);
    }
  }
  if (argc - optind > 1)
    usage_error(argv[0], "watch: unexpected argument \"%s\"", argv[optind + 1]);
  int tty = isatty(STDOUT_FILENO);
  int s = ctl_connect();
  Qpool__Request r = QPOOL__REQUEST__INIT;
  r.op = QPOOL__CTL_OP__OP_WATCH;
  r.pool = optind < argc ? argv[optind] : NULL;
  Qpool__Response *m = ctl_call(s, &r, ANSWER_SLACK_MS, NULL, "watch");
  uint64_t ivl_ms = ivl_ns / QP_NS_PER_MS, last = now_ms();
  long drawn = 0;
  watch_draw(m, tty);
  drawn++;
  qpool__response__free_unpacked(m, NULL);
  m = NULL; /* the newest undrawn update */
  while (count < 0 || drawn < count) {
    int wait = -1;
    if (m) {
      uint64_t now = now_ms();
      if (now >= last + ivl_ms) {
        watch_draw(m, tty);
        drawn++;
        last = now;
        qpool__response__free_unpacked(m, NULL);
        m = NULL;
        continue;
      }
      wait = (int)(last + ivl_ms - now);
    }
    struct pollfd p = {.fd = s, .events = POLLIN};
    int n = poll(&p, 1, wait);
    if (n < 0 && errno != EINTR)
      die("poll: %s", strerror(errno));
    if (n <= 0)
      continue;
    Qpool__Response *u = ctl_recv(s, 0, NULL);
    if (u->code != 0)
      die("watch: %s", u->message ? u->message : strerror(u->code));
    if (m)
      qpool__response__free_unpacked(m, NULL);
    m = u;
  }
  if (m)
    qpool__response__free_unpacked(m, NULL);
  close(s);
  return 0;
}

static int simple_op(int argc, char **argv, Qpool__CtlOp op,
                     const char *usage) {
  static const struct option lo[] = {COMMON_LONGOPTS, {0}};
  int c;
  while ((c = cmd_getopt(argc, argv, "+h", lo, usage)) != -1)
    ;
  need_args(argc, argv, 1, "POOL");
  int s = ctl_connect();
  Qpool__Request r = QPOOL__REQUEST__INIT;
  r.op = op;
  r.pool = argv[optind];
  char what[128];
  snprintf(what, sizeof(what), "%s %.64s", argv[0], argv[optind]);
  Qpool__Response *m = ctl_call(s, &r, ANSWER_SLACK_MS, NULL, what);
  qpool__response__free_unpacked(m, NULL);
  close(s);
  return 0;
}

static int cmd_flush(int argc, char **argv) {
  return simple_op(argc, argv, QPOOL__CTL_OP__OP_FLUSH,
                   "Usage: qpoolctl flush [--control PATH] POOL\n"
                   "Closes every idle stream of POOL; a client pool then\n"
                   "refills.\n");
}

static int cmd_reset_errors(int argc, char **argv) {
  return simple_op(argc, argv, QPOOL__CTL_OP__OP_RESET_ERROR,
                   "Usage: qpoolctl reset-errors [--control PATH] POOL\n"
                   "Sets POOL's application error counter to 0.\n");
}

static int cmd_add_error(int argc, char **argv) {
  return simple_op(argc, argv, QPOOL__CTL_OP__OP_ADD_ERROR,
                   "Usage: qpoolctl add-error [--control PATH] POOL\n"
                   "Adds 1 to POOL's application error counter.\n");
}

/* Copies stdin -> fd and fd -> stdout until both directions are done. */
static int relay(int fd) {
  static uint8_t up[RELAY_BUF], down[RELAY_BUF];
  size_t up_len = 0, up_off = 0, down_len = 0, down_off = 0;
  int in_eof = 0, up_done = 0, fd_eof = 0, down_done = 0;
  int fl = fcntl(fd, F_GETFL);
  if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
    die("stream: fcntl: %s", strerror(errno));
  while (!up_done || !down_done) {
    struct pollfd p[3];
    int n = 0, i_in = -1, i_out = -1, i_fd;
    if (!in_eof && up_len == 0) {
      i_in = n;
      p[n++] = (struct pollfd){.fd = STDIN_FILENO, .events = POLLIN};
    }
    if (down_len > down_off) {
      i_out = n;
      p[n++] = (struct pollfd){.fd = STDOUT_FILENO, .events = POLLOUT};
    }
    i_fd = n;
    p[n] = (struct pollfd){.fd = fd, .events = 0};
    if (!fd_eof && down_len == 0)
      p[n].events |= POLLIN;
    if (up_len > up_off)
      p[n].events |= POLLOUT;
    n++;
    if (poll(p, (nfds_t)n, -1) < 0) {
      if (errno == EINTR)
        continue;
      die("poll: %s", strerror(errno));
    }
    if (i_in >= 0 && p[i_in].revents) {
      ssize_t k = read(STDIN_FILENO, up, sizeof(up));
      if (k < 0 && errno != EAGAIN && errno != EINTR)
        die("standard input: read: %s", strerror(errno));
      if (k == 0)
        in_eof = 1;
      if (k > 0) {
        up_len = (size_t)k;
        up_off = 0;
      }
    }
    if (i_out >= 0 && p[i_out].revents) {
      ssize_t k = write(STDOUT_FILENO, down + down_off, down_len - down_off);
      if (k < 0 && errno != EAGAIN && errno != EINTR)
        die("standard output: write: %s", strerror(errno));
      if (k > 0 && (down_off += (size_t)k) == down_len)
        down_len = down_off = 0;
    }
    short rev = p[i_fd].revents;
    if ((rev & (POLLIN | POLLHUP | POLLERR)) && !fd_eof && down_len == 0) {
      ssize_t k = recv(fd, down, sizeof(down), 0);
      if (k < 0 && errno != EAGAIN && errno != EINTR)
        die("stream: read: %s", strerror(errno));
      if (k == 0)
        fd_eof = 1;
      if (k > 0) {
        down_len = (size_t)k;
        down_off = 0;
      }
    }
    if ((rev & (POLLOUT | POLLERR | POLLHUP)) && up_len > up_off) {
      ssize_t k = send(fd, up + up_off, up_len - up_off, MSG_NOSIGNAL);
      if (k < 0 && errno != EAGAIN && errno != EINTR)
        die("stream: write: %s", strerror(errno));
      if (k > 0 && (up_off += (size_t)k) == up_len)
        up_len = up_off = 0;
    }
    if (in_eof && up_len == 0 && !up_done) {
      if (shutdown(fd, SHUT_WR) < 0 && errno != ENOTCONN)
        die("stream: shutdown: %s", strerror(errno));
      up_done = 1;
    }
    if (fd_eof && down_len == 0 && !down_done) {
      down_done = 1;
      flush_stdout();
    }
  }
  close(fd);
  return 0;
}

static int take_stream(int argc, char **argv, int any) {
  static const char usage_in[] =
      "Usage: qpoolctl incoming [--timeout DUR] [--control PATH] POOL\n"
      "Takes an idle stream of POOL (IncomingGet), prints its ID (8 hex\n"
      "digits) on standard error and connects it to standard input and\n"
      "output: end of input half-closes the stream; exits when both\n"
      "directions are done. --timeout: how long to wait for a stream\n"
      "(default 30s; 0 = only one available now).\n";
  static const char usage_out[] =
      "Usage: qpoolctl outgoing [--timeout DUR] [--control PATH] POOL ID\n"
      "Takes the stream with ID (8 hex digits, as the peer's 'incoming'\n"
      "printed it) of POOL (OutgoingGet) and connects it to standard\n"
      "input and output like 'incoming'. --timeout: how long to wait for\n"
      "that stream (default 30s).\n";
  static const struct option lo[] = {
      COMMON_LONGOPTS, {"timeout", required_argument, NULL, 't'}, {0}};
  const char *usage = any ? usage_in : usage_out;
  uint64_t tmo_ns = DEFAULT_TIMEOUT_NS;
  int c;
  while ((c = cmd_getopt(argc, argv, "+ht:", lo, usage)) != -1)
    if (c == 't')
      tmo_ns = parse_dur(argv[0], "--timeout", optarg);
  need_args(argc, argv, any ? 1 : 2, any ? "POOL" : "POOL and ID");
  uint32_t id = any ? 0 : parse_id(argv[0], argv[optind + 1]);
  uint64_t tmo_ms = tmo_ns / QP_NS_PER_MS;
  if (tmo_ms > UINT32_MAX - ANSWER_SLACK_MS)
    tmo_ms = UINT32_MAX - ANSWER_SLACK_MS;
  if (tmo_ms > INT32_MAX - ANSWER_SLACK_MS)
    tmo_ms = INT32_MAX - ANSWER_SLACK_MS;
  int s = ctl_connect();
  Qpool__Request r = QPOOL__REQUEST__INIT;
  r.op = any ? QPOOL__CTL_OP__OP_INCOMING_GET : QPOOL__CTL_OP__OP_OUTGOING_GET;
  r.pool = argv[optind];
  r.has_stream_id = !any;
  r.stream_id = id;
  r.has_timeout_ms = 1;
  r.timeout_ms = (uint32_t)tmo_ms;
  char what[128];
  snprintf(what, sizeof(what), "%s %.64s%s%.8s", argv[0], argv[optind],
           any ? "" : " ", any ? "" : argv[optind + 1]);
  int fd = -1;
  Qpool__Response *m =
      ctl_call(s, &r, (int)tmo_ms + ANSWER_SLACK_MS, &fd, what);
  if (fd < 0)
    die("%s: qpoold answered without a stream", what);
  if (any) {
    char idt[QP_STREAM_ID_TEXT];
    qp_stream_id_format(m->stream_id, idt);
    fprintf(stderr, "%s\n", idt);
  }
  qpool__response__free_unpacked(m, NULL);
  close(s);
  return relay(fd);
}

static int cmd_incoming(int argc, char **argv) {
  return take_stream(argc, argv, 1);
}

static int cmd_outgoing(int argc, char **argv) {
  return take_stream(argc, argv, 0);
}

/* ---- conn: a connection's identity -------------------------------------- */

struct cert_text {
  char subject[512], issuer[512];
  char sha256[65]; /* lowercase hex, as sha256sum prints it */
  char *pem;       /* gnutls_free it */
};

static void cert_describe(const ProtobufCBinaryData *der, struct cert_text *t) {
  memset(t, 0, sizeof(*t));
  uint8_t d[32];
  if (gnutls_hash_fast(GNUTLS_DIG_SHA256, der->data, der->len, d) == 0)
    for (int i = 0; i < 32; i++)
      snprintf(t->sha256 + 2 * i, 3, "%02x", d[i]);
  gnutls_datum_t in = {der->data, (unsigned)der->len}, dn, pem;
  if (gnutls_pem_base64_encode2("CERTIFICATE", &in, &pem) == 0)
    t->pem = (char *)pem.data;
  gnutls_x509_crt_t crt;
  snprintf(t->subject, sizeof(t->subject), "(not an X.509 certificate)");
  snprintf(t->issuer, sizeof(t->issuer), "-");
  if (gnutls_x509_crt_init(&crt) < 0)
    return;
  if (gnutls_x509_crt_import(crt, &in, GNUTLS_X509_FMT_DER) == 0) {
    if (gnutls_x509_crt_get_dn3(crt, &dn, 0) == 0) {
      snprintf(t->subject, sizeof(t->subject), "%s", (char *)dn.data);
      gnutls_free(dn.data);
    }
    if (gnutls_x509_crt_get_issuer_dn3(crt, &dn, 0) == 0) {
      snprintf(t->issuer, sizeof(t->issuer), "%s", (char *)dn.data);
      gnutls_free(dn.data);
    }
  }
  gnutls_x509_crt_deinit(crt);
}

static int cmd_conn(int argc, char **argv) {
  static const char usage[] =
      "Usage: qpoolctl conn [--json | --pem] [--control PATH] POOL [ID]\n"
      "The QUIC connection that carries stream ID of POOL (idle or taken),\n"
      "or without ID the pool's connection (a client's current one, a\n"
      "server's newest): local and remote UDP addresses, ALPN, TLS version,\n"
      "cipher suite, smoothed RTT, the congestion controller the worker\n"
      "gave the connection with ngtcp2's live congestion window, bytes in\n"
      "flight, pacing rate (0 when the controller sets none, as CUBIC),\n"
      "delivery rate, the write passes that waited for the pacing deadline\n"
      "(pacing waits), the most bytes sent without a 100 us gap (max burst)\n"
      "and the bytes its streams may read ahead of the network, shared\n"
      "(read-ahead), and\n"
      "each certificate the peer sent\n"
      "(subject, issuer, SHA-256 fingerprint of its DER bytes; a client\n"
      "sends none). --json: as one JSON object, certificates in PEM too;\n"
      "--pem: only the peer's chain, as PEM.\n";
  static const struct option lo[] = {COMMON_LONGOPTS,
                                     {"json", no_argument, NULL, 'j'},
                                     {"pem", no_argument, NULL, 'P'},
                                     {0}};
  int c, json = 0, pem = 0;
  while ((c = cmd_getopt(argc, argv, "+hj", lo, usage)) != -1)
    if (c == 'j')
      json = 1;
    else if (c == 'P')
      pem = 1;
  if (json && pem)
    usage_error(argv[0], "conn: --json and --pem exclude each other");
  if (argc - optind < 1)
    usage_error(argv[0], "conn: missing POOL");
  if (argc - optind > 2)
    usage_error(argv[0], "conn: unexpected argument \"%s\"", argv[optind + 2]);
  const char *pool = argv[optind];
  const char *ids = optind + 1 < argc ? argv[optind + 1] : NULL;
  uint32_t id = ids ? parse_id(argv[0], ids) : 0;
  int s = ctl_connect();
  Qpool__Request r = QPOOL__REQUEST__INIT;
  r.op = QPOOL__CTL_OP__OP_CONN_INFO;
  r.pool = (char *)pool;
  r.has_stream_id = ids != NULL;
  r.stream_id = id;
  char what[128], hex[9];
  qp_stream_id_format(id, hex);
  snprintf(what, sizeof(what), "conn %.64s%s%s", pool, ids ? " " : "",
           ids ? hex : "");
  Qpool__Response *m = ctl_call(s, &r, ANSWER_SLACK_MS, NULL, what);
  close(s);
  const Qpool__ConnInfo *ci = m->conn;
  if (!ci)
    die("%s: qpoold answered without a description", what);
  if (pem && ci->n_certs == 0)
    die("%s: the peer sent no certificate (clients send none)", what);
  char rtt[32];
  qp_duration_format(ci->has_rtt_ns ? ci->rtt_ns : 0, rtt, sizeof(rtt));
  int truncated = ci->has_truncated && ci->truncated;
  json_t *root = NULL, *certs = NULL;
  if (json) {
    root = json_object();
    json_object_set_new(root, "pool", json_string(pool));
    json_object_set_new(root, "stream_id",
                        ids ? json_string(hex) : json_null());
    json_object_set_new(root, "local", json_string(ci->local));
    json_object_set_new(root, "remote", json_string(ci->remote));
    json_object_set_new(root, "alpn", json_string(ci->alpn));
    json_object_set_new(root, "version", json_string(ci->version));
    json_object_set_new(root, "cipher", json_string(ci->cipher));
    json_object_set_new(root, "rtt_ns", ju64(ci->has_rtt_ns ? ci->rtt_ns : 0));
    json_object_set_new(root, "congestion_control",
                        ci->congestion_control
                            ? json_string(ci->congestion_control)
                            : json_null());
    json_object_set_new(root, "cwnd", ju64(ci->has_cwnd ? ci->cwnd : 0));
    json_object_set_new(
        root, "bytes_in_flight",
        ju64(ci->has_bytes_in_flight ? ci->bytes_in_flight : 0));
    json_object_set_new(
        root, "pacing_rate_sec",
        ju64(ci->has_pacing_rate_sec ? ci->pacing_rate_sec : 0));
    json_object_set_new(
        root, "delivery_rate_sec",
        ju64(ci->has_delivery_rate_sec ? ci->delivery_rate_sec : 0));
    json_object_set_new(root, "pacing_waits",
                        ju64(ci->has_pacing_waits ? ci->pacing_waits : 0));
    json_object_set_new(root, "max_burst",
                        ju64(ci->has_max_burst ? ci->max_burst : 0));
    json_object_set_new(root, "read_ahead",
                        ju64(ci->has_read_ahead ? ci->read_ahead : 0));
    json_object_set_new(root, "truncated", json_boolean(truncated));
    certs = json_array();
    json_object_set_new(root, "certs", certs);
  } else if (!pem) {
    printf("pool      %s\n", pool);
    printf("stream    %s\n", ids ? hex : "-");
    printf("local     %s\n", ci->local);
    printf("remote    %s\n", ci->remote);
    printf("alpn      %s\n", ci->alpn);
    printf("version   %s\n", ci->version);
    printf("cipher    %s\n", ci->cipher);
    printf("rtt       %s\n", rtt);
    printf("congestion %s\n",
           ci->congestion_control ? ci->congestion_control : "-");
    printf("cwnd      %" PRIu64 " bytes\n", ci->cwnd);
    printf("in flight %" PRIu64 " bytes\n", ci->bytes_in_flight);
    printf("pacing    %" PRIu64 " bytes/s%s\n", ci->pacing_rate_sec,
           ci->pacing_rate_sec ? "" : " (the controller sets none)");
    printf("delivery  %" PRIu64 " bytes/s\n", ci->delivery_rate_sec);
    printf("pacing waits %" PRIu64 "\n", ci->pacing_waits);
    printf("max burst %" PRIu64 " bytes\n", ci->max_burst);
    printf("read-ahead %" PRIu64 " bytes\n", ci->read_ahead);
    printf("peer certificates: %zu%s\n", ci->n_certs,
           truncated     ? " (the chain was longer: only the first shown)"
           : ci->n_certs ? ""
                         : " (clients send none)");
  }
  for (size_t i = 0; i < ci->n_certs; i++) {
    struct cert_text t;
    cert_describe(&ci->certs[i], &t);
    if (json) {
      json_t *o = json_object();
      json_object_set_new(o, "subject", json_string(t.subject));
      json_object_set_new(o, "issuer", json_string(t.issuer));
      json_object_set_new(o, "sha256", json_string(t.sha256));
      json_object_set_new(o, "pem", t.pem ? json_string(t.pem) : json_null());
      json_array_append_new(certs, o);
    } else if (pem) {
      fputs(t.pem ? t.pem : "", stdout);
    } else {
      printf("  [%zu] subject %s\n      issuer  %s\n      sha256  %s\n", i,
             t.subject, t.issuer, t.sha256);
    }
    gnutls_free(t.pem);
  }
  if (json) {
    if (json_dumpf(root, stdout,
                   JSON_INDENT(2) | JSON_PRESERVE_ORDER |
                       JSON_REAL_PRECISION(9)) < 0)
      die("cannot write JSON to standard output");
    fputc('\n', stdout);
    json_decref(root);
  }
  qpool__response__free_unpacked(m, NULL);
  flush_stdout();
  return 0;
}

static const struct command {
  const char *name;
  int (*run)(int, char **);
  const char *summary;
} commands[] = {
    {"status", cmd_status, "a table of the pools"},
    {"stats", cmd_stats, "every counter (--json: as JSON)"},
    {"metrics", cmd_metrics, "Prometheus text exposition format"},
    {"watch", cmd_watch, "live view of the pools"},
    {"flush", cmd_flush, "close every idle stream of POOL"},
    {"reset-errors", cmd_reset_errors, "set POOL's error counter to 0"},
    {"add-error", cmd_add_error, "add 1 to POOL's error counter"},
    {"conn", cmd_conn, "POOL's connection: addresses, TLS, peer certs"},
    {"incoming", cmd_incoming, "take any stream of POOL onto stdin/stdout"},
    {"outgoing", cmd_outgoing, "take stream ID of POOL onto stdin/stdout"},
};

static void main_usage(FILE *out) {
  fprintf(out, "Usage: qpoolctl [--control PATH] COMMAND [ARGS]\n"
               "Controls qpoold through its control socket (--control, or\n"
               "$QPOOL_CONTROL, default " DEFAULT_CONTROL ").\n\n"
               "Commands:\n");
  for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
    fprintf(out, "  %-13s %s\n", commands[i].name, commands[i].summary);
  fprintf(out, "\n'qpoolctl COMMAND --help' describes each; see qpoolctl(8).\n"
               "Exit status: 0 ok, 1 error, 2 usage.\n");
}

int main(int argc, char **argv) {
  static const struct option lo[] = {
      COMMON_LONGOPTS, {"version", no_argument, NULL, 'V'}, {0}};
  signal(SIGPIPE, SIG_IGN);
  control_path = getenv("QPOOL_CONTROL");
  if (!control_path || !*control_path)
    control_path = DEFAULT_CONTROL;
  int c;
  while ((c = getopt_long(argc, argv, "+hc:V", lo, NULL)) != -1) {
    switch (c) {
    case 'h':
      main_usage(stdout);
      return 0;
    case 'c':
      control_path = optarg;
      break;
    case 'V':
      printf("qpoolctl %s\n", QP_VERSION);
      return 0;
    default:
      fprintf(stderr, "Try 'qpoolctl --help'.\n");
      return EXIT_USAGE;
    }
  }
  if (optind >= argc) {
    fprintf(stderr, "qpoolctl: missing command\n");
    main_usage(stderr);
    return EXIT_USAGE;
  }
  const char *name = argv[optind];
  if (strcmp(name, "help") == 0) {
    main_usage(stdout);
    return 0;
  }
  for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
    if (strcmp(name, commands[i].name) != 0)
      continue;
    int cargc = argc - optind;
    char **cargv = argv + optind;
    optind = 0; /* glibc: full reinitialisation for the command's options */
    return commands[i].run(cargc, cargv);
  }
  fprintf(stderr, "qpoolctl: unknown command \"%s\"\nTry 'qpoolctl --help'.\n",
          name);
  return EXIT_USAGE;
}
