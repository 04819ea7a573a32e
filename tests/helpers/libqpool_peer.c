/* libqpool-peer: exercises libqpool (qpool.h only, attached or embedded
 * mode) with blocking calls and one thread per stream.
 *
 *   libqpool-peer server --embedded --listen ADDR [--max-cap N] ...
 *   libqpool-peer client --embedded --target ADDR [--min-cap N] [--max-cap N]
 *       the np-test exchange on a pool of the program's own (embedded mode:
 *       qp_server_pool_new / qp_client_pool_new + manager); prints
 *       "embedded: qpoold started in T ms" first; TLS: [--cert FILE --key
 *       FILE] (server), [--tls-mode M] [--hostname H] [--ca FILE] (client,
 *       --ca through qp_client_pool_tls); a manager that fails prints
 *       "embedded: manager rc=R (sentence)". [--max-stream-window BYTES]:
 *       qp_pool_max_stream_window before the manager ("embedded:
 *       max_stream_window rc=R (sentence)"; exit 1 when refused) and once
 *       more after it ("embedded: max_stream_window after start rc=R
 *       (sentence)"), then "embedded: control PATH"
 *   libqpool-peer wake --embedded --listen ADDR
 *       both ends in this process: an IncomingGet (server) and an
 *       OutgoingGet(00000000) (client) wait before the client pool exists;
 *       prints "wake: rc=S,C server_ms=T client_ms=T skew_ms=K" (times from
 *       the client manager's start); exit 0 when both got stream 00000000
 *   libqpool-peer repeat --control PATH --pool NAME --count N
 *                 [--peer-control PATH --peer-pool NAME]
 *       N IncomingGets (timeout 2 s, 50 ms apart), each paired with an
 *       OutgoingGet of the same ID on the peer pool when given, one line
 *       each: "repeat: i=I rc=R peer=R" (for a worker crash in the middle)
 *   libqpool-peer errors --embedded --listen ADDR
 *       embedded-mode errors: the listen address in use (-EADDRINUSE), a
 *       second manager call (-EALREADY); prints "errors: ok" on success
 *
 *   libqpool-peer server|client --control PATH --pool NAME --streams N
 *                 --bytes L [--timeout-ms MS]
 *       the np-test exchange of docs/np-test.md (N <= 256)
 *   libqpool-peer get --control PATH --pool NAME [--id HEX] --timeout-ms MS
 *       one IncomingGet (or OutgoingGet with --id); prints
 *       "get: rc=R ms=T id=ID" (R = 0 or a negative errno); exit 0 on success
 *   libqpool-peer stats --control PATH --pool NAME
 *       prints "ready=R active=A capacity=C interval_ns=I errors=E"
 *   libqpool-peer ctl --control PATH --pool NAME
 *       checks AddError / ErrorCount / ResetError / Flush
 *   libqpool-peer cancel --control PATH --pool NAME
 *       a get blocked in another thread returns -ECANCELED on qp_close
 *   libqpool-peer attach --control PATH --pool NAME
 *       prints "attach: rc=R (sentence)"; exit 0 on success
 *   libqpool-peer info --control PATH --pool NAME --peer-control PATH
 *                 --peer-pool NAME [--hold FILE]
 *       qp_conn_info: takes a stream on the server pool (IncomingGet) and
 *       the same ID on the client pool (OutgoingGet), then describes, on
 *       each side, the connection of that stream and the pool's connection
 *       (id NULL), and an unknown ID; one line each: "info: side=S what=W
 *       rc=R local=... remote=... alpn=... version=... cipher=...
 *       rtt_ns=... certs=N truncated=T sha256=LEAF,NEXT,..." (the SHA-256
 *       of each certificate's DER). With --hold: prints "info: holding"
 *       and keeps both streams until FILE exists (at most 120 s); then
 *       closes them and prints the client side's answer for the closed
 *       stream's ID
 *   libqpool-peer info --embedded --target ADDR [--tls-mode M] [--id HEX]
 *       the same on an embedded client pool: the pool's connection once it
 *       is up (waits up to --timeout-ms), and with --id the connection of
 *       that stream after an OutgoingGet of it
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <gnutls/crypto.h>

#include "qpool.h"

#define MAX_STREAMS 256

static struct {
  const char *control, *pool;
  long streams;
  uint64_t bytes;
  uint32_t timeout_ms;
  int server;
  const char *id;
  int embedded, min_cap, max_cap;
  const char *listen, *target;
  const char *tls_mode, *hostname, *ca, *cert, *key; /* embedded TLS */
  const char *peer_control, *peer_pool; /* repeat: the client side */
  uint64_t window; /* embedded: qp_pool_max_stream_window, 0: not called */
  qp_pool *p;
  atomic_int failed, done;
  pthread_mutex_t mu;
} G = {.streams = 1,
       .bytes = 1024,
       .timeout_ms = 30000,
       .min_cap = 64,
       .max_cap = 128,
       .mu = PTHREAD_MUTEX_INITIALIZER};

