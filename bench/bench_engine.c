/* qpool-bench: measures the pool engine over real QUIC on 127.0.0.1 and
 * prints a table with targets and baselines measured in the same run. Each
 * measurement forks a server process and a client process, each with its own
 * libuv loop and one engine pool; they report "key value" lines to this
 * process through a pipe, and this process enforces a hard deadline on every
 * measurement (the children are killed and the table says "timeout"). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <malloc.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "shared/pool_params.h"
#include "control.pb-c.h"
#include "qpool.h"
#include "shared/frame.h"
#include "shared/log.h"
#include "worker/engine.h"

#define NS_PER_US 1000.0
#define NS_PER_MS 1000000.0
#define NS_PER_S 1000000000.0
#define IO_CHUNK (256 * 1024) /* app reads and writes in the bulk tests */
#define UNIX_BUF (1 << 20)    /* the engine's socketpair buffer size */
#define LAT_STALE_NS 1000000  /* pairing: take streams idle >= 1 ms */
#define SETTLE_MS 300         /* let ACKs and frees finish before RSS */

static struct {
  uint64_t bulk_bytes; /* per direction */
  int fill_streams;
  int fill_repeat;
  int bulk_repeat;
  int lat_samples; /* per phase */
  int rtt_samples;
  int hs_samples;
  int verbose;
  const char *only;
  int cc_algo; /* both pools' congestion controller */
} O = {1ull << 30, 10000, 3, 3, 2000, 10000, 50, 0, NULL, QP_CC_DEFAULT};

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* The engine receives every datagram through recvmmsg (worker/udp.c). This
 * definition takes the place of libc's in this executable, so the moment a
 * datagram reached the engine is known: the wake latency is measured from
 * it. */
static uint64_t g_last_rx_ns;
static uint64_t g_rx_calls;

int recvmmsg(int fd, struct mmsghdr *msgs, unsigned int vlen, int flags,
             struct timespec *tmo) {
  long n = syscall(SYS_recvmmsg, fd, msgs, vlen, flags, tmo);
  g_rx_calls++;
  if (n > 0)
    g_last_rx_ns = now_ns();
  return (int)n;
}

/* ---- sample distributions ------------------------------------------------ */

struct dist {
  uint64_t *v;
  size_t n, cap;
};

static void dist_add(struct dist *d, uint64_t x) {
  if (d->n == d->cap) {
    size_t cap = d->cap ? 2 * d->cap : 1024;
    uint64_t *v = realloc(d->v, cap * sizeof(*v));
    if (!v)
      return;
    d->v = v;
    d->cap = cap;
  }
  d->v[d->n++] = x;
}

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

/* The q-quantile of sorted v (nearest rank). */
static uint64_t quantile(const uint64_t *v, size_t n, double q) {
  size_t k = (size_t)ceil(q * (double)n);
  return v[k ? k - 1 : 0];
}

/* ---- child processes: reporting ------------------------------------------ */

struct child {
  int server;  /* 1 in the server process */
  int res_fd;  /* "key value" and "! error" lines to the parent */
  int chan_fd; /* server -> client: "port N", "id X", "done" */
  int done_fd; /* server: EOF once the client process is gone */
  int pair_fd; /* one end of an extra socketpair (baselines), else -1 */
  int deadline_ms;
};

static struct child C;

static void put_all(int fd, const char *s, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, s, n);
    if (w < 0) {
      if (errno == EINTR)
        continue;
      return;
    }
    s += w;
    n -= (size_t)w;
  }
}

static void report(double v, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void report(double v, const char *fmt, ...) {
  char key[96], line[160];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(key, sizeof(key), fmt, ap);
  va_end(ap);
  int n = snprintf(line, sizeof(line), "%s %.17g\n", key, v);
  put_all(C.res_fd, line, (size_t)n);
}

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2)))
__attribute__((noreturn));
static void die(const char *fmt, ...) {
  char msg[300], line[320];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  int n = snprintf(line, sizeof(line), "! %s: %s\n",
                   C.server ? "server" : "client", msg);
  put_all(C.res_fd, line, (size_t)n);
  _exit(1);
}

static void chan_printf(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));
static void chan_printf(const char *fmt, ...) {
  char b[128];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(b, sizeof(b), fmt, ap);
  va_end(ap);
  put_all(C.chan_fd, b, (size_t)n);
}

static void dist_report(const char *key, struct dist *d) {
  report((double)d->n, "%s.n", key);
  if (d->n == 0)
    return;
  qsort(d->v, d->n, sizeof(*d->v), cmp_u64);
  double sum = 0;
  for (size_t i = 0; i < d->n; i++)
    sum += (double)d->v[i];
  report((double)quantile(d->v, d->n, 0.5), "%s.p50", key);
  report((double)quantile(d->v, d->n, 0.99), "%s.p99", key);
  report((double)d->v[d->n - 1], "%s.max", key);
  report(sum / (double)d->n, "%s.mean", key);
}

static long rss_bytes(void) {
  long size = 0, resident = 0;
  FILE *f = fopen("/proc/self/statm", "r");
  if (!f)
    return 0;
  if (fscanf(f, "%ld %ld", &size, &resident) != 2)
    resident = 0;
  fclose(f);
  return resident * sysconf(_SC_PAGESIZE);
}

static long heap_bytes(void) {
  struct mallinfo2 mi = mallinfo2();
  return (long)(mi.uordblks + mi.hblkhd);
}

/* Lines from a non-blocking fd. Returns 1 on EOF or error, 0 when drained. */
struct linebuf {
  char b[256];
  size_t n;
};

static int lines_pump(int fd, struct linebuf *lb, void (*fn)(char *line)) {
  char buf[4096];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n < 0) {
      if (errno == EINTR)
        continue;
      return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : 1;
    }
    if (n == 0)
      return 1;
    for (ssize_t i = 0; i < n; i++) {
      if (buf[i] == '\n') {
        lb->b[lb->n] = 0;
        lb->n = 0;
        fn(lb->b);
      } else if (lb->n + 1 < sizeof(lb->b)) {
        lb->b[lb->n++] = buf[i];
      }
    }
  }
}

/* Blocking: waits (bounded) for "port N" on the side channel. */
static unsigned wait_port(void) {
  char line[64];
  size_t n = 0;
  uint64_t end = now_ns() + 10 * (uint64_t)NS_PER_S;
  for (;;) {
    struct pollfd pfd = {C.chan_fd, POLLIN, 0};
    int ms = (int)(((int64_t)end - (int64_t)now_ns()) / 1000000);
    if (ms <= 0 || poll(&pfd, 1, ms) <= 0)
      die("no port from the server within 10 s");
    char ch;
    ssize_t r = read(C.chan_fd, &ch, 1);
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0)
      die("server process ended before listening");
    if (ch != '\n') {
      if (n + 1 < sizeof(line))
        line[n++] = ch;
      continue;
    }
    line[n] = 0;
    unsigned port;
    if (sscanf(line, "port %u", &port) != 1)
      die("bad side-channel line \"%s\"", line);
    return port;
  }
}

static void write_all_fd(int fd, const void *buf, size_t n) {
  const char *p = buf;
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0)
      die("write: %s", w < 0 ? strerror(errno) : "0 bytes");
    p += w;
    n -= (size_t)w;
  }
}

/* ---- child processes: the engine side ------------------------------------ */

static uv_loop_t L;
static wrk_pool *P;
static uv_timer_t deadline_timer;
static uv_poll_t chan_poll, done_poll;
static struct linebuf chan_lb;
static void (*on_chan_line)(char *line); /* client: a measurement's lines */
static int server_said_done, client_finished;
static const char *phase = "start";

static void on_deadline(uv_timer_t *t) {
  (void)t;
  die("timed out (%s)", phase);
}

static void loop_init(void) {
  if (!O.verbose)
    qp_log_set_level(QP_LOG_WARN);
  qp_log_set_ident(C.server ? "bench-server" : "bench-client");
  uv_loop_init(&L);
  uv_timer_init(&L, &deadline_timer);
  uv_timer_start(&deadline_timer, on_deadline, (uint64_t)C.deadline_ms, 0);
}

static void on_done_readable(uv_poll_t *h, int status, int events) {
  (void)h, (void)status, (void)events;
  char b[64];
  ssize_t n = read(C.done_fd, b, sizeof(b));
  if (n < 0 && (errno == EAGAIN || errno == EINTR))
    return;
  if (n > 0)
    return;
  _exit(0); /* the client process is gone: so is this measurement */
}

/* Server: pool on 127.0.0.1:0, port sent to the client, lives until the
 * client process ends. */
static void server_open(int max_cap) {
  struct wrk_pool_config cfg;
  wrk_pool_config_init(&cfg, WRK_SERVER);
  cfg.set.cc_algo = O.cc_algo;
  struct sockaddr_in *sin = (struct sockaddr_in *)&cfg.listen;
  sin->sin_family = AF_INET;
  sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  sin->sin_port = 0;
  cfg.listen_len = sizeof(*sin);
  cfg.set.max_cap = max_cap;
  char err[256];
  if (wrk_pool_new(&L, &cfg, &P, err, sizeof(err)) < 0)
    die("server pool: %s", err);
  wrk_pool_start(P);
  struct sockaddr_storage ss;
  socklen_t sl;
  if (wrk_pool_local_addr(P, &ss, &sl) < 0)
    die("server pool has no address");
  chan_printf("port %u\n", ntohs(((struct sockaddr_in *)&ss)->sin_port));
  fcntl(C.done_fd, F_SETFL, fcntl(C.done_fd, F_GETFL) | O_NONBLOCK);
  uv_poll_init(&L, &done_poll, C.done_fd);
  uv_poll_start(&done_poll, UV_READABLE, on_done_readable);
}

/* Server: every result is reported; the client may exit when it is done. */
static void server_done(void) {
  chan_printf("done\n");
}

static void client_chan_line(char *line) {
  if (!strcmp(line, "done")) {
    server_said_done = 1;
    if (client_finished)
      _exit(0);
    return;
  }
  if (on_chan_line)
    on_chan_line(line);
}

static void on_chan_readable(uv_poll_t *h, int status, int events) {
  (void)status, (void)events;
  if (lines_pump(C.chan_fd, &chan_lb, client_chan_line)) {
    uv_poll_stop(h);
    if (!server_said_done)
      die("server process ended early");
  }
}

static void client_done(void) {
  client_finished = 1;
  if (server_said_done)
    _exit(0);
}

static void client_config(struct wrk_pool_config *cfg, unsigned port, int cap,
                          uint64_t ivl_ns) {
  wrk_pool_config_init(cfg, WRK_CLIENT);
  cfg->set.cc_algo = O.cc_algo;
  struct sockaddr_in *sin = (struct sockaddr_in *)&cfg->target;
  sin->sin_family = AF_INET;
  sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  sin->sin_port = htons((uint16_t)port);
  cfg->target_len = sizeof(*sin);
  cfg->set.min_cap = cfg->set.max_cap = cap;
  cfg->set.min_ivl_ns = cfg->set.max_ivl_ns = (int64_t)ivl_ns;
  cfg->set.tls_mode = '1';
}

static void client_watch_chan(void) {
  fcntl(C.chan_fd, F_SETFL, fcntl(C.chan_fd, F_GETFL) | O_NONBLOCK);
  uv_poll_init(&L, &chan_poll, C.chan_fd);
  uv_poll_start(&chan_poll, UV_READABLE, on_chan_readable);
}

/* Client: waits for the port, creates (does not start) the pool. */
static void client_open(int cap, uint64_t ivl_ns) {
  unsigned port = wait_port();
  struct wrk_pool_config cfg;
  client_config(&cfg, port, cap, ivl_ns);
  char err[256];
  if (wrk_pool_new(&L, &cfg, &P, err, sizeof(err)) < 0)
    die("client pool: %s", err);
  client_watch_chan();
}

static void run_loop(void) {
  uv_run(&L, UV_RUN_DEFAULT);
  die("event loop ended (%s)", phase);
}

/* ---- 1 + 6: fill rate and memory per idle stream --------------------------
 * Timed runs measure nothing else; the memory run (fill_mem) reads RSS and
 * mallinfo2 (which walks the heap: slow) at the base and after settling. */

static int fill_mem; /* set before the fork */

