/* libqpool-peer: exercises libqpool (qpool.h only, attached mode) with
 * blocking calls and one thread per stream.
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
  qp_pool *p;
  atomic_int failed, done;
  pthread_mutex_t mu;
} G = {.streams = 1,
       .bytes = 1024,
       .timeout_ms = 30000,
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

static void usage(void) {
  fprintf(stderr, "usage: libqpool-peer server|client|get|stats|ctl|cancel|"
                  "attach --control PATH --pool NAME [--streams N] [--bytes "
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
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0}};
  optind = 2;
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
    default:
      usage();
    }
  }
  if (!G.pool || G.streams < 1 || G.streams > MAX_STREAMS)
    usage();
  signal(SIGPIPE, SIG_IGN);
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
  } else if (!strcmp(cmd, "cancel")) {
    ret = cmd_cancel();
  } else {
    usage();
    return 2;
  }
  qp_close(G.p);
  return ret;
}