static void fail(const char *fmt, ...) {
  va_list ap;
  pthread_mutex_lock(&G.mu);
  if (!atomic_exchange(&G.failed, 1)) {
    fprintf(stderr, "np-test: FAIL ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
  }
  pthread_mutex_unlock(&G.mu);
}

static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ---- the np-test pattern */

static uint64_t splitmix(uint64_t *st) {
  *st += 0x9E3779B97F4A7C15ull;
  uint64_t z = *st;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

/* Fills buf with the next n bytes (n a multiple of 8 except at the end). */
static void pattern(uint64_t *st, uint8_t *buf, size_t n) {
  for (size_t i = 0; i < n; i += 8) {
    uint64_t w = splitmix(st);
    for (size_t k = 0; k < 8 && i + k < n; k++)
      buf[i + k] = (uint8_t)(w >> (8 * k));
  }
}

struct xfer {
  uint32_t id;
  int fd;
  pthread_t th;
};

struct writer_arg {
  int fd;
  uint32_t id;
  int rc;
};

static void *writer_main(void *arg) {
  struct writer_arg *w = arg;
  uint64_t st = (uint64_t)w->id << 8 | (G.server ? 0x53 : 0x43);
  uint8_t buf[16384];
  uint64_t left = G.bytes;
  w->rc = 0;
  while (left > 0) {
    size_t n = left < sizeof(buf) ? (size_t)left : sizeof(buf);
    pattern(&st, buf, n);
    for (size_t off = 0; off < n;) {
      ssize_t k = send(w->fd, buf + off, n - off, MSG_NOSIGNAL);
      if (k < 0 && errno == EINTR)
        continue;
      if (k <= 0) {
        w->rc = -errno;
        return NULL;
      }
      off += (size_t)k;
    }
    left -= n;
  }
  if (shutdown(w->fd, SHUT_WR) < 0)
    w->rc = -errno;
  return NULL;
}

/* One transfer: write our pattern (in a second thread), read the peer's to
 * EOF, compare SHA-256. */
static void run_xfer(uint32_t id, int fd) {
  char hex[9];
  qp_id_format(id, hex);
  struct writer_arg wa = {.fd = fd, .id = id};
  pthread_t wt;
  if (pthread_create(&wt, NULL, writer_main, &wa) != 0) {
    fail("stream %s: cannot start a thread", hex);
    close(fd);
    return;
  }
  gnutls_hash_hd_t h_got, h_want;
  gnutls_hash_init(&h_got, GNUTLS_DIG_SHA256);
  gnutls_hash_init(&h_want, GNUTLS_DIG_SHA256);
  uint64_t rst = (uint64_t)id << 8 | (G.server ? 0x43 : 0x53);
  uint8_t buf[16384], want[16384];
  uint64_t got = 0;
  int err = 0;
  for (;;) {
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0) {
      err = errno;
      break;
    }
    if (n == 0)
      break;
    gnutls_hash(h_got, buf, (size_t)n);
    got += (uint64_t)n;
  }
  /* the expected stream, hashed in 8-byte-aligned pieces */
  for (uint64_t left = G.bytes; left > 0;) {
    size_t n = left < sizeof(want) ? (size_t)left : sizeof(want);
    pattern(&rst, want, n);
    gnutls_hash(h_want, want, n);
    left -= n;
  }
  pthread_join(wt, NULL);
  uint8_t d_got[32], d_want[32];
  gnutls_hash_deinit(h_got, d_got);
  gnutls_hash_deinit(h_want, d_want);
  close(fd);
  if (wa.rc < 0)
    fail("stream %s: write: %s", hex, strerror(-wa.rc));
  else if (err)
    fail("stream %s: read: %s", hex, strerror(err));
  else if (got != G.bytes)
    fail("stream %s: got %" PRIu64 " of %" PRIu64 " bytes", hex, got, G.bytes);
  else if (memcmp(d_got, d_want, 32) != 0)
    fail("stream %s: SHA-256 mismatch", hex);
  else
    atomic_fetch_add(&G.done, 1);
}

static void *server_xfer_main(void *arg) {
  struct xfer *x = arg;
  run_xfer(x->id, x->fd);
  return NULL;
}

static void *client_xfer_main(void *arg) {
  struct xfer *x = arg;
  int fd;
  char hex[9];
  qp_id_format(x->id, hex);
  int rc = qp_outgoing_get(G.p, x->id, G.timeout_ms, &fd);
  if (rc < 0) {
    fail("OutgoingGet(%s): %s", hex, qp_strerror(rc));
    return NULL;
  }
  run_xfer(x->id, fd);
  return NULL;
}

static int spawn(struct xfer *x, void *(*fn)(void *)) {
  pthread_attr_t a;
  pthread_attr_init(&a);
  pthread_attr_setstacksize(&a, 256 * 1024);
  int rc = pthread_create(&x->th, &a, fn, x);
  pthread_attr_destroy(&a);
  return rc;
}

static int write_all(int fd, const char *s, size_t n) {
  while (n > 0) {
    ssize_t k = send(fd, s, n, MSG_NOSIGNAL);
    if (k < 0 && errno == EINTR)
      continue;
    if (k <= 0)
      return -1;
    s += k;
    n -= (size_t)k;
  }
  return 0;
}

static int np_test(void) {
  static struct xfer xs[MAX_STREAMS];
  long started = 0;
  int ctl = -1, rc;
  uint32_t id;
  if (G.server) {
    rc = qp_incoming_get(G.p, G.timeout_ms, &id, &ctl);
    if (rc < 0) {
      fail("IncomingGet (control stream): %s", qp_strerror(rc));
      return 1;
    }
    if (id != 0) {
      fail("the first stream is %08x, not the control stream 00000000", id);
      close(ctl);
      return 1;
    }
    for (long i = 0; i < G.streams && !G.failed; i++) {
      int fd;
      rc = qp_incoming_get(G.p, G.timeout_ms, &id, &fd);
      if (rc < 0) {
        fail("IncomingGet: %s", qp_strerror(rc));
        break;
      }
      char line[10];
      qp_id_format(id, line);
      line[8] = '\n';
      if (write_all(ctl, line, 9) < 0) {
        fail("control stream: %s", strerror(errno));
        close(fd);
        break;
      }
      xs[started].id = id;
      xs[started].fd = fd;
      if (spawn(&xs[started], server_xfer_main) != 0) {
        fail("cannot start a thread");
        close(fd);
        break;
      }
      started++;
    }
  } else {
    rc = qp_outgoing_get(G.p, 0, G.timeout_ms, &ctl);
    if (rc < 0) {
      fail("OutgoingGet(00000000): %s", qp_strerror(rc));
      return 1;
    }
    char line[16];
    size_t have = 0;
    while (started < G.streams && !G.failed) {
      ssize_t n = read(ctl, line + have, 1); /* byte by byte: lines only */
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0) {
        fail("control stream ended after %ld of %ld IDs", started, G.streams);
        break;
      }
      if (line[have] != '\n') {
        if (++have == 9) {
          fail("control stream: line too long");
          break;
        }
        continue;
      }
      line[have] = '\0';
      have = 0;
      if (qp_id_parse(line, &id) < 0) {
        fail("control stream: bad ID \"%s\"", line);
        break;
      }
      xs[started].id = id;
      if (spawn(&xs[started], client_xfer_main) != 0) {
        fail("cannot start a thread");
        break;
      }
      started++;
    }
  }
  for (long i = 0; i < started; i++)
    pthread_join(xs[i].th, NULL);
  if (ctl >= 0)
    close(ctl);
  if (G.failed || G.done != G.streams) {
    if (!G.failed)
      fail("%d of %ld streams passed", G.done, G.streams);
    return 1;
  }
  printf("np-test: %ld streams ok, %" PRIu64 " bytes each way\n", G.streams,
         G.bytes);
  return 0;
}