static struct {
  int have_base, full, n0;
  uint64_t t0, t_full;
  long rss_start, rss0, heap0;
  uv_check_t check;
  uv_timer_t settle;
} F;

static void on_fill_settled(uv_timer_t *t) {
  (void)t;
  const char *s = C.server ? "s" : "c";
  long rss = rss_bytes(), heap = heap_bytes();
  int active = wrk_pool_active(P);
  report((double)active, "fill.%s.active", s);
  report((double)F.n0, "fill.%s.n0", s);
  report((double)(rss - F.rss0), "fill.%s.rss_delta", s);
  report((double)(heap - F.heap0), "fill.%s.heap_delta", s);
  report((double)(rss - F.rss_start), "fill.%s.rss_from_start", s);
  report((double)rss, "fill.%s.rss", s);
  if (C.server)
    server_done();
  else
    client_done();
}

static void on_fill_check(uv_check_t *h) {
  uint64_t t = now_ns();
  if (!F.have_base) {
    struct wrk_pool_stats st;
    wrk_pool_stats(P, &st);
    /* client: right after the handshake, before the first round opens
     * streams (that runs from a timer on the next loop turn); server: the
     * first streams (they come with the client's Finished) */
    if (C.server ? st.streams_created == 0 : !st.connected)
      return;
    F.have_base = 1;
    F.t0 = t;
    F.n0 = wrk_pool_active(P);
    if (fill_mem) {
      F.rss0 = rss_bytes();
      F.heap0 = heap_bytes();
    }
    phase = "filling";
  }
  if (!F.full && wrk_pool_active(P) >= O.fill_streams) {
    F.full = 1;
    F.t_full = t;
    uv_check_stop(h);
    const char *s = C.server ? "s" : "c";
    report((double)F.t0, "fill.%s.t0", s);
    report((double)F.t_full, "fill.%s.tfull", s);
    phase = "settling";
    if (fill_mem) {
      uv_timer_start(&F.settle, on_fill_settled, SETTLE_MS, 0);
    } else if (C.server) {
      server_done();
    } else {
      client_done();
    }
  }
}

static void fill_common(void) {
  uv_check_init(&L, &F.check);
  uv_check_start(&F.check, on_fill_check);
  uv_timer_init(&L, &F.settle);
}

static void fill_server(void) {
  loop_init();
  F.rss_start = rss_bytes();
  server_open(O.fill_streams);
  fill_common();
  phase = "waiting for the connection";
  run_loop();
}

static void fill_client(void) {
  loop_init();
  /* one round of capacity streams, then a 1 s pause */
  client_open(O.fill_streams, 1000000000u);
  F.rss_start = rss_bytes();
  fill_common();
  phase = "handshake";
  wrk_pool_start(P);
  run_loop();
}

/* ---- 2: bulk transfer through both relays ---------------------------------
 * One direction per run (bulk_s2c): the writer app writes bulk_bytes into its
 * stream fd and shuts it down, the reader app reads to EOF; both apps poll
 * their fd from the engine's own loop, as np-peer does. */

static int bulk_s2c; /* set before the fork */

static struct {
  int fd;
  uv_poll_t poll;
  uint64_t done, t_first;
  uint8_t buf[IO_CHUNK];
} B;

static int bulk_writer(void) {
  return C.server == bulk_s2c;
}

static const char *bulk_dir(void) {
  return bulk_s2c ? "s2c" : "c2s";
}

static void bulk_finished(void) {
  uv_poll_stop(&B.poll);
  if (C.server)
    server_done();
  else
    client_done();
}

static void on_bulk_io(uv_poll_t *h, int status, int events) {
  (void)h, (void)events;
  if (status < 0)
    die("bulk poll: %s", uv_strerror(status));
  if (bulk_writer()) {
    for (;;) {
      uint64_t left = O.bulk_bytes - B.done;
      if (left == 0) {
        shutdown(B.fd, SHUT_WR);
        report((double)B.t_first, "bulk.%s.t0", bulk_dir());
        phase = "waiting for the reader";
        bulk_finished();
        return;
      }
      if (B.t_first == 0)
        B.t_first = now_ns();
      ssize_t n = send(B.fd, B.buf, left < IO_CHUNK ? (size_t)left : IO_CHUNK,
                       MSG_NOSIGNAL);
      if (n < 0) {
        if (errno == EAGAIN || errno == EINTR)
          return;
        die("bulk write: %s", strerror(errno));
      }
      B.done += (uint64_t)n;
    }
  }
  for (;;) {
    ssize_t n = recv(B.fd, B.buf, IO_CHUNK, 0);
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR)
        return;
      die("bulk read: %s", strerror(errno));
    }
    if (n == 0)
      break;
    B.done += (uint64_t)n;
  }
  report((double)now_ns(), "bulk.%s.t1", bulk_dir());
  report((double)B.done, "bulk.%s.bytes", bulk_dir());
  bulk_finished();
}

static void on_bulk_stream(wrk_pool *p, int status, uint32_t id, int fd,
                           void *arg) {
  (void)p, (void)id, (void)arg;
  if (status < 0)
    die("%s: %s", C.server ? "IncomingGet" : "OutgoingGet", strerror(-status));
  B.fd = fd;
  memset(B.buf, 0x5a, sizeof(B.buf));
  uv_poll_init(&L, &B.poll, fd); /* makes fd non-blocking */
  phase = bulk_writer() ? "writing" : "reading";
  uv_poll_start(&B.poll, bulk_writer() ? UV_WRITABLE : UV_READABLE, on_bulk_io);
}

static void bulk_server(void) {
  loop_init();
  server_open(4);
  wrk_pool_incoming_get(P, 10000, on_bulk_stream, NULL);
  phase = "waiting for a stream";
  run_loop();
}

static void bulk_client(void) {
  loop_init();
  client_open(1, 1000000000u);
  wrk_pool_outgoing_get(P, WRK_ID_CONTROL, 10000, on_bulk_stream, NULL);
  phase = "waiting for stream 00000000";
  wrk_pool_start(P);
  run_loop();
}

/* ---- 3: wake, take and pairing latency ------------------------------------
 * Phase 1 (wake): the server app waits in IncomingGet on an empty pool; the
 * client manager (capacity 1, interval 1 ms) opens a stream once the last one
 * was taken, so each stream arrives at a waiting IncomingGet: the server's
 * wake is callback time - arrival (recvmmsg) time. The server app sends the
 * ID to the client app over a pipe, which usually beats the ID on the QUIC
 * stream (the engine flushes it after the server's callback): then the
 * client's OutgoingGet waits, and its wake is measured the same way; when
 * the ID was already there it counts as a take.
 * Phase 2 (pairing): the server app takes streams idle >= 1 ms, writes
 * "id t" on the control stream; the client app reads it and calls
 * OutgoingGet: pairing = client callback - server callback; take = client
 * callback - OutgoingGet call (the ID is idle already). */

struct lat_req {
  uint64_t t_reg, t_server;
  int was_idle;
};

static struct {
  int ctl_fd;
  uv_poll_t ctl_poll;
  struct linebuf ctl_lb;
  int n1, n2, reg_active, pending;
  uint64_t t_seen;
  uv_timer_t tick;
  struct dist wake_s, wake_c, take, pair;
  int not_wake_s, ended;
  int *fds;
  int nfds;
} T;

static void lat_keep_fd(int fd) {
  if (!T.fds)
    T.fds = calloc(2 * (size_t)O.lat_samples + 8, sizeof(int));
  T.fds[T.nfds++] = fd; /* the peer app may not hold its end yet */
}

static void on_lat_wake_s(wrk_pool *p, int status, uint32_t id, int fd,
                          void *arg);

static void lat_arm_wake(void) {
  T.reg_active = wrk_pool_active(P);
  if (wrk_pool_incoming_get(P, 5000, on_lat_wake_s, NULL) < 0)
    die("IncomingGet refused");
}

static void on_lat_pair_s(wrk_pool *p, int status, uint32_t id, int fd,
                          void *arg) {
  (void)p, (void)arg;
  uint64_t t = now_ns();
  if (status < 0)
    die("IncomingGet (pairing): %s", strerror(-status));
  lat_keep_fd(fd);
  char line[64];
  int n = snprintf(line, sizeof(line), "%08" PRIx32 " %" PRIu64 "\n", id, t);
  write_all_fd(T.ctl_fd, line, (size_t)n);
  T.pending = 0;
  if (++T.n2 < O.lat_samples)
    return;
  write_all_fd(T.ctl_fd, "end\n", 4);
  uv_timer_stop(&T.tick);
  dist_report("lat.wake_s", &T.wake_s);
  report((double)T.not_wake_s, "lat.wake_s.skipped");
  report((double)g_rx_calls, "lat.s.rx_calls");
  phase = "waiting for the client";
  server_done();
}

static void on_lat_tick(uv_timer_t *t) {
  (void)t;
  if (T.pending)
    return;
  if (wrk_pool_active(P) < 1) {
    T.t_seen = 0;
    return;
  }
  uint64_t now = now_ns();
  if (!T.t_seen) {
    T.t_seen = now;
    return;
  }
  if (now - T.t_seen < LAT_STALE_NS)
    return;
  T.t_seen = 0;
  T.pending = 1;
  if (wrk_pool_incoming_get(P, 0, on_lat_pair_s, NULL) < 0)
    die("IncomingGet refused");
}

static void on_lat_wake_s(wrk_pool *p, int status, uint32_t id, int fd,
                          void *arg) {
  (void)p, (void)arg;
  uint64_t t = now_ns();
  if (status < 0)
    die("IncomingGet (wake %d): %s", T.n1, strerror(-status));
  if (T.reg_active == 0 && g_last_rx_ns && g_last_rx_ns < t)
    dist_add(&T.wake_s, t - g_last_rx_ns);
  else
    T.not_wake_s++;
  lat_keep_fd(fd);
  chan_printf("id %08" PRIx32 "\n", id);
  if (++T.n1 < O.lat_samples) {
    lat_arm_wake();
    return;
  }
  phase = "pairing";
  uv_timer_start(&T.tick, on_lat_tick, 1, 1);
}

static void on_lat_ctl_s(wrk_pool *p, int status, uint32_t id, int fd,
                         void *arg) {
  (void)p, (void)arg;
  if (status < 0)
    die("IncomingGet (control): %s", strerror(-status));
  if (id != WRK_ID_CONTROL)
    die("first stream is %08" PRIx32 ", not 00000000", id);
  T.ctl_fd = fd;
  phase = "wake";
  lat_arm_wake();
}

static void lat_server(void) {
  loop_init();
  server_open(O.fill_streams);
  uv_timer_init(&L, &T.tick);
  wrk_pool_incoming_get(P, 10000, on_lat_ctl_s, NULL);
  phase = "waiting for the control stream";
  run_loop();
}

static int pool_has_idle(uint32_t id) {
  uint32_t ids[64];
  size_t n = wrk_pool_idle_ids(P, ids, 64);
  for (size_t i = 0; i < n; i++)
    if (ids[i] == id)
      return 1;
  return 0;
}

static void on_lat_got_c(wrk_pool *p, int status, uint32_t id, int fd,
                         void *arg) {
  (void)p;
  struct lat_req *rq = arg;
  uint64_t t = now_ns();
  if (status < 0)
    die("OutgoingGet %08" PRIx32 ": %s", id, strerror(-status));
  if (rq->was_idle)
    dist_add(&T.take, t - rq->t_reg);
  else if (g_last_rx_ns > rq->t_reg && g_last_rx_ns < t)
    dist_add(&T.wake_c, t - g_last_rx_ns);
  if (rq->t_server)
    dist_add(&T.pair, t - rq->t_server);
  close(fd);
  free(rq);
}

static void lat_get(uint32_t id, uint64_t t_server) {
  struct lat_req *rq = calloc(1, sizeof(*rq));
  if (!rq)
    die("out of memory");
  rq->t_reg = now_ns();
  rq->t_server = t_server;
  rq->was_idle = pool_has_idle(id);
  if (wrk_pool_outgoing_get(P, id, 5000, on_lat_got_c, rq) < 0)
    die("OutgoingGet refused");
}

static void lat_chan_line(char *line) {
  uint32_t id;
  if (strncmp(line, "id ", 3) || qp_stream_id_parse(line + 3, &id) < 0)
    die("bad side-channel line \"%s\"", line);
  lat_get(id, 0);
}