/* ---- single calls */

static int cmd_get(void) {
  uint32_t id = 0;
  int fd = -1, rc;
  uint64_t t0 = now_ms();
  if (G.id) {
    if (qp_id_parse(G.id, &id) < 0) {
      fprintf(stderr, "bad --id\n");
      return 2;
    }
    rc = qp_outgoing_get(G.p, id, G.timeout_ms, &fd);
  } else {
    rc = qp_incoming_get(G.p, G.timeout_ms, &id, &fd);
  }
  char hex[9];
  qp_id_format(id, hex);
  printf("get: rc=%d ms=%" PRIu64 " id=%s (%s)\n", rc, now_ms() - t0, hex,
         qp_strerror(rc));
  if (fd >= 0)
    close(fd);
  return rc == 0 ? 0 : 1;
}

static int cmd_stats(void) {
  int ready = qp_ready(G.p), active = qp_active(G.p), cap = qp_capacity(G.p);
  int64_t ivl = qp_interval(G.p), errs = qp_error_count(G.p);
  printf("ready=%d active=%d capacity=%d interval_ns=%" PRId64
         " errors=%" PRId64 "\n",
         ready, active, cap, ivl, errs);
  return ready < 0 || active < 0 || cap < 0 || ivl < 0 || errs < 0;
}

static int cmd_ctl(void) {
  int bad = 0;
  int64_t e0 = qp_error_count(G.p);
  int r1 = qp_add_error(G.p), r2 = qp_add_error(G.p);
  int64_t e1 = qp_error_count(G.p);
  printf("add_error: %d %d, error_count %" PRId64 " -> %" PRId64 "\n", r1, r2,
         e0, e1);
  bad |= r1 != 0 || r2 != 0 || e0 < 0 || e1 != e0 + 2;
  int r3 = qp_reset_error(G.p);
  int64_t e2 = qp_error_count(G.p);
  printf("reset_error: %d, error_count %" PRId64 "\n", r3, e2);
  bad |= r3 != 0 || e2 != 0;
  int r4 = qp_flush(G.p);
  printf("flush: %d (%s)\n", r4, qp_strerror(r4));
  bad |= r4 != 0;
  return bad;
}

struct cancel_arg {
  int rc;
  uint64_t ms;
};

static void *cancel_main(void *arg) {
  struct cancel_arg *c = arg;
  uint32_t id;
  int fd;
  uint64_t t0 = now_ms();
  c->rc = G.id ? qp_outgoing_get(G.p, 0xfffffffe, 10000, &fd)
               : qp_incoming_get(G.p, 10000, &id, &fd);
  c->ms = now_ms() - t0;
  if (c->rc == 0)
    close(fd);
  return NULL;
}

static int cmd_cancel(void) {
  struct cancel_arg c[4];
  pthread_t th[4];
  for (int i = 0; i < 4; i++)
    pthread_create(&th[i], NULL, cancel_main, &c[i]);
  usleep(300 * 1000);
  uint64_t t0 = now_ms();
  qp_close(G.p);
  uint64_t closed = now_ms() - t0;
  G.p = NULL;
  int bad = 0;
  for (int i = 0; i < 4; i++) {
    pthread_join(th[i], NULL);
    printf("cancel: rc=%d ms=%" PRIu64 " (%s)\n", c[i].rc, c[i].ms,
           qp_strerror(c[i].rc));
    bad |= c[i].rc != -ECANCELED;
  }
  printf("cancel: qp_close took %" PRIu64 " ms\n", closed);
  return bad || closed > 1000;
}

/* ---- embedded mode */