static void lat_ctl_line(char *line) {
  if (!strcmp(line, "end")) {
    T.ended = 1;
    dist_report("lat.wake_c", &T.wake_c);
    dist_report("lat.take", &T.take);
    dist_report("lat.pair", &T.pair);
    client_done();
    return;
  }
  char hex[9];
  uint64_t ts;
  uint32_t id;
  if (sscanf(line, "%8s %" SCNu64, hex, &ts) != 2 ||
      qp_stream_id_parse(hex, &id))
    die("bad control line \"%s\"", line);
  lat_get(id, ts);
}

static void on_lat_ctl_readable(uv_poll_t *h, int status, int events) {
  (void)status, (void)events;
  if (lines_pump(T.ctl_fd, &T.ctl_lb, lat_ctl_line)) {
    uv_poll_stop(h);
    if (!T.ended)
      die("control stream ended early");
  }
}

static void on_lat_ctl_c(wrk_pool *p, int status, uint32_t id, int fd,
                         void *arg) {
  (void)p, (void)id, (void)arg;
  if (status < 0)
    die("OutgoingGet 00000000: %s", strerror(-status));
  T.ctl_fd = fd;
  uv_poll_init(&L, &T.ctl_poll, fd);
  uv_poll_start(&T.ctl_poll, UV_READABLE, on_lat_ctl_readable);
  phase = "wake and pairing";
}

static void lat_client(void) {
  loop_init();
  client_open(1, 1000000u); /* capacity 1, interval 1 ms */
  on_chan_line = lat_chan_line;
  wrk_pool_outgoing_get(P, WRK_ID_CONTROL, 10000, on_lat_ctl_c, NULL);
  phase = "waiting for stream 00000000";
  wrk_pool_start(P);
  run_loop();
}

/* ---- 4: 1-byte round trips (app side on its own thread, blocking I/O) ------
 */

static struct {
  int fd;
  pthread_t th;
  uv_async_t async;
  struct dist d;
  const char *err;
} R;

static void read_exact(int fd, void *buf, size_t n, const char **err) {
  char *p = buf;
  while (n > 0 && !*err) {
    ssize_t r = read(fd, p, n);
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0) {
      *err = r < 0 ? "read failed" : "unexpected EOF";
      return;
    }
    p += r;
    n -= (size_t)r;
  }
}

/* n warm-up round trips, then n samples; *err set on failure. */
static void ping_loop(int fd, int n, struct dist *d, const char **err) {
  char b = 'x';
  for (int i = 0; i < 200 + n && !*err; i++) {
    uint64_t t0 = now_ns();
    if (write(fd, &b, 1) != 1) {
      *err = "write failed";
      return;
    }
    read_exact(fd, &b, 1, err);
    if (i >= 200)
      dist_add(d, now_ns() - t0);
  }
}

static void echo_loop(int fd) {
  char b[64];
  for (;;) {
    ssize_t n = read(fd, b, sizeof(b));
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return;
    if (write(fd, b, (size_t)n) != n)
      return;
  }
}

static void *echo_thread(void *arg) {
  (void)arg;
  echo_loop(R.fd);
  return NULL;
}

static void *ping_thread(void *arg) {
  (void)arg;
  ping_loop(R.fd, O.rtt_samples, &R.d, &R.err);
  uv_async_send(&R.async);
  return NULL;
}

static void on_rtt_finished(uv_async_t *h) {
  (void)h;
  pthread_join(R.th, NULL);
  if (R.err)
    die("round trips: %s", R.err);
  dist_report("rtt.quic", &R.d);
  close(R.fd);
  client_done();
}

static void on_rtt_stream(wrk_pool *p, int status, uint32_t id, int fd,
                          void *arg) {
  (void)p, (void)id, (void)arg;
  if (status < 0)
    die("%s: %s", C.server ? "IncomingGet" : "OutgoingGet", strerror(-status));
  R.fd = fd; /* blocking, as handed out */
  phase = "round trips";
  if (!C.server)
    uv_async_init(&L, &R.async, on_rtt_finished);
  if (pthread_create(&R.th, NULL, C.server ? echo_thread : ping_thread, NULL))
    die("pthread_create failed");
  if (C.server)
    server_done();
}

static void rtt_server(void) {
  loop_init();
  server_open(4);
  wrk_pool_incoming_get(P, 10000, on_rtt_stream, NULL);
  run_loop();
}

static void rtt_client(void) {
  loop_init();
  client_open(1, 1000000000u);
  wrk_pool_outgoing_get(P, WRK_ID_CONTROL, 10000, on_rtt_stream, NULL);
  wrk_pool_start(P);
  run_loop();
}

/* ---- 5: handshakes (a new client pool per connection) ---------------------
 */

static struct {
  unsigned port;
  int i, total, got_hs;
  uint64_t t0;
  uv_check_t check;
  uv_timer_t next;
  struct dist hs, first;
} H;

static void hs_start(uv_timer_t *t);

static void on_hs_closed(void *arg) {
  (void)arg;
  if (++H.i < H.total) {
    uv_timer_start(&H.next, hs_start, 0, 0);
    return;
  }
  dist_report("hs.handshake", &H.hs);
  dist_report("hs.first", &H.first);
  client_done();
}

static void on_hs_check(uv_check_t *h) {
  struct wrk_pool_stats st;
  uint64_t t = now_ns();
  wrk_pool_stats(P, &st);
  if (!H.got_hs && st.connected) {
    H.got_hs = 1;
    if (H.i >= 3) /* the first three warm up */
      dist_add(&H.hs, t - H.t0);
  }
  if (H.got_hs && wrk_pool_active(P) >= 1) {
    if (H.i >= 3)
      dist_add(&H.first, t - H.t0);
    uv_check_stop(h);
    wrk_pool_close(P, on_hs_closed, NULL);
  }
}

static void hs_start(uv_timer_t *t) {
  (void)t;
  struct wrk_pool_config cfg;
  client_config(&cfg, H.port, 1, 1000000000u);
  char err[256];
  if (wrk_pool_new(&L, &cfg, &P, err, sizeof(err)) < 0)
    die("client pool: %s", err);
  H.got_hs = 0;
  H.t0 = now_ns();
  wrk_pool_start(P);
  uv_check_start(&H.check, on_hs_check);
}

static void hs_server(void) {
  loop_init();
  server_open(16);
  server_done();
  run_loop();
}

static void hs_client(void) {
  loop_init();
  H.port = wait_port();
  client_watch_chan();
  H.total = O.hs_samples + 3;
  uv_check_init(&L, &H.check);
  uv_timer_init(&L, &H.next);
  phase = "handshakes";
  hs_start(NULL);
  run_loop();
}

/* ---- handoff: the same handshakes against a real qpoold -------------------
 * The client side is hs_client; the "server" process only passes the port
 * of the qpoold the parent started, and lives until the client ends. */

static unsigned qpd_port; /* set before the fork */

static void qpd_server(void) {
  chan_printf("port %u\n", qpd_port);
  server_done();
  uint64_t end = now_ns() + (uint64_t)C.deadline_ms * 1000000u;
  for (;;) {
    int ms = (int)(((int64_t)end - (int64_t)now_ns()) / 1000000);
    if (ms <= 0)
      die("timed out (waiting for the client process)");
    struct pollfd pfd = {C.done_fd, POLLIN, 0};
    int rc = poll(&pfd, 1, ms);
    if (rc <= 0)
      continue;
    char b[64];
    ssize_t n = read(C.done_fd, b, sizeof(b));
    if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN))
      _exit(0); /* the client process is gone */
  }
}

/* ---- handoff-bulk: bulk through a real qpoold -----------------------------
 * The "server" process is the server-side application: it passes the port of
 * the qpoold the parent started, takes a stream from qpoold's pool through
 * its control socket (IncomingGet; the fd is one end of a socketpair that the
 * pool's sandboxed worker relays) and sends its ID to the client process,
 * which takes the same stream with OutgoingGet. Then the same transfer as
 * bulk, with the same on_bulk_io on both sides. */

static const char *qpd_ctl; /* set before the fork: the control socket */

static void hb_server(void) {
  loop_init();
  chan_printf("port %u\n", qpd_port);
  fcntl(C.done_fd, F_SETFL, fcntl(C.done_fd, F_GETFL) | O_NONBLOCK);
  uv_poll_init(&L, &done_poll, C.done_fd);
  uv_poll_start(&done_poll, UV_READABLE, on_done_readable);
  int s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  struct sockaddr_un sun = {.sun_family = AF_UNIX};
  snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", qpd_ctl);
  if (s < 0 || connect(s, (struct sockaddr *)&sun, sizeof(sun)) < 0)
    die("control socket %s: %s", qpd_ctl, strerror(errno));
  Qpool__Request rq = QPOOL__REQUEST__INIT;
  rq.tag = 1;
  rq.op = QPOOL__CTL_OP__OP_INCOMING_GET;
  rq.pool = (char *)"s";
  rq.has_timeout_ms = 1;
  rq.timeout_ms = 10000;
  int rc = qp_frame_send(s, QPOOL__CTL_TYPE__CTL_REQUEST, &rq.base, -1);
  if (rc < 0)
    die("control socket: send: %s", strerror(-rc));
  static uint8_t fb[QP_FRAME_HDR + QP_FRAME_MAX];
  uint64_t end = now_ns() + 15 * (uint64_t)NS_PER_S; /* > timeout_ms */
  uint32_t id;
  int fd;
  for (;;) {
    int ms = (int)(((int64_t)end - (int64_t)now_ns()) / 1000000);
    if (ms <= 0)
      die("timed out (no answer to IncomingGet on the control socket)");
    struct pollfd pfd = {s, POLLIN, 0};
    if (poll(&pfd, 1, ms) <= 0)
      continue;
    struct qp_frame f;
    rc = qp_frame_recv(s, fb, sizeof(fb), &f);
    if (rc == -EAGAIN || rc == -EINTR)
      continue;
    if (rc == 0)
      die("qpoold closed the control socket");
    if (rc < 0)
      die("control socket: %s", strerror(-rc));
    Qpool__Response *m = f.type == QPOOL__CTL_TYPE__CTL_RESPONSE
                             ? qpool__response__unpack(NULL, f.len, f.payload)
                             : NULL;
    if (!m || m->tag != 1)
      die("unexpected frame on the control socket (type %u)", f.type);
    if (m->code != 0)
      die("IncomingGet: %s (%s)", strerror(m->code),
          m->message ? m->message : "");
    if (f.fd < 0 || !m->has_stream_id)
      die("IncomingGet: answer without %s", f.fd < 0 ? "an fd" : "an ID");
    id = m->stream_id;
    fd = f.fd;
    qpool__response__free_unpacked(m, NULL);
    break;
  }
  /* s stays open (and is closed by _exit): the app keeps its session */
  chan_printf("id %x\n", id);
  on_bulk_stream(NULL, 0, id, fd, NULL);
  run_loop();
}

static void hb_chan_line(char *line) {
  unsigned id;
  if (sscanf(line, "id %x", &id) != 1)
    die("bad side-channel line \"%s\"", line);
  phase = "waiting for the server app's stream (OutgoingGet)";
  wrk_pool_outgoing_get(P, id, 10000, on_bulk_stream, NULL);
}

static void hb_client(void) {
  loop_init();
  on_chan_line = hb_chan_line;
  client_open(1, 1000000000u);
  phase = "waiting for the stream ID from the server app";
  wrk_pool_start(P);
  run_loop();
}

/* ---- api-latency: libqpool's qp_incoming_get and pairing --------------
 * The application side is libqpool (qpool.h, attached mode), as a user's
 * program would be; al_via_sup = 1 sets QPOOL_NO_SESSION=1 so that takes go
 * through qpoold instead of the worker session (for comparison).
 * al_server: the app of a qpoold server pool that an engine client pool
 * (al_client, min = max 64, 1 ms rounds) keeps filled. pr_server and
 * pr_client: the apps of a qpoold server pool and of a qpoold client pool
 * dialing it, paired through stream 00000000. */

#define AL_REFILL 32 /* idle streams wanted before a timed IncomingGet */