static int embedded_open(int server, const char *addr, qp_pool **out) {
  qp_pool *p = NULL;
  struct qp_tls stls = {.cert_file = G.cert, .key_file = G.key};
  int rc =
      server
          ? qp_server_pool_new(G.max_cap, NULL, G.cert || G.key ? &stls : NULL,
                               addr, 30 * QP_SECOND, &p)
          : qp_client_pool_new(G.min_cap, G.max_cap, 100 * QP_MILLISECOND,
                               QP_SECOND, 30 * QP_SECOND,
                               G.tls_mode ? G.tls_mode : "1", G.hostname, addr,
                               &p);
  if (rc < 0) {
    fprintf(stderr, "np-test: FAIL qp_%s_pool_new: %s\n",
            server ? "server" : "client", qp_strerror(rc));
    return rc;
  }
  if (!server && G.ca) {
    struct qp_tls ctls = {.ca_file = G.ca};
    if ((rc = qp_client_pool_tls(p, &ctls)) < 0) {
      fprintf(stderr, "np-test: FAIL qp_client_pool_tls: %s\n",
              qp_strerror(rc));
      qp_close(p);
      return rc;
    }
  }
  if (G.window) {
    rc = qp_pool_max_stream_window(p, G.window);
    printf("embedded: max_stream_window rc=%d (%s)\n", rc, qp_strerror(rc));
    fflush(stdout);
    if (rc < 0) {
      qp_close(p);
      return rc;
    }
  }
  uint64_t t0 = now_ms();
  rc = server ? qp_server_manager(p) : qp_client_manager(p);
  if (rc < 0) {
    printf("embedded: manager rc=%d (%s)\n", rc, qp_strerror(rc));
    fflush(stdout);
    fprintf(stderr, "np-test: FAIL qp_%s_manager: %s\n",
            server ? "server" : "client", qp_strerror(rc));
    qp_close(p);
    return rc;
  }
  printf("embedded: qpoold started in %" PRIu64 " ms\n", now_ms() - t0);
  if (G.window) {
    rc = qp_pool_max_stream_window(p, G.window); /* too late: -EINVAL */
    printf("embedded: max_stream_window after start rc=%d (%s)\n", rc,
           qp_strerror(rc));
    printf("embedded: control %s\n", qp_control_path(p));
  }
  fflush(stdout);
  *out = p;
  return 0;
}

struct wake_arg {
  qp_pool *p;
  int server, rc;
  uint32_t id;
  uint64_t t;
};

static void *wake_main(void *arg) {
  struct wake_arg *w = arg;
  int fd = -1;
  w->rc = w->server ? qp_incoming_get(w->p, 20000, &w->id, &fd)
                    : qp_outgoing_get(w->p, 0, 20000, &fd);
  w->t = now_ms();
  if (fd >= 0)
    close(fd);
  return NULL;
}

static int cmd_wake(void) {
  qp_pool *srv, *cli;
  if (embedded_open(1, G.listen, &srv) < 0)
    return 1;
  G.max_cap = G.min_cap = 4;
  struct wake_arg ws = {.p = srv, .server = 1, .id = 7};
  pthread_t ts, tc;
  pthread_create(&ts, NULL, wake_main, &ws);
  usleep(300 * 1000); /* the server's IncomingGet waits on an empty pool */
  uint64_t t0 = now_ms();
  if (embedded_open(0, G.listen, &cli) < 0)
    return 1;
  /* the client's OutgoingGet(00000000) is asked before any stream exists
   * (the first needs a handshake and the ID exchange: milliseconds) */
  struct wake_arg wc = {.p = cli, .server = 0};
  pthread_create(&tc, NULL, wake_main, &wc);
  pthread_join(ts, NULL);
  pthread_join(tc, NULL);
  long skew = (long)ws.t - (long)wc.t;
  printf("wake: rc=%d,%d server_ms=%" PRIu64 " client_ms=%" PRIu64
         " skew_ms=%ld id=%08x\n",
         ws.rc, wc.rc, ws.t - t0, wc.t - t0, skew < 0 ? -skew : skew, ws.id);
  qp_close(cli);
  qp_close(srv);
  return ws.rc != 0 || wc.rc != 0 || ws.id != 0;
}

struct mgr_arg {
  qp_pool *p;
  int rc;
};

static void *mgr_main(void *arg) {
  struct mgr_arg *m = arg;
  m->rc = qp_server_manager(m->p);
  return NULL;
}