static const char *al_ctl2;         /* set before the fork: client qpoold */
static volatile uint64_t *al_shm_t; /* shared: the server callback time */
static int al_via_sup;              /* takes through qpoold, no session */
static int al_quiet; /* 1: the pool is filled once (1,024), no refill */
#define AL_QUIET_CAP 1024

static qp_pool *app_attach(const char *path, const char *pool) {
  if (al_via_sup)
    setenv("QPOOL_NO_SESSION", "1", 1);
  qp_pool *h = NULL;
  int rc = qp_pool_attach(path, pool, &h);
  if (rc < 0)
    die("qp_pool_attach(%s, %s): %s", path, pool, qp_strerror(rc));
  return h;
}

/* A take: the stream's fd, its ID in *id; dies on an error. */
static int app_get(qp_pool *h, int any, uint32_t want, uint32_t *id) {
  int fd = -1;
  int rc = any ? qp_incoming_get(h, 1000, id, &fd)
               : qp_outgoing_get(h, want, 1000, &fd);
  if (rc < 0)
    die("%s: %s", any ? "qp_incoming_get" : "qp_outgoing_get", qp_strerror(rc));
  if (!any)
    *id = want;
  return fd;
}

/* Waits (<= 10 s) until the pool has >= AL_REFILL idle streams; returns
 * Active (qp_active). */
static int app_wait_refill(qp_pool *h) {
  uint64_t end = now_ns() + 10 * (uint64_t)NS_PER_S;
  for (;;) {
    int active = qp_active(h);
    if (active >= AL_REFILL)
      return active;
    if (now_ns() > end)
      die("timed out (pool not refilled to %d within 10 s: %d idle)", AL_REFILL,
          active);
    usleep(1000);
  }
}

/* Reads one '\n'-ended line (<= 10 s) from a blocking stream fd. */
static void read_line(int fd, char *line, size_t len) {
  size_t n = 0;
  uint64_t end = now_ns() + 10 * (uint64_t)NS_PER_S;
  for (;;) {
    int ms = (int)(((int64_t)end - (int64_t)now_ns()) / 1000000);
    struct pollfd pfd = {fd, POLLIN, 0};
    if (ms <= 0 || poll(&pfd, 1, ms) == 0)
      die("timed out (no line on the control stream within 10 s)");
    char ch;
    ssize_t r = read(fd, &ch, 1);
    if (r < 0 && (errno == EINTR || errno == EAGAIN))
      continue;
    if (r <= 0)
      die("control stream ended (%s)", r < 0 ? strerror(errno) : "EOF");
    if (ch == '\n') {
      line[n] = 0;
      return;
    }
    if (n + 1 < len)
      line[n++] = ch;
  }
}

static void al_server(void) {
  chan_printf("port %u\n", qpd_port);
  qp_pool *h = app_attach(qpd_ctl, "s");
  int known = app_wait_refill(h);
  int n = O.lat_samples;
  if (al_quiet) { /* every sample from the one fill: nothing refills */
    n = n < AL_QUIET_CAP - 24 ? n : AL_QUIET_CAP - 24;
    uint64_t end = now_ns() + 10 * (uint64_t)NS_PER_S;
    while ((known = qp_active(h)) < n && now_ns() < end)
      usleep(1000);
    if (known < n)
      die("quiet pool holds %d idle streams, not %d", known, n);
  }
  struct dist d = {0};
  int waits = 0;
  for (int i = 0; i < n; i++) {
    if (known < AL_REFILL) {
      known = app_wait_refill(h);
      waits++;
    }
    uint32_t id;
    uint64_t t0 = now_ns();
    int fd = app_get(h, 1, 0, &id);
    dist_add(&d, now_ns() - t0);
    close(fd);
    known--;
  }
  dist_report("al.get", &d);
  report(waits, "al.refill_wait");
  qp_close(h);
  server_done();
}

static void al_client(void) {
  loop_init();
  client_finished = 1; /* exits on the server app's "done" */
  if (al_quiet)        /* one round fills it; the next is an hour away */
    client_open(AL_QUIET_CAP, 3600 * (uint64_t)NS_PER_S);
  else
    client_open(64, 1000000u);
  phase = "filling qpoold's server pool";
  wrk_pool_start(P);
  run_loop();
}

static void pr_server(void) {
  qp_pool *h = app_attach(qpd_ctl, "s");
  int known = app_wait_refill(h);
  uint32_t id;
  int ctl = app_get(h, 1, 0, &id);
  if (id != 0)
    die("first IncomingGet returned %08x, not the control stream 00000000", id);
  known--;
  for (int i = 0; i < O.lat_samples / 2; i++) {
    if (known < AL_REFILL)
      known = app_wait_refill(h);
    int fd = app_get(h, 1, 0, &id);
    *al_shm_t = now_ns(); /* the app's IncomingGet "callback" */
    char line[16];
    int n = snprintf(line, sizeof(line), "%08x\n", id);
    write_all_fd(ctl, line, (size_t)n);
    read_line(ctl, line, sizeof(line)); /* the client app took it */
    close(fd);
    known--;
  }
  /* the handle and ctl are closed by _exit */
}

static void pr_client(void) {
  qp_pool *h = app_attach(al_ctl2, "c");
  uint32_t id;
  /* 00000000 opens as soon as the client pool connects */
  int ctl = -1;
  for (int tries = 0; ctl < 0; tries++) {
    int rc = qp_outgoing_get(h, 0, 1000, &ctl);
    if (rc < 0 && (tries >= 10 || (rc != -ETIMEDOUT && rc != -EAGAIN)))
      die("qp_outgoing_get(00000000): %s", qp_strerror(rc));
  }
  struct dist d = {0};
  for (int i = 0; i < O.lat_samples / 2; i++) {
    char line[64];
    read_line(ctl, line, sizeof(line));
    unsigned want;
    if (sscanf(line, "%x", &want) != 1)
      die("bad ID line \"%s\"", line);
    int fd = app_get(h, 0, want, &id);
    dist_add(&d, now_ns() - *al_shm_t);
    write_all_fd(ctl, "k\n", 2);
    close(fd);
  }
  dist_report("al.pair", &d);
}

/* ---- baselines: plain sockets, no engine ----------------------------------
 */

static int tcp_listen_report(void) {
  int s = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in sin = {0};
  sin.sin_family = AF_INET;
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t sl = sizeof(sin);
  if (s < 0 || bind(s, (struct sockaddr *)&sin, sizeof(sin)) < 0 ||
      listen(s, 4) < 0 || getsockname(s, (struct sockaddr *)&sin, &sl) < 0)
    die("TCP listen: %s", strerror(errno));
  chan_printf("port %u\n", ntohs(sin.sin_port));
  struct pollfd pfd = {s, POLLIN, 0};
  if (poll(&pfd, 1, 10000) <= 0)
    die("no TCP connection within 10 s");
  int c = accept(s, NULL, NULL);
  if (c < 0)
    die("accept: %s", strerror(errno));
  close(s);
  int one = 1;
  setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  return c;
}

static int tcp_dial(void) {
  unsigned port = wait_port();
  int s = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in sin = {0};
  sin.sin_family = AF_INET;
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  sin.sin_port = htons((uint16_t)port);
  if (s < 0 || connect(s, (struct sockaddr *)&sin, sizeof(sin)) < 0)
    die("TCP connect: %s", strerror(errno));
  int one = 1;
  setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  return s;
}

static void tcp_rtt_server(void) {
  int c = tcp_listen_report();
  echo_loop(c);
}

static void tcp_rtt_client(void) {
  int s = tcp_dial();
  struct dist d = {0};
  const char *err = NULL;
  ping_loop(s, O.rtt_samples, &d, &err);
  if (err)
    die("TCP round trips: %s", err);
  dist_report("rtt.tcp", &d);
}

/* Reads to EOF, reports "<key>.t1" and "<key>.bytes". */
static void drain_report(int fd, const char *key) {
  static uint8_t buf[IO_CHUNK];
  uint64_t got = 0;
  for (;;) {
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      die("read: %s", strerror(errno));
    if (n == 0)
      break;
    got += (uint64_t)n;
  }
  report((double)now_ns(), "%s.t1", key);
  report((double)got, "%s.bytes", key);
}

/* Writes the bulk size, reports "<key>.t0", ends its direction. */
static void fill_report(int fd, const char *key) {
  static uint8_t buf[IO_CHUNK];
  memset(buf, 0x5a, sizeof(buf));
  uint64_t t0 = now_ns();
  for (uint64_t left = O.bulk_bytes; left > 0;) {
    size_t n = left < IO_CHUNK ? (size_t)left : IO_CHUNK;
    write_all_fd(fd, buf, n);
    left -= n;
  }
  report((double)t0, "%s.t0", key);
  shutdown(fd, SHUT_WR);
}

static void tcp_bulk_server(void) {
  int c = tcp_listen_report();
  drain_report(c, "bulk.tcp");
}

static void tcp_bulk_client(void) {
  int s = tcp_dial();
  fill_report(s, "bulk.tcp");
  /* wait for the reader so the data is not cut short by our exit */
  char b;
  while (read(s, &b, 1) > 0)
    ;
}

static void unix_bulk_server(void) {
  chan_printf("port 0\n");
  drain_report(C.pair_fd, "bulk.unix");
}

static void unix_bulk_client(void) {
  wait_port();
  fill_report(C.pair_fd, "bulk.unix");
  char b;
  while (read(C.pair_fd, &b, 1) > 0)
    ;
}

/* ---- the parent: running pairs of processes under a deadline --------------
 */

#define MAXKV 96

struct res {
  int n;
  char key[MAXKV][48];
  double val[MAXKV];
  char err[400];
  int timeout;
  double cpu[2];    /* seconds of CPU: server, client (all threads) */
  double minflt[2]; /* minor page faults: server, client */
};

static double rget(const struct res *r, const char *key) {
  for (int i = 0; i < r->n; i++)
    if (!strcmp(r->key[i], key))
      return r->val[i];
  return NAN;
}

static void res_line(struct res *r, char *line) {
  if (line[0] == '!') {
    size_t l = strlen(r->err);
    if (l + 3 < sizeof(r->err))
      snprintf(r->err + l, sizeof(r->err) - l, "%s%s", l ? "; " : "", line + 2);
    if (strstr(line, "timed out"))
      r->timeout = 1;
    return;
  }
  if (r->n < MAXKV &&
      sscanf(line, "%47s %lf", r->key[r->n], &r->val[r->n]) == 2)
    r->n++;
}

typedef void (*side_fn)(void);

static pid_t spawn(int server, side_fn fn, int fds[3][2], int pair[2],
                   int deadline_ms) {
  fflush(stdout);
  fflush(stderr);
  pid_t pid = fork();
  if (pid != 0)
    return pid;
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  signal(SIGPIPE, SIG_IGN);
  C.server = server;
  C.res_fd = fds[0][1];
  C.chan_fd = server ? fds[1][1] : fds[1][0];
  C.done_fd = server ? fds[2][0] : fds[2][1];
  C.pair_fd = pair[0] < 0 ? -1 : pair[server ? 0 : 1];
  C.deadline_ms = deadline_ms;
  close(fds[0][0]);
  close(server ? fds[1][0] : fds[1][1]);
  close(server ? fds[2][1] : fds[2][0]);
  if (pair[0] >= 0)
    close(pair[server ? 1 : 0]);
  fn();
  _exit(0);
}