static int cmd_errors(void) {
  int bad = 0;
  /* a server pool on an address this process already holds */
  int hold = -1;
  {
    char host[64];
    const char *colon = strrchr(G.listen, ':');
    snprintf(host, sizeof(host), "%.*s", (int)(colon - G.listen), G.listen);
    struct sockaddr_in sin = {.sin_family = AF_INET,
                              .sin_port = htons((uint16_t)atoi(colon + 1))};
    inet_pton(AF_INET, host, &sin.sin_addr);
    hold = socket(AF_INET, SOCK_DGRAM, 0);
    if (bind(hold, (struct sockaddr *)&sin, sizeof(sin)) < 0) {
      perror("bind");
      return 1;
    }
  }
  qp_pool *p = NULL;
  qp_server_pool_new(4, NULL, NULL, G.listen, 0, &p);
  int rc = qp_server_manager(p);
  printf("errors: address in use: rc=%d (%s)\n", rc, qp_strerror(rc));
  bad |= rc != -EADDRINUSE;
  close(hold);
  rc = qp_server_manager(p); /* the address is free now: it starts */
  printf("errors: after the address was freed: rc=%d (%s)\n", rc,
         qp_strerror(rc));
  bad |= rc != 0;
  rc = qp_server_manager(p);
  printf("errors: second manager call: rc=%d (%s)\n", rc, qp_strerror(rc));
  bad |= rc != -EALREADY;
  qp_close(p);
  /* qp_close while the manager starts qpoold in another thread: the
   * manager returns (started, or -ECANCELED) before qp_close does. The
   * manager is known to be inside once its private directory exists. */
  const char *rt = getenv("XDG_RUNTIME_DIR");
  for (int delay_ms = 0; delay_ms <= 40 && rt; delay_ms += 20) {
    qp_server_pool_new(4, NULL, NULL, G.listen, 0, &p);
    struct mgr_arg m = {.p = p, .rc = 1};
    pthread_t t;
    pthread_create(&t, NULL, mgr_main, &m);
    for (int i = 0; i < 2000; i++) {
      char cmd[256];
      snprintf(cmd, sizeof(cmd), "ls -d '%s'/qpool-* >/dev/null 2>&1", rt);
      if (system(cmd) == 0)
        break;
      usleep(1000);
    }
    usleep((useconds_t)delay_ms * 1000);
    qp_close(p);
    pthread_join(t, NULL);
    printf("errors: qp_close %d ms into the manager: manager rc=%d (%s)\n",
           delay_ms, m.rc, qp_strerror(m.rc));
    bad |= m.rc != 0 && m.rc != -ECANCELED;
  }
  printf("errors: %s\n", bad ? "FAIL" : "ok");
  return bad;
}

static int cmd_repeat(void) {
  qp_pool *peer = NULL;
  if (G.peer_control && qp_pool_attach(G.peer_control, G.peer_pool, &peer) < 0)
    peer = NULL;
  for (long i = 0; i < G.streams; i++) {
    uint32_t id;
    int fd = -1, pfd = -1;
    int rc = qp_incoming_get(G.p, 2000, &id, &fd);
    /* as applications pair streams: the client side takes the same ID (a
     * stream closed on one side stays idle on the other until taken) */
    int prc = peer && rc == 0 ? qp_outgoing_get(peer, id, 2000, &pfd) : 0;
    printf("repeat: i=%ld rc=%d (%s) peer=%d\n", i, rc, qp_strerror(rc), prc);
    fflush(stdout);
    if (pfd >= 0)
      close(pfd);
    if (fd >= 0)
      close(fd);
    usleep(50 * 1000);
  }
  if (peer)
    qp_close(peer);
  return 0;
}

/* ---- qp_conn_info */

/* Prints one description; returns qp_conn_info's result. */
static int print_info(const char *side, const char *what, qp_pool *p,
                      const uint32_t *id) {
  struct qp_conn_info *ci = NULL;
  int rc = qp_conn_info(p, id, &ci);
  printf("info: side=%s what=%s rc=%d", side, what, rc);
  if (rc < 0) {
    printf(" (%s)\n", qp_strerror(rc));
    fflush(stdout);
    return rc;
  }
  printf(" local=%s remote=%s alpn=%s version=%s cipher=%s rtt_ns=%" PRId64
         " cc=%s cwnd=%" PRIu64 " pacing=%" PRIu64
         " certs=%zu truncated=%d sha256=",
         ci->local, ci->remote, ci->alpn, ci->version, ci->cipher, ci->rtt_ns,
         *ci->congestion_control ? ci->congestion_control : "-", ci->cwnd,
         ci->pacing_rate_sec, ci->ncerts, ci->truncated);
  for (size_t i = 0; i < ci->ncerts; i++) {
    uint8_t d[32];
    gnutls_hash_fast(GNUTLS_DIG_SHA256, ci->certs[i].der, ci->certs[i].len, d);
    for (int k = 0; k < 32; k++)
      printf("%02x", d[k]);
    if (i + 1 < ci->ncerts)
      putchar(',');
  }
  printf("%s\n", ci->ncerts ? "" : "-");
  fflush(stdout);
  qp_conn_info_free(ci);
  return 0;
}

/* Waits (up to 120 s: the test's own checks run meanwhile) until FILE
 * exists. */
static void hold_until(const char *file) {
  printf("info: holding\n");
  fflush(stdout);
  for (uint64_t t0 = now_ms(); now_ms() - t0 < 120000;) {
    if (access(file, F_OK) == 0)
      return;
    usleep(20 * 1000);
  }
  printf("info: %s did not appear in time\n", file);
}

static int cmd_info(const char *hold) {
  qp_pool *cli = NULL;
  int rc = qp_pool_attach(G.peer_control, G.peer_pool, &cli);
  if (rc < 0) {
    fprintf(stderr, "np-test: FAIL attach to pool \"%s\": %s\n", G.peer_pool,
            qp_strerror(rc));
    return 1;
  }
  uint32_t id;
  int sfd = -1, cfd = -1, bad = 0;
  rc = qp_incoming_get(G.p, G.timeout_ms, &id, &sfd);
  if (rc == 0)
    rc = qp_outgoing_get(cli, id, G.timeout_ms, &cfd);
  printf("info: take rc=%d id=%08x\n", rc, id);
  if (rc < 0) {
    qp_close(cli);
    return 1;
  }
  uint32_t unknown = id ^ 0x5a5a5a5au;
  bad |= print_info("client", "id", cli, &id) < 0;
  bad |= print_info("server", "id", G.p, &id) < 0;
  bad |= print_info("client", "pool", cli, NULL) < 0;
  bad |= print_info("server", "pool", G.p, NULL) < 0;
  bad |= print_info("client", "unknown", cli, &unknown) != -ESRCH;
  bad |= print_info("server", "unknown", G.p, &unknown) != -ESRCH;
  if (hold) {
    hold_until(hold);
    close(sfd);
    close(cfd);
    sfd = cfd = -1;
    /* both ends closed: the stream ends once FIN and STOP_SENDING crossed */
    for (uint64_t t0 = now_ms(); now_ms() - t0 < 5000; usleep(50 * 1000)) {
      struct qp_conn_info *ci = NULL;
      int r = qp_conn_info(cli, &id, &ci);
      qp_conn_info_free(ci);
      if (r == -ESRCH)
        break;
    }
    print_info("client", "closed", cli, &id);
  }
  if (sfd >= 0)
    close(sfd);
  if (cfd >= 0)
    close(cfd);
  qp_close(cli);
  return bad;
}

static int cmd_info_embedded(void) {
  qp_pool *p;
  if (embedded_open(0, G.target, &p) < 0)
    return 1;
  int rc = -ENOLINK;
  for (uint64_t t0 = now_ms(); rc == -ENOLINK && now_ms() - t0 < G.timeout_ms;
       usleep(50 * 1000)) {
    struct qp_conn_info *ci = NULL;
    rc = qp_conn_info(p, NULL, &ci);
    qp_conn_info_free(ci);
  }
  int bad = print_info("embedded", "pool", p, NULL) < 0;
  if (G.id) {
    uint32_t id;
    int fd = -1;
    if (qp_id_parse(G.id, &id) < 0 ||
        (rc = qp_outgoing_get(p, id, G.timeout_ms, &fd)) < 0) {
      printf("info: take rc=%d\n", rc);
      bad = 1;
    } else {
      bad |= print_info("embedded", "id", p, &id) < 0;
      close(fd);
    }
  }
  qp_close(p);
  return bad;
}

static void usage(void) {
  fprintf(stderr,
          "usage: libqpool-peer server|client|get|stats|ctl|cancel|"
          "attach|info --control PATH --pool NAME [--streams N] [--bytes "
          "L] [--timeout-ms MS] [--id HEX]\n");
  exit(2);
}