static double tv_s(struct timeval tv) {
  return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

static void kill_wait(pid_t pid, int *status, double *cpu, double *flt) {
  struct rusage ru;
  kill(pid, SIGKILL);
  if (wait4(pid, status, 0, &ru) == pid) {
    *cpu = tv_s(ru.ru_utime) + tv_s(ru.ru_stime);
    *flt = (double)ru.ru_minflt;
  }
}

/* Runs server and client in two processes; collects their lines into r.
 * Never takes longer than deadline_s (+ a 3 s grace for exits). */
static void run_pair(side_fn server, side_fn client, int deadline_s,
                     int with_socketpair, struct res *r) {
  memset(r, 0, sizeof(*r));
  int fds[3][2], pair[2] = {-1, -1};
  if (pipe(fds[0]) < 0 || pipe(fds[1]) < 0 || pipe(fds[2]) < 0) {
    snprintf(r->err, sizeof(r->err), "pipe: %s", strerror(errno));
    return;
  }
  if (with_socketpair) {
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, pair) < 0) {
      snprintf(r->err, sizeof(r->err), "socketpair: %s", strerror(errno));
      return;
    }
    int sz = UNIX_BUF;
    for (int i = 0; i < 2; i++) {
      setsockopt(pair[i], SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
      setsockopt(pair[i], SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
    }
  }
  int child_ms = deadline_s * 1000 - 1500; /* report before being killed */
  pid_t ps = spawn(1, server, fds, pair, child_ms);
  pid_t pc = spawn(0, client, fds, pair, child_ms);
  for (int i = 0; i < 2; i++) {
    close(fds[1][i]);
    close(fds[2][i]);
    if (pair[i] >= 0)
      close(pair[i]);
  }
  close(fds[0][1]);

  uint64_t end = now_ns() + (uint64_t)deadline_s * 1000000000u;
  struct linebuf lb = {{0}, 0};
  int fd = fds[0][0];
  for (;;) {
    int64_t left = (int64_t)end - (int64_t)now_ns();
    if (left <= 0) {
      r->timeout = 1;
      break;
    }
    struct pollfd pfd = {fd, POLLIN, 0};
    int rc = poll(&pfd, 1, (int)(left / 1000000) + 1);
    if (rc < 0 && errno == EINTR)
      continue;
    if (rc == 0)
      continue;
    char buf[4096];
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      break; /* both children closed their end: they exited */
    for (ssize_t i = 0; i < n; i++) {
      if (buf[i] == '\n') {
        lb.b[lb.n] = 0;
        lb.n = 0;
        res_line(r, lb.b);
      } else if (lb.n + 1 < sizeof(lb.b)) {
        lb.b[lb.n++] = buf[i];
      }
    }
  }
  close(fd);
  pid_t pids[2] = {ps, pc};
  int st[2] = {0, 0}, done[2] = {0, 0};
  uint64_t grace = now_ns() + 3000000000u;
  while ((!done[0] || !done[1]) && !r->timeout && now_ns() < grace) {
    for (int i = 0; i < 2; i++) {
      struct rusage ru;
      if (!done[i] && wait4(pids[i], &st[i], WNOHANG, &ru) == pids[i]) {
        done[i] = 1;
        r->cpu[i] = tv_s(ru.ru_utime) + tv_s(ru.ru_stime);
        r->minflt[i] = (double)ru.ru_minflt;
      }
    }
    if (!done[0] || !done[1])
      usleep(2000);
  }
  for (int i = 0; i < 2; i++) {
    if (done[i])
      continue;
    kill_wait(pids[i], &st[i], &r->cpu[i], &r->minflt[i]);
    if (!r->timeout && !r->err[0])
      snprintf(r->err, sizeof(r->err), "%s process did not exit",
               i ? "client" : "server");
  }
  for (int i = 0; i < 2 && !r->timeout; i++) {
    if (done[i] && WIFSIGNALED(st[i]) && !r->err[0])
      snprintf(r->err, sizeof(r->err), "%s process died (signal %d)",
               i ? "client" : "server", WTERMSIG(st[i]));
  }
}

/* ---- the table ------------------------------------------------------------
 */

struct row {
  char metric[44], value[24], unit[12], target[20], verdict[8], notes[400];
};

static struct row rows[64];
static int nrows;
static int failures;

static void row_add(const char *metric, const char *value, const char *unit,
                    const char *target, const char *verdict, const char *fmt,
                    ...) __attribute__((format(printf, 6, 7)));
static void row_add(const char *metric, const char *value, const char *unit,
                    const char *target, const char *verdict, const char *fmt,
                    ...) {
  if (nrows == (int)(sizeof(rows) / sizeof(rows[0])))
    return;
  struct row *w = &rows[nrows++];
  snprintf(w->metric, sizeof(w->metric), "%s", metric);
  snprintf(w->value, sizeof(w->value), "%s", value);
  snprintf(w->unit, sizeof(w->unit), "%s", unit);
  snprintf(w->target, sizeof(w->target), "%s", target);
  snprintf(w->verdict, sizeof(w->verdict), "%s", verdict);
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(w->notes, sizeof(w->notes), fmt, ap);
  va_end(ap);
}

/* v with `dec` decimals and thousands separators; "n/a" for NaN. */
static const char *num(double v, int dec) {
  static char ring[16][32];
  static int k;
  char *out = ring[k++ % 16];
  if (isnan(v) || isinf(v)) {
    snprintf(out, 32, "n/a");
    return out;
  }
  char raw[32];
  snprintf(raw, sizeof(raw), "%.*f", dec, fabs(v));
  char *dot = strchr(raw, '.');
  size_t ilen = dot ? (size_t)(dot - raw) : strlen(raw);
  size_t o = 0;
  if (v < 0)
    out[o++] = '-';
  for (size_t i = 0; i < ilen; i++) {
    if (i && (ilen - i) % 3 == 0)
      out[o++] = ',';
    out[o++] = raw[i];
  }
  snprintf(out + o, 32 - o, "%s", dot ? dot : "");
  return out;
}

static const char *verdict(double v, double target, int at_least) {
  if (isnan(v))
    return "n/a";
  return (at_least ? v >= target : v <= target) ? "PASS" : "MISS";
}

/* The rows of a measurement that did not produce its numbers. */
static void rows_failed(const char *metric, const struct res *r) {
  failures++;
  row_add(metric, r->timeout ? "timeout" : "error", "", "",
          r->timeout ? "TIMEOUT" : "ERROR", "%s",
          r->err[0] ? r->err : "no result");
}

static int wanted(const char *name) {
  if (!O.only)
    return 1;
  size_t n = strlen(name);
  for (const char *p = O.only; (p = strstr(p, name)); p += n)
    if ((p == O.only || p[-1] == ',') && (p[n] == 0 || p[n] == ','))
      return 1;
  return 0;
}

static void progress(const char *what) {
  fprintf(stderr, "qpool-bench: %s\n", what);
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static double median(double *v, int n) {
  if (n == 0)
    return NAN;
  qsort(v, (size_t)n, sizeof(*v), cmp_double);
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void bench_fill(void) {
  double rate[16] = {0}, srv_ms[16], cpu_s[16], cpu_c[16], flt_s[16], flt_c[16];
  int k = 0;
  struct res r;
  int N = O.fill_streams;
  const char *m1 = "streams filled / s";
  const char *m2 = "memory / idle stream, server";
  const char *m3 = "memory / idle stream, client";
  for (int i = 0; i < O.fill_repeat && i < 16; i++) {
    char what[64];
    snprintf(what, sizeof(what), "fill %d streams (run %d of %d)", N, i + 1,
             O.fill_repeat);
    progress(what);
    fill_mem = 0;
    run_pair(fill_server, fill_client, 20, 0, &r);
    double t0 = rget(&r, "fill.c.t0"), t1 = rget(&r, "fill.c.tfull");
    double sfull = rget(&r, "fill.s.tfull");
    if (r.timeout || r.err[0] || isnan(t1) || isnan(sfull)) {
      rows_failed(m1, &r);
      k = 0;
      break;
    }
    rate[k] = N / ((t1 - t0) / NS_PER_S);
    srv_ms[k] = (sfull - t0) / NS_PER_MS;
    cpu_s[k] = r.cpu[0] * 1000;
    cpu_c[k] = r.cpu[1] * 1000;
    flt_s[k] = r.minflt[0];
    flt_c[k] = r.minflt[1];
    k++;
  }
  if (k > 0) {
    double lo = rate[0], hi = rate[0];
    for (int i = 1; i < k; i++) {
      lo = rate[i] < lo ? rate[i] : lo;
      hi = rate[i] > hi ? rate[i] : hi;
    }
    double rt = median(rate, k);
    row_add(m1, num(rt, 0), "streams/s", ">= 200,000", verdict(rt, 200000, 1),
            "%s streams in %s ms (handshake done -> client Active()==%d), "
            "server full at +%s ms; median of %d, range %s..%s; process CPU "
            "server %s ms, client %s ms; minor faults server %s, client %s",
            num(N, 0), num(N / rt * 1000, 1), N, num(median(srv_ms, k), 1), k,
            num(lo, 0), num(hi, 0), num(median(cpu_s, k), 0),
            num(median(cpu_c, k), 0), num(median(flt_s, k), 0),
            num(median(flt_c, k), 0));
  }

  progress("fill once more, measuring memory");
  fill_mem = 1;
  run_pair(fill_server, fill_client, 20, 0, &r);
  fill_mem = 0;
  double rs = rget(&r, "fill.s.rss_delta"), hs = rget(&r, "fill.s.heap_delta");
  double rc = rget(&r, "fill.c.rss_delta"), hc = rget(&r, "fill.c.heap_delta");
  double n0 = rget(&r, "fill.s.n0");
  if (r.timeout || r.err[0] || isnan(rs) || isnan(rc)) {
    rows_failed(m2, &r);
    rows_failed(m3, &r);
    return;
  }
  double ns = N - n0 >= 1 ? N - n0 : 1;
  double ms = rs / ns, mc = rc / N;
  row_add(m2, num(ms, 0), "B (RSS)", "<= 2,048", verdict(ms, 2048, 0),
          "heap in use %s B/stream; from the first batch of streams (%s "
          "in) to %s idle, after %d ms settling",
          num(hs / ns, 0), num(n0, 0), num(N, 0), SETTLE_MS);
  row_add(m3, num(mc, 0), "B (RSS)", "<= 2,048", verdict(mc, 2048, 0),
          "heap in use %s B/stream; from right after the handshake to %s "
          "idle, after %d ms settling",
          num(hc / N, 0), num(N, 0), SETTLE_MS);
}

static double mbs(const struct res *r, const char *dir) {
  char k0[48], k1[48], kb[48];
  snprintf(k0, sizeof(k0), "bulk.%s.t0", dir);
  snprintf(k1, sizeof(k1), "bulk.%s.t1", dir);
  snprintf(kb, sizeof(kb), "bulk.%s.bytes", dir);
  double t0 = rget(r, k0), t1 = rget(r, k1), b = rget(r, kb);
  if (isnan(t0) || isnan(t1) || isnan(b))
    return NAN;
  if (b != (double)O.bulk_bytes)
    return NAN;
  return b / ((t1 - t0) / NS_PER_S) / 1e6;
}

/* Socketpair copies, one right before each QUIC bulk run: this VM's speed
 * drifts, so each QUIC run is also compared with its own ceiling. */
static double unix_runs[64];
static int n_unix;
static struct res unix_last;

static double unix_copy(void) {
  run_pair(unix_bulk_server, unix_bulk_client, 15, 1, &unix_last);
  double v = mbs(&unix_last, "unix");
  if (!isnan(v) && n_unix < 64)
    unix_runs[n_unix++] = v;
  return v;
}

static void range_of(const double *v, int n, double *lo, double *hi) {
  *lo = *hi = n ? v[0] : NAN;
  for (int i = 1; i < n; i++) {
    *lo = v[i] < *lo ? v[i] : *lo;
    *hi = v[i] > *hi ? v[i] : *hi;
  }
}

/* The bulk rows' medians (c2s, s2c), NAN when not measured in this run. */
static double bulk_med[2] = {NAN, NAN};

static void bench_bulk(void) {
  const char *names[2] = {"bulk client->server", "bulk server->client"};
  for (int i = 0; i < 2; i++) {
    double v[16], ratio[16], cw[16], cr[16], fw[16], fr[16];
    int k = 0, kr = 0;
    struct res r;
    const char *dir = i ? "s2c" : "c2s";
    for (int j = 0; j < O.bulk_repeat && j < 16; j++) {
      char what[96];
      snprintf(what, sizeof(what), "%s, %s MiB over one stream (run %d of %d)",
               names[i], num((double)(O.bulk_bytes >> 20), 0), j + 1,
               O.bulk_repeat);
      progress(what);
      double u = unix_copy();
      bulk_s2c = i;
      run_pair(bulk_server, bulk_client, 30, 0, &r);
      v[k] = mbs(&r, dir);
      if (isnan(v[k])) {
        rows_failed(names[i], &r);
        k = 0;
        break;
      }
      if (!isnan(u))
        ratio[kr++] = v[k] / u;
      char k0[32], k1[32];
      snprintf(k0, sizeof(k0), "bulk.%s.t0", dir);
      snprintf(k1, sizeof(k1), "bulk.%s.t1", dir);
      double secs = (rget(&r, k1) - rget(&r, k0)) / NS_PER_S;
      int w = i ? 0 : 1; /* the writer's index: server 0, client 1 */
      cw[k] = 100 * r.cpu[w] / secs;
      cr[k] = 100 * r.cpu[1 - w] / secs;
      fw[k] = r.minflt[w];
      fr[k] = r.minflt[1 - w];
      k++;
    }
    if (k == 0)
      continue;
    double lo, hi;
    range_of(v, k, &lo, &hi);
    double med = median(v, k);
    bulk_med[i] = med;
    char ceil_note[80] = "";
    if (kr)
      snprintf(ceil_note, sizeof(ceil_note),
               "%s%% of a socketpair copy run just before; ",
               num(100 * median(ratio, kr), 0));
    row_add(names[i], num(med, 0), "MB/s", ">= 1,000", verdict(med, 1000, 1),
            "%smedian of %d x %s MiB, range %s..%s; CPU writer %s%%, reader "
            "%s%% of a core; minor faults writer %s, reader %s",
            ceil_note, k, num((double)(O.bulk_bytes >> 20), 0), num(lo, 0),
            num(hi, 0), num(median(cw, k), 0), num(median(cr, k), 0),
            num(median(fw, k), 0), num(median(fr, k), 0));
  }
}

/* First-touch cost of anonymous 4 KiB pages in this process: on some VMs it
 * is large and then bounds whatever allocates fresh memory. */
static void bench_page_faults(void) {
  size_t len = 64u << 20, pg = (size_t)sysconf(_SC_PAGESIZE);
  double v[3];
  int k = 0;
  for (int i = 0; i < 3; i++) {
    char *m = mmap(NULL, len, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED)
      break;
    madvise(m, len, MADV_NOHUGEPAGE);
    uint64_t t0 = now_ns();
    for (size_t o = 0; o < len; o += pg)
      m[o] = 1;
    v[k++] = (double)(now_ns() - t0) / NS_PER_US / (double)(len / pg);
    munmap(m, len);
  }
  if (k == 0)
    return;
  row_add("baseline: page fault, first touch", num(median(v, k), 2), "us", "-",
          "-",
          "one 4 KiB anonymous page (bare metal: ~0.1-0.3 us); the fill "
          "and the bulk tests fault in fresh heap");
}

static void bench_baselines_bulk(void) {
  struct res r;
  if (n_unix == 0) {
    for (int j = 0; j < O.bulk_repeat && j < 16; j++) {
      progress("baseline: socketpair copy");
      unix_copy();
    }
  }
  if (n_unix == 0) {
    rows_failed("baseline: socketpair copy", &unix_last);
  } else {
    double lo, hi;
    range_of(unix_runs, n_unix, &lo, &hi);
    row_add("baseline: socketpair copy", num(median(unix_runs, n_unix), 0),
            "MB/s", "(ceiling)", "-",
            "one AF_UNIX hop, 256 KiB writes, 1 MiB buffers (as the relay); "
            "median of %d, range %s..%s",
            n_unix, num(lo, 0), num(hi, 0));
  }
  double t[16];
  int k = 0;
  for (int j = 0; j < O.bulk_repeat && j < 16; j++) {
    progress("baseline: TCP loopback copy");
    run_pair(tcp_bulk_server, tcp_bulk_client, 15, 0, &r);
    t[k] = mbs(&r, "tcp");
    if (isnan(t[k])) {
      rows_failed("baseline: TCP loopback copy", &r);
      return;
    }
    k++;
  }
  double lo, hi;
  range_of(t, k, &lo, &hi);
  row_add("baseline: TCP loopback copy", num(median(t, k), 0), "MB/s", "-", "-",
          "one TCP connection on 127.0.0.1, 256 KiB writes; median of %d, "
          "range %s..%s",
          k, num(lo, 0), num(hi, 0));
}

static void lat_rows(const struct res *r, const char *key, const char *metric,
                     int with_target, const char *notes) {
  char k[64], m[64];
  snprintf(k, sizeof(k), "%s.n", key);
  double n = rget(r, k);
  snprintf(k, sizeof(k), "%s.p50", key);
  double p50 = rget(r, k) / NS_PER_US;
  snprintf(k, sizeof(k), "%s.p99", key);
  double p99 = rget(r, k) / NS_PER_US;
  snprintf(k, sizeof(k), "%s.max", key);
  double mx = rget(r, k) / NS_PER_US;
  snprintf(m, sizeof(m), "%s p50", metric);
  row_add(m, num(p50, 1), "us", "-", "-", "%s samples; %s", num(n, 0), notes);
  snprintf(m, sizeof(m), "%s p99", metric);
  row_add(m, num(p99, 1), "us", with_target ? "<= 100" : "-",
          with_target ? verdict(p99, 100, 0) : "-", "max %s us", num(mx, 1));
}

static void bench_lat(void) {
  struct res r;
  char what[96];
  snprintf(what, sizeof(what),
           "wake / take / pairing latency (%d + %d samples)", O.lat_samples,
           O.lat_samples);
  progress(what);
  run_pair(lat_server, lat_client, 40, 0, &r);
  if (r.timeout || r.err[0] || isnan(rget(&r, "lat.pair.n"))) {
    rows_failed("wake / take / pairing latency", &r);
    return;
  }
  if (rget(&r, "lat.s.rx_calls") == 0) {
    row_add("wake latency", "n/a", "", "", "ERROR",
            "recvmmsg was not interposed: arrival times unknown");
    failures++;
  } else {
    char note[160];
    snprintf(note, sizeof(note),
             "IncomingGet waiting on an empty pool; datagram read -> callback"
             " (%s not waiting, skipped)",
             num(rget(&r, "lat.wake_s.skipped"), 0));
    lat_rows(&r, "lat.wake_s", "wake, IncomingGet (server)", 1, note);
    lat_rows(&r, "lat.wake_c", "wake, OutgoingGet (client)", 1,
             "OutgoingGet registered before the ID arrived; datagram read -> "
             "callback");
  }
  lat_rows(&r, "lat.take", "take, OutgoingGet of idle ID", 0,
           "call -> callback (socketpair made, next loop turn)");
  lat_rows(&r, "lat.pair", "pairing via control stream", 0,
           "server IncomingGet callback -> ID line on stream 00000000 -> "
           "client OutgoingGet callback");
}

static void bench_rtt(void) {
  struct res q, t;
  char what[96];
  snprintf(what, sizeof(what), "1-byte round trips (%d) over QUIC and TCP",
           O.rtt_samples);
  progress(what);
  run_pair(rtt_server, rtt_client, 20, 0, &q);
  run_pair(tcp_rtt_server, tcp_rtt_client, 15, 0, &t);
  double tp50 = rget(&t, "rtt.tcp.p50") / NS_PER_US;
  double tp99 = rget(&t, "rtt.tcp.p99") / NS_PER_US;
  double qp50 = rget(&q, "rtt.quic.p50") / NS_PER_US;
  double qp99 = rget(&q, "rtt.quic.p99") / NS_PER_US;
  if (isnan(qp50)) {
    rows_failed("1-byte RTT over a pooled stream", &q);
  } else {
    char tgt[24] = "-";
    const char *vd = "-";
    if (!isnan(tp50)) {
      snprintf(tgt, sizeof(tgt), "<= 4x TCP");
      vd = verdict(qp50, 4 * tp50, 0);
    }
    row_add("1-byte RTT p50", num(qp50, 1), "us", tgt, vd,
            "%s x TCP; app threads with blocking I/O on both stream fds",
            num(qp50 / tp50, 1));
    row_add("1-byte RTT p99", num(qp99, 1), "us", "-", "-",
            "%s x TCP p99; max %s us", num(qp99 / tp99, 1),
            num(rget(&q, "rtt.quic.max") / NS_PER_US, 1));
  }
  if (isnan(tp50)) {
    rows_failed("baseline: TCP RTT", &t);
  } else {
    row_add("baseline: TCP RTT p50", num(tp50, 1), "us", "-", "-",
            "127.0.0.1, TCP_NODELAY, blocking I/O, same count");
    row_add("baseline: TCP RTT p99", num(tp99, 1), "us", "-", "-", "%s", "");
  }
}

static void bench_hs(void) {
  struct res r;
  char what[96];
  snprintf(what, sizeof(what), "handshakes (%d new client pools)",
           O.hs_samples);
  progress(what);
  run_pair(hs_server, hs_client, 30, 0, &r);
  double h50 = rget(&r, "hs.handshake.p50") / NS_PER_MS;
  if (r.timeout || r.err[0] || isnan(h50)) {
    rows_failed("handshake", &r);
    return;
  }
  row_add("handshake p50", num(h50, 2), "ms", "-", "-",
          "%s samples; pool start -> handshake done (dial, TLS 1.3)",
          num(rget(&r, "hs.handshake.n"), 0));
  row_add("handshake p99", num(rget(&r, "hs.handshake.p99") / NS_PER_MS, 2),
          "ms", "-", "-", "notes file: about 2.3 ms on this hardware");
  row_add("first stream ID p50", num(rget(&r, "hs.first.p50") / NS_PER_MS, 2),
          "ms", "-", "-", "pool start -> first stream idle (+1 RTT setup)");
  row_add("first stream ID p99", num(rget(&r, "hs.first.p99") / NS_PER_MS, 2),
          "ms", "-", "-", "%s", "");
}

/* A qpoold server pool, started by this process for the handoff rows. */
struct qpd {
  pid_t pid;
  unsigned port;
  char dir[64];    /* /tmp/qpool-bench.XXXXXX */
  char root[80];   /* dir/empty: the workers' chroot */
  char sock[80];   /* dir/ctl.sock: the control socket */
  char log[80];    /* dir/qpoold.log: its stdout and stderr */
  char bin[4096];  /* qpoold next to this executable */
  char wbin[4096]; /* qpool-worker, which qpoold runs from there */
  /* set before qpd_start; zero: a server pool "s" with --max-cap 16 */
  int max_cap;
  unsigned target; /* nonzero: a client pool "c" dialing 127.0.0.1:target,
                      --min-cap = --max-cap, 1 ms rounds */
};

/* Finds qpoold and qpool-worker next to /proc/self/exe; 0 when both exist. */
static int qpd_find(struct qpd *q) {
  char self[4000];
  ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
  if (n <= 0)
    return -1;
  self[n] = 0;
  char *slash = strrchr(self, '/');
  if (slash)
    *slash = 0;
  snprintf(q->bin, sizeof(q->bin), "%s/qpoold", self);
  snprintf(q->wbin, sizeof(q->wbin), "%s/qpool-worker", self);
  return access(q->bin, X_OK) == 0 && access(q->wbin, X_OK) == 0 ? 0 : -1;
}

/* A UDP port on 127.0.0.1 that was free a moment ago. */
static unsigned free_udp_port(void) {
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  if (fd < 0)
    return 0;
  struct sockaddr_in sin = {.sin_family = AF_INET};
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t sl = sizeof(sin);
  unsigned port = 0;
  if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0 &&
      getsockname(fd, (struct sockaddr *)&sin, &sl) == 0)
    port = ntohs(sin.sin_port);
  close(fd);
  return port;
}

static int file_has(const char *path, const char *needle) {
  char buf[8192];
  FILE *f = fopen(path, "r");
  if (!f)
    return 0;
  size_t n = fread(buf, 1, sizeof(buf) - 1, f);
  fclose(f);
  buf[n] = 0;
  return strstr(buf, needle) != NULL;
}

/* The last line of the log, for error notes. */
static void log_tail(const char *path, char *out, size_t len) {
  char buf[8192];
  out[0] = 0;
  FILE *f = fopen(path, "r");
  if (!f)
    return;
  size_t n = fread(buf, 1, sizeof(buf) - 1, f);
  fclose(f);
  while (n > 0 && buf[n - 1] == '\n')
    n--;
  buf[n] = 0;
  char *l = strrchr(buf, '\n');
  const char *src = l ? l + 1 : buf;
  size_t m = strlen(src) < len ? strlen(src) : len - 1;
  memcpy(out, src, m);
  out[m] = 0;
}

/* Stops qpoold (SIGTERM, bounded wait, then SIGKILL) and removes its dir. */
static void qpd_stop(struct qpd *q) {
  if (q->pid > 0) {
    kill(q->pid, SIGTERM);
    uint64_t end = now_ns() + 10 * (uint64_t)NS_PER_S; /* it kills at 8 s */
    int st;
    while (waitpid(q->pid, &st, WNOHANG) == 0) {
      if (now_ns() > end) {
        kill(-q->pid, SIGKILL); /* its process group: workers too */
        waitpid(q->pid, &st, 0);
        break;
      }
      usleep(10000);
    }
    q->pid = 0;
  }
  unlink(q->sock);
  unlink(q->log);
  rmdir(q->root);
  rmdir(q->dir);
}

/* Starts `qpoold server` on a free port and waits (<= 10 s) until its worker
 * is in the sandbox, serving. 0 on success, else err says why. */
static int qpd_start(struct qpd *q, char *err, size_t len) {
  snprintf(q->dir, sizeof(q->dir), "/tmp/qpool-bench.XXXXXX");
  if (!mkdtemp(q->dir)) {
    snprintf(err, len, "mkdtemp: %s", strerror(errno));
    q->dir[0] = 0;
    return -1;
  }
  snprintf(q->root, sizeof(q->root), "%s/empty", q->dir);
  snprintf(q->sock, sizeof(q->sock), "%s/ctl.sock", q->dir);
  snprintf(q->log, sizeof(q->log), "%s/qpoold.log", q->dir);
  if (mkdir(q->root, 0755) < 0) {
    snprintf(err, len, "mkdir %s: %s", q->root, strerror(errno));
    qpd_stop(q);
    return -1;
  }
  q->port = q->target ? q->target : free_udp_port();
  char listen[32], cap[16] = "16";
  snprintf(listen, sizeof(listen), "127.0.0.1:%u", q->port);
  if (q->max_cap > 0)
    snprintf(cap, sizeof(cap), "%d", q->max_cap);
  fflush(stdout);
  fflush(stderr);
  q->pid = fork();
  if (q->pid < 0) {
    snprintf(err, len, "fork: %s", strerror(errno));
    q->pid = 0;
    qpd_stop(q);
    return -1;
  }
  if (q->pid == 0) {
    setpgid(0, 0);
    prctl(PR_SET_PDEATHSIG, SIGKILL); /* kept across exec: no orphans */
    int lf = open(q->log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int nf = open("/dev/null", O_RDONLY);
    if (lf < 0 || nf < 0)
      _exit(127);
    dup2(nf, 0);
    dup2(lf, 1);
    dup2(lf, 2);
    for (int fd = 3; fd < 1024; fd++)
      close(fd);
    signal(SIGPIPE, SIG_DFL);
    char *argv[] = {q->bin,        "server", "--name",       "s",
                    "--listen",    listen,   "--max-cap",    cap,
                    "--chroot",    q->root,  "--control",    q->sock,
                    "--log-level", "info",   "--foreground", NULL};
    char *cargv[] = {q->bin,        "client", "--name",         "c",
                     "--target",    listen,   "--min-cap",      cap,
                     "--max-cap",   cap,      "--min-interval", "1ms",
                     "--chroot",    q->root,  "--control",      q->sock,
                     "--log-level", "info",   "--foreground",   NULL};
    execv(q->bin, q->target ? cargv : argv);
    fprintf(stderr, "exec %s: %s\n", q->bin, strerror(errno));
    _exit(127);
  }
  setpgid(q->pid, q->pid);
  uint64_t end = now_ns() + 10 * (uint64_t)NS_PER_S;
  for (;;) {
    if (file_has(q->log, "serving"))
      return 0;
    int st;
    char tail[200];
    if (waitpid(q->pid, &st, WNOHANG) == q->pid) {
      q->pid = 0;
      log_tail(q->log, tail, sizeof(tail));
      snprintf(err, len, "qpoold exited at start: %s", tail);
      qpd_stop(q);
      return -1;
    }
    if (now_ns() > end) {
      log_tail(q->log, tail, sizeof(tail));
      snprintf(err, len, "qpoold not serving within 10 s: %s", tail);
      qpd_stop(q);
      return -1;
    }
    usleep(10000);
  }
}

/* "+0.21 ms (1.12x)" vs engine alone. */
static const char *vs_engine(double v, double base) {
  static char out[2][80];
  static int k;
  char *o = out[k++ % 2];
  snprintf(o, 80, "%s%s ms (%sx) vs engine alone (%s ms)", v >= base ? "+" : "",
           num(v - base, 2), num(v / base, 2), num(base, 2));
  return o;
}

static void bench_handoff(void) {
  const char *m1 = "handshake via qpoold hand-off";
  struct res e, r;
  char what[96];
  snprintf(what, sizeof(what),
           "handshakes (%d new client pools) vs engine, then vs qpoold",
           O.hs_samples);
  progress(what);
  run_pair(hs_server, hs_client, 30, 0, &e);
  double e_h50 = rget(&e, "hs.handshake.p50") / NS_PER_MS;
  if (e.timeout || e.err[0] || isnan(e_h50)) {
    rows_failed("handshake, engine alone (handoff)", &e);
    return;
  }
  double e_h99 = rget(&e, "hs.handshake.p99") / NS_PER_MS;
  double e_f50 = rget(&e, "hs.first.p50") / NS_PER_MS;
  double e_f99 = rget(&e, "hs.first.p99") / NS_PER_MS;

  struct qpd q;
  memset(&q, 0, sizeof(q));
  if (qpd_find(&q) < 0) {
    row_add(m1, "skipped", "", "-", "-", "skipped (qpoold not built: %s)",
            q.bin[0] ? q.bin : "no path");
    return;
  }
  char err[400];
  if (qpd_start(&q, err, sizeof(err)) < 0) {
    failures++;
    row_add(m1, "error", "", "", "ERROR", "%s", err);
    return;
  }
  qpd_port = q.port;
  run_pair(qpd_server, hs_client, 30, 0, &r);
  qpd_stop(&q);
  double h50 = rget(&r, "hs.handshake.p50") / NS_PER_MS;
  if (r.timeout || r.err[0] || isnan(h50)) {
    rows_failed(m1, &r);
    return;
  }
  double h99 = rget(&r, "hs.handshake.p99") / NS_PER_MS;
  double f50 = rget(&r, "hs.first.p50") / NS_PER_MS;
  double f99 = rget(&r, "hs.first.p99") / NS_PER_MS;
  row_add("handshake via qpoold hand-off p50", num(h50, 2), "ms", "-", "-",
          "%s; %s samples each, same client code, same run",
          vs_engine(h50, e_h50), num(rget(&r, "hs.handshake.n"), 0));
  row_add("handshake via qpoold hand-off p99", num(h99, 2), "ms", "-", "-",
          "%s", vs_engine(h99, e_h99));
  row_add("first stream ID via qpoold p50", num(f50, 2), "ms", "-", "-", "%s",
          vs_engine(f50, e_f50));
  row_add("first stream ID via qpoold p99", num(f99, 2), "ms", "-", "-", "%s",
          vs_engine(f99, e_f99));
}

/* CPU seconds (user + system) used so far by qpoold's children (its
 * workers), from /proc; NAN when they cannot be read. */
static double qpd_workers_cpu(pid_t pid) {
  char path[64], buf[512];
  snprintf(path, sizeof(path), "/proc/%d/task/%d/children", (int)pid, (int)pid);
  FILE *f = fopen(path, "r");
  if (!f)
    return NAN;
  double sum = 0;
  int n = 0, child;
  while (fscanf(f, "%d", &child) == 1) {
    snprintf(path, sizeof(path), "/proc/%d/stat", child);
    FILE *st = fopen(path, "r");
    if (!st)
      continue;
    size_t len = fread(buf, 1, sizeof(buf) - 1, st);
    fclose(st);
    buf[len] = 0;
    char *p = strrchr(buf, ')');
    unsigned long ut, stime;
    /* after "pid (comm)": state is field 3, utime 14, stime 15 */
    if (p &&
        sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu",
               &ut, &stime) == 2) {
      sum += (double)(ut + stime) / (double)sysconf(_SC_CLK_TCK);
      n++;
    }
  }
  fclose(f);
  return n ? sum : NAN;
}

/* Single-stream bulk through qpoold: the server app takes the stream over
 * the control socket, the pool's worker relays it. A fresh qpoold per run, so
 * no stream of an earlier run's connection is left idle in its pool. This
 * VM's speed drifts by up to 2x within a run, so an engine-alone run goes
 * right before each qpoold run and the verdict is on the median of those
 * paired ratios; the notes also give the ratio to the bulk row of this run
 * (when bulk ran). */
static void bench_handoff_bulk(void) {
  const char *names[2] = {"bulk via qpoold client->server",
                          "bulk via qpoold server->client"};
  struct qpd q;
  memset(&q, 0, sizeof(q));
  if (qpd_find(&q) < 0) {
    for (int i = 0; i < 2; i++)
      row_add(names[i], "skipped", "", "-", "-",
              "skipped (qpoold not built: %s)", q.bin[0] ? q.bin : "no path");
    return;
  }
  for (int i = 0; i < 2; i++) {
    double v[16], ev[16], pr[16], cs[16], cc[16], cw[16];
    int k = 0, ke = 0, failed = 0;
    const char *dir = i ? "s2c" : "c2s";
    struct res r;
    for (int j = 0; j < O.bulk_repeat && j < 16 && !failed; j++) {
      char what[128];
      bulk_s2c = i;
      snprintf(what, sizeof(what),
               "%s, engine alone for comparison (run %d of %d)",
               i ? "bulk server->client" : "bulk client->server", j + 1,
               O.bulk_repeat);
      progress(what);
      run_pair(bulk_server, bulk_client, 30, 0, &r);
      double e = mbs(&r, dir);
      if (isnan(e)) {
        rows_failed(i ? "bulk server->client (handoff-bulk)"
                      : "bulk client->server (handoff-bulk)",
                    &r);
        failed = 1;
        break;
      }
      ev[ke++] = e;
      snprintf(what, sizeof(what), "%s, %s MiB (run %d of %d)", names[i],
               num((double)(O.bulk_bytes >> 20), 0), j + 1, O.bulk_repeat);
      progress(what);
      char err[400];
      memset(&q, 0, sizeof(q));
      qpd_find(&q);
      if (qpd_start(&q, err, sizeof(err)) < 0) {
        failures++;
        row_add(names[i], "error", "", "", "ERROR", "%s", err);
        failed = 1;
        break;
      }
      qpd_port = q.port;
      qpd_ctl = q.sock;
      run_pair(hb_server, hb_client, 30, 0, &r);
      char tail[200];
      log_tail(q.log, tail, sizeof(tail));
      double wcpu = qpd_workers_cpu(q.pid);
      qpd_stop(&q);
      v[k] = mbs(&r, dir);
      if (isnan(v[k])) {
        if (tail[0]) {
          size_t l = strlen(r.err);
          snprintf(r.err + l, sizeof(r.err) - l, "%sqpoold log: %s",
                   l ? "; " : "", tail);
        }
        rows_failed(names[i], &r);
        failed = 1;
        break;
      }
      char k0[32], k1[32];
      snprintf(k0, sizeof(k0), "bulk.%s.t0", dir);
      snprintf(k1, sizeof(k1), "bulk.%s.t1", dir);
      double secs = (rget(&r, k1) - rget(&r, k0)) / NS_PER_S;
      cs[k] = 100 * r.cpu[0] / secs;
      cc[k] = 100 * r.cpu[1] / secs;
      cw[k] = 100 * wcpu / secs; /* its whole life: start-up is small */
      pr[k] = v[k] / ev[ke - 1];
      k++;
    }
    if (failed || k == 0)
      continue;
    double lo, hi;
    range_of(v, k, &lo, &hi);
    double med = median(v, k);
    double ratio = median(pr, k);
    char row_note[80] = "";
    if (!isnan(bulk_med[i]))
      snprintf(row_note, sizeof(row_note), "%s%% of the bulk row (%s MB/s); ",
               num(100 * med / bulk_med[i], 0), num(bulk_med[i], 0));
    row_add(names[i], num(med, 0), "MB/s", ">= 95% of engine",
            verdict(ratio, 0.95, 1),
            "%s%% of engine alone run just before each (median %s MB/s); "
            "%smedian of %d x %s MiB, range %s..%s; server app takes the "
            "stream via qpoold's control socket, its sandboxed worker relays "
            "it; CPU server app %s%%, qpoold worker %s%%, client %s%% of a "
            "core",
            num(100 * ratio, 0), num(median(ev, ke), 0), row_note, k,
            num((double)(O.bulk_bytes >> 20), 0), num(lo, 0), num(hi, 0),
            num(median(cs, k), 0), num(median(cw, k), 0),
            num(median(cc, k), 0));
  }
}

/* libqpool's qp_incoming_get with an idle stream ready (issue 4), through
 * the worker session and, for comparison, through qpoold. */
static void api_get_run(int via_sup, int quiet) {
  const char *name = quiet     ? "qp_incoming_get, no refill p50/p99"
                     : via_sup ? "qp_incoming_get via qpoold p50/p99"
                               : "qp_incoming_get p50/p99";
  struct qpd q;
  char what[160], err[400], tail[200];
  struct res r;
  memset(&q, 0, sizeof(q));
  qpd_find(&q);
  snprintf(what, sizeof(what), "qp_incoming_get %s (%d samples)",
           quiet     ? "from a pool that does not refill"
           : via_sup ? "through qpoold"
                     : "through the worker session",
           O.lat_samples);
  progress(what);
  q.max_cap = quiet ? AL_QUIET_CAP : 64;
  if (qpd_start(&q, err, sizeof(err)) < 0) {
    failures++;
    row_add(name, "error", "", "", "ERROR", "%s", err);
    return;
  }
  qpd_port = q.port;
  qpd_ctl = q.sock;
  al_via_sup = via_sup;
  al_quiet = quiet;
  run_pair(al_server, al_client, 40, 0, &r);
  al_via_sup = al_quiet = 0;
  log_tail(q.log, tail, sizeof(tail));
  qpd_stop(&q);
  double p50 = rget(&r, "al.get.p50") / NS_PER_US;
  if (r.timeout || r.err[0] || isnan(p50)) {
    size_t l = strlen(r.err);
    snprintf(r.err + l, sizeof(r.err) - l, "%sqpoold log: %s", l ? "; " : "",
             tail);
    rows_failed(name, &r);
    return;
  }
  double p99 = rget(&r, "al.get.p99") / NS_PER_US;
  double mx = rget(&r, "al.get.max") / NS_PER_US;
  double k = rget(&r, "al.refill_wait");
  char v[48];
  snprintf(v, sizeof(v), "%s / %s", num(p50, 1), num(p99, 1));
  if (quiet)
    row_add(name, v, "us", "", "info",
            "%s samples, max %s us; as the row above, but the server pool "
            "(max-cap %d) is filled once by a client pool whose next round "
            "is an hour away, so the worker serves takes and their closes "
            "only, with no refill traffic",
            num(rget(&r, "al.get.n"), 0), num(mx, 1), AL_QUIET_CAP);
  else
    row_add(name, v, "us", via_sup ? "" : "p99 <= 100",
            via_sup ? "info" : verdict(p99, 100, 0),
            "%s samples, max %s us; libqpool attached to a qpoold server pool "
            "(max-cap 64, kept full by an engine client pool, min = max 64, "
            "1 ms rounds), an idle stream ready (refilled to >= %d via "
            "qp_active %s times, untimed); %s",
            num(rget(&r, "al.get.n"), 0), num(mx, 1), AL_REFILL,
            num(isnan(k) ? 0 : k, 0),
            via_sup ? "QPOOL_NO_SESSION=1: app -> qpoold -> worker -> qpoold "
                      "-> app, 4 frames"
                    : "app -> worker session -> app, 2 frames");
}

static void api_pair_run(int via_sup) {
  const char *name = via_sup ? "pairing via qpoold p50/p99" : "pairing p50/p99";
  struct qpd q, qc;
  char what[160], err[400], tail[200], tail2[200];
  struct res r;
  snprintf(what, sizeof(what), "pairing %s (%d samples)",
           via_sup ? "through both qpoolds" : "through worker sessions",
           O.lat_samples / 2);
  progress(what);
  memset(&q, 0, sizeof(q));
  memset(&qc, 0, sizeof(qc));
  qpd_find(&q);
  qpd_find(&qc);
  q.max_cap = 64;
  if (qpd_start(&q, err, sizeof(err)) < 0) {
    failures++;
    row_add(name, "error", "", "", "ERROR", "server qpoold: %s", err);
    return;
  }
  qc.max_cap = 64;
  qc.target = q.port;
  if (qpd_start(&qc, err, sizeof(err)) < 0) {
    qpd_stop(&q);
    failures++;
    row_add(name, "error", "", "", "ERROR", "client qpoold: %s", err);
    return;
  }
  uint64_t *shm = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
                       MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (shm == MAP_FAILED) {
    qpd_stop(&qc);
    qpd_stop(&q);
    failures++;
    row_add(name, "error", "", "", "ERROR", "mmap: %s", strerror(errno));
    return;
  }
  al_shm_t = shm;
  qpd_ctl = q.sock;
  al_ctl2 = qc.sock;
  al_via_sup = via_sup;
  run_pair(pr_server, pr_client, 40, 0, &r);
  al_via_sup = 0;
  log_tail(q.log, tail, sizeof(tail));
  log_tail(qc.log, tail2, sizeof(tail2));
  qpd_stop(&qc);
  qpd_stop(&q);
  munmap(shm, 4096);
  al_shm_t = NULL;
  double p50 = rget(&r, "al.pair.p50") / NS_PER_US;
  if (r.timeout || r.err[0] || isnan(p50)) {
    size_t l = strlen(r.err);
    snprintf(r.err + l, sizeof(r.err) - l,
             "%sserver qpoold log: %s; client qpoold log: %s", l ? "; " : "",
             tail, tail2);
    rows_failed(name, &r);
    return;
  }
  double p99 = rget(&r, "al.pair.p99") / NS_PER_US;
  double mx = rget(&r, "al.pair.max") / NS_PER_US;
  char v[48];
  snprintf(v, sizeof(v), "%s / %s", num(p50, 1), num(p99, 1));
  row_add(name, v, "us", via_sup ? "" : "p99 <= 1000",
          via_sup ? "info" : verdict(p99, 1000, 0),
          "%s samples, max %s us; server app's qp_incoming_get returns -> "
          "ID line on stream 00000000 -> client app's qp_outgoing_get(ID) "
          "returns, both apps on libqpool attached to their qpoold (server "
          "max-cap 64, client min = max 64, 1 ms rounds)%s; the reference "
          "polls every 50 ms",
          num(rget(&r, "al.pair.n"), 0), num(mx, 1),
          via_sup ? ", QPOOL_NO_SESSION=1" : ", worker sessions");
}

static void bench_api_latency(void) {
  struct qpd q;
  memset(&q, 0, sizeof(q));
  if (qpd_find(&q) < 0) {
    row_add("qp_incoming_get p50/p99", "skipped", "", "-", "-",
            "skipped (qpoold not built: %s)", q.bin[0] ? q.bin : "no path");
    row_add("pairing p50/p99", "skipped", "", "-", "-",
            "skipped (qpoold not built)");
    return;
  }
  api_get_run(0, 0);
  api_get_run(0, 1);
  api_get_run(1, 0);
  api_pair_run(0);
  api_pair_run(1);
}

static void print_table(FILE *f) {
  struct utsname u;
  uname(&u);
  char cpu[128] = "unknown CPU";
  FILE *ci = fopen("/proc/cpuinfo", "r");
  if (ci) {
    char line[256];
    while (fgets(line, sizeof(line), ci)) {
      char *c = strchr(line, ':');
      if (!strncmp(line, "model name", 10) && c) {
        snprintf(cpu, sizeof(cpu), "%s", c + 2);
        cpu[strcspn(cpu, "\n")] = 0;
        break;
      }
    }
    fclose(ci);
  }
  fprintf(f,
          "qpool engine benchmarks (loopback 127.0.0.1, %ld cores, Release, "
          "kernel %s, congestion control %s)\n%s\n\n",
          sysconf(_SC_NPROCESSORS_ONLN), u.release, qp_cc_name(O.cc_algo), cpu);
  fprintf(f, "%-34s %12s  %-10s %-16s %-7s  %s\n", "metric", "value", "unit",
          "target", "verdict", "notes");
  for (int i = 0; i < nrows; i++) {
    struct row *w = &rows[i];
    fprintf(f, "%-34s %12s  %-10s %-16s %-7s  %s\n", w->metric, w->value,
            w->unit, w->target, w->verdict, w->notes);
  }
  fflush(f);
}

static void usage(FILE *f) {
  fputs("usage: qpool-bench [options]\n"
        "Measures the qpool engine over QUIC on 127.0.0.1 (server and client\n"
        "pools in two processes) and prints a table.\n"
        "  --only LIST     comma list of: fill,bulk,lat,rtt,hs,handoff,\n"
        "                  handoff-bulk,api-latency,base\n"
        "  --bulk-mib N    MiB per direction in the bulk test (1024)\n"
        "  --streams N     streams in the fill test (10000)\n"
        "  --repeat N      fill and bulk runs, median reported (3)\n"
        "  --samples N     latency samples per phase (2000)\n"
        "  --rtt N         round trips (10000)\n"
        "  --handshakes N  handshakes (50)\n"
        "  --cc NAME       congestion controller of both pools (default: the\n"
        "                  pools' default)\n"
        "  --quick         small sizes for a smoke run\n"
        "  --verbose       engine log lines (info) on stderr\n",
        f);
}

int main(int argc, char **argv) {
  static const struct option opts[] = {
      {"only", 1, 0, 'o'},       {"bulk-mib", 1, 0, 'b'},
      {"streams", 1, 0, 'n'},    {"repeat", 1, 0, 'r'},
      {"samples", 1, 0, 's'},    {"rtt", 1, 0, 't'},
      {"handshakes", 1, 0, 'H'}, {"quick", 0, 0, 'q'},
      {"cc", 1, 0, 'c'},         {"verbose", 0, 0, 'v'},
      {"help", 0, 0, 'h'},       {0, 0, 0, 0}};
  int c;
  while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
    switch (c) {
    case 'o':
      O.only = optarg;
      break;
    case 'b':
      O.bulk_bytes = strtoull(optarg, NULL, 10) << 20;
      break;
    case 'n':
      O.fill_streams = atoi(optarg);
      break;
    case 'r':
      O.fill_repeat = O.bulk_repeat = atoi(optarg);
      break;
    case 's':
      O.lat_samples = atoi(optarg);
      break;
    case 't':
      O.rtt_samples = atoi(optarg);
      break;
    case 'H':
      O.hs_samples = atoi(optarg);
      break;
    case 'q':
      O.bulk_bytes = 64u << 20;
      O.fill_repeat = 1;
      O.bulk_repeat = 1;
      O.lat_samples = 200;
      O.rtt_samples = 1000;
      O.hs_samples = 10;
      break;
    case 'v':
      O.verbose = 1;
      break;
    case 'c':
      if (qp_cc_parse(optarg, &O.cc_algo) < 0) {
        char names[64];
        fprintf(stderr, "qpool-bench: --cc: '%s' is not %s\n", optarg,
                qp_cc_names(names, sizeof(names)));
        return 2;
      }
      break;
    case 'h':
      usage(stdout);
      return 0;
    default:
      usage(stderr);
      return 2;
    }
  }
  if (O.bulk_bytes == 0 || O.fill_streams < 1 || O.fill_repeat < 1 ||
      O.bulk_repeat < 1 || O.lat_samples < 1 || O.rtt_samples < 1 ||
      O.hs_samples < 1) {
    usage(stderr);
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max; /* the latency test keeps ~8000 fds open */
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  if (wanted("fill"))
    bench_fill();
  if (wanted("bulk"))
    bench_bulk();
  if (wanted("base")) {
    bench_baselines_bulk();
    bench_page_faults();
  }
  if (wanted("lat"))
    bench_lat();
  if (wanted("rtt"))
    bench_rtt();
  if (wanted("hs"))
    bench_hs();
  if (wanted("handoff"))
    bench_handoff();
  if (wanted("handoff-bulk"))
    bench_handoff_bulk();
  if (wanted("api-latency"))
    bench_api_latency();
  print_table(stdout);
  return failures ? 1 : 0;
}