int main(int argc, char **argv) {
  if (argc < 2)
    usage();
  const char *cmd = argv[1];
  static const struct option opts[] = {
      {"control", required_argument, NULL, 'c'},
      {"pool", required_argument, NULL, 'p'},
      {"streams", required_argument, NULL, 'n'},
      {"bytes", required_argument, NULL, 'b'},
      {"timeout-ms", required_argument, NULL, 't'},
      {"id", required_argument, NULL, 'i'},
      {"embedded", no_argument, NULL, 'e'},
      {"listen", required_argument, NULL, 'l'},
      {"target", required_argument, NULL, 'T'},
      {"min-cap", required_argument, NULL, 'm'},
      {"max-cap", required_argument, NULL, 'M'},
      {"tls-mode", required_argument, NULL, 'S'},
      {"hostname", required_argument, NULL, 'H'},
      {"ca", required_argument, NULL, 'A'},
      {"cert", required_argument, NULL, 'C'},
      {"key", required_argument, NULL, 'K'},
      {"peer-control", required_argument, NULL, 'P'},
      {"peer-pool", required_argument, NULL, 'Q'},
      {"hold", required_argument, NULL, 'W'},
      {"max-stream-window", required_argument, NULL, 'w'},
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0}};
  optind = 2;
  const char *hold = NULL;
  int o;
  while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
    switch (o) {
    case 'c':
      G.control = optarg;
      break;
    case 'p':
      G.pool = optarg;
      break;
    case 'n':
      G.streams = strtol(optarg, NULL, 10);
      break;
    case 'b':
      G.bytes = strtoull(optarg, NULL, 10);
      break;
    case 't':
      G.timeout_ms = (uint32_t)strtoul(optarg, NULL, 10);
      break;
    case 'i':
      G.id = optarg;
      break;
    case 'P':
      G.peer_control = optarg;
      break;
    case 'Q':
      G.peer_pool = optarg;
      break;
    case 'e':
      G.embedded = 1;
      break;
    case 'l':
      G.listen = optarg;
      break;
    case 'T':
      G.target = optarg;
      break;
    case 'm':
      G.min_cap = atoi(optarg);
      break;
    case 'M':
      G.max_cap = atoi(optarg);
      break;
    case 'S':
      G.tls_mode = optarg;
      break;
    case 'H':
      G.hostname = optarg;
      break;
    case 'A':
      G.ca = optarg;
      break;
    case 'C':
      G.cert = optarg;
      break;
    case 'K':
      G.key = optarg;
      break;
    case 'W':
      hold = optarg;
      break;
    case 'w':
      G.window = strtoull(optarg, NULL, 10);
      break;
    default:
      usage();
    }
  }
  if ((!G.pool && !G.embedded) || G.streams < 1 || G.streams > MAX_STREAMS)
    usage();
  signal(SIGPIPE, SIG_IGN);
  if (G.embedded) {
    if (!strcmp(cmd, "info")) {
      if (!G.target)
        usage();
      return cmd_info_embedded();
    }
    if (!strcmp(cmd, "wake") || !strcmp(cmd, "errors")) {
      if (!G.listen)
        usage();
      return !strcmp(cmd, "wake") ? cmd_wake() : cmd_errors();
    }
    G.server = !strcmp(cmd, "server");
    if ((G.server && !G.listen) || (!G.server && !G.target) ||
        (strcmp(cmd, "server") && strcmp(cmd, "client")))
      usage();
    if (embedded_open(G.server, G.server ? G.listen : G.target, &G.p) < 0)
      return 1;
    int ret = np_test();
    qp_close(G.p);
    return ret;
  }
  int rc = qp_pool_attach(G.control, G.pool, &G.p);
  if (!strcmp(cmd, "attach")) {
    printf("attach: rc=%d (%s)\n", rc, qp_strerror(rc));
    qp_close(G.p);
    return rc == 0 ? 0 : 1;
  }
  if (rc < 0) {
    fprintf(stderr, "np-test: FAIL attach to pool \"%s\": %s\n", G.pool,
            qp_strerror(rc));
    return 1;
  }
  int ret;
  if (!strcmp(cmd, "server") || !strcmp(cmd, "client")) {
    G.server = !strcmp(cmd, "server");
    ret = np_test();
  } else if (!strcmp(cmd, "get")) {
    ret = cmd_get();
  } else if (!strcmp(cmd, "stats")) {
    ret = cmd_stats();
  } else if (!strcmp(cmd, "ctl")) {
    ret = cmd_ctl();
  } else if (!strcmp(cmd, "repeat")) {
    ret = cmd_repeat();
  } else if (!strcmp(cmd, "info")) {
    if (!G.peer_control || !G.peer_pool)
      usage();
    ret = cmd_info(hold);
  } else if (!strcmp(cmd, "cancel")) {
    ret = cmd_cancel();
  } else {
    usage();
    return 2;
  }
  qp_close(G.p);
  return ret;
}
