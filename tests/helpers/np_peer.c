/* np-peer: runs one engine pool in this process and drives it the way the
 * tests need: the np-test exchange (docs/np-test.md), fill checks, live
 * adjustment runs, and expected connection errors. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <gnutls/crypto.h>

#include "control.pb-c.h"
#include "shared/addr.h"
#include "shared/frame.h"
#include "shared/duration.h"
#include "shared/log.h"
#include "worker/engine.h"

#define PAT_BLOCK 65536

struct xfer {
  struct peer *pr;
  uint32_t id;
  int fd;
  uv_poll_t poll;
  uint64_t tx_state, rx_state; /* splitmix64 states */
  uint64_t sent, got;
  uint8_t out[PAT_BLOCK];
  size_t out_len, out_off;
  gnutls_hash_hd_t h_got, h_want;
  int wr_done, rd_done, finished;
};

struct peer {
  uv_loop_t loop;
  wrk_pool *pool;
  int server;
  long streams, started, done;
  uint64_t bytes;
  int ctl_fd;
  uv_poll_t ctl_poll;
  char line[64];
  size_t line_len;
  uv_timer_t deadline, report, probe;
  const char *expect_error;
  long wait_active;
  uint64_t take_all_ns, duration_ns, report_ms;
  uint64_t t0;
  int rc;
  int stopping;
  int keep_running, printed;
  /* fault knobs: close a transfer after abort_after received bytes; accept
   * transfers the peer cut short; flush the pool periodically */
  uint64_t abort_after, flush_every_ns;
  int tolerate_aborts;
  long aborted;
  uv_timer_t flusher;
  /* --early write|read: a stream closed before its peer takes it */
  const char *early;
  int early_fd, early_epipe;
  uv_timer_t early_timer;
  uv_poll_t early_poll;
  char early_buf[256];
  size_t early_len;
  uint64_t early_size, early_extra; /* filler bytes after the line */
  /* --control: streams come from a running qpoold instead of an engine */
  const char *control, *pool_name;
  int ctl_sock;
  uv_poll_t ctl_sock_poll;
  uint64_t next_tag;
  struct pending_get {
    uint64_t tag;
    wrk_get_cb cb;
  } gets[4096];
  size_t ngets;
  uint8_t frame[QP_FRAME_HDR + QP_FRAME_MAX];
};

static struct peer P;

static void finish(int rc) {
  if (P.stopping)
    return;
  P.stopping = 1;
  P.rc = rc;
  uv_stop(&P.loop);
}

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void fail(const char *fmt, ...) {
  va_list ap;
  char buf[512];
  va_start(ap, fmt);
  vsnprintf(buf, sizeof(buf), fmt, ap);
  va_end(ap);
  fprintf(stderr, "np-test: FAIL %s\n", buf);
  finish(1);
}

static uint64_t splitmix(uint64_t *st) {
  uint64_t z = (*st += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

/* Fills buf with the next n bytes of the pattern (n multiple of 8 except the
 * last block). */
static void pattern(uint64_t *st, uint8_t *buf, size_t n) {
  for (size_t i = 0; i < n; i += 8) {
    uint64_t w = splitmix(st);
    for (size_t k = 0; k < 8 && i + k < n; k++)
      buf[i + k] = (uint8_t)(w >> (8 * k));
  }
}

/* ---- one transfer -------------------------------------------------------- */

static void xfer_check_done(struct xfer *x);
static void xfer_abort(struct xfer *x);

static void xfer_closed(uv_handle_t *h) {
  struct xfer *x = h->data;
  free(x);
}

static void on_xfer(uv_poll_t *h, int status, int events);

static void xfer_update(struct xfer *x) {
  int ev = (x->wr_done ? 0 : UV_WRITABLE) | (x->rd_done ? 0 : UV_READABLE);
  if (ev)
    uv_poll_start(&x->poll, ev, on_xfer);
}

static void on_xfer(uv_poll_t *h, int status, int events) {
  struct xfer *x = h->data;
  if (status < 0) {
    fail("stream %08x: poll: %s", x->id, uv_strerror(status));
    return;
  }
  if ((events & UV_WRITABLE) && !x->wr_done) {
    for (;;) {
      if (x->out_off == x->out_len) {
        if (x->sent == P.bytes) {
          shutdown(x->fd, SHUT_WR);
          x->wr_done = 1;
          break;
        }
        size_t n =
            P.bytes - x->sent < PAT_BLOCK ? P.bytes - x->sent : PAT_BLOCK;
        pattern(&x->tx_state, x->out, n);
        x->out_len = n;
        x->out_off = 0;
      }
      ssize_t n = send(x->fd, x->out + x->out_off, x->out_len - x->out_off,
                       MSG_NOSIGNAL);
      if (n < 0) {
        if (errno == EAGAIN)
          break;
        if (P.tolerate_aborts && (errno == EPIPE || errno == ECONNRESET)) {
          x->wr_done = 1; /* the peer closed its end early */
          break;
        }
        fail("stream %08x: write: %s", x->id, strerror(errno));
        return;
      }
      x->out_off += (size_t)n;
      x->sent += (uint64_t)n;
    }
  }
  if ((events & UV_READABLE) && !x->rd_done) {
    uint8_t buf[PAT_BLOCK], want[PAT_BLOCK];
    for (;;) {
      ssize_t n = recv(x->fd, buf, sizeof(buf), 0);
      if (n < 0) {
        if (errno == EAGAIN)
          break;
        fail("stream %08x: read: %s", x->id, strerror(errno));
        return;
      }
      if (n == 0) {
        x->rd_done = 1;
        break;
      }
      if (x->got + (uint64_t)n > P.bytes) {
        fail("stream %08x: more than %" PRIu64 " bytes", x->id, P.bytes);
        return;
      }
      gnutls_hash(x->h_got, buf, (size_t)n);
      x->got += (uint64_t)n;
      if (P.abort_after && x->got >= P.abort_after) {
        xfer_abort(x); /* the application leaves in the middle */
        return;
      }
    }
    (void)want;
  }
  xfer_update(x);
  xfer_check_done(x);
}

static void count_done(void) {
  if (++P.done == P.streams) {
    printf("np-test: %ld streams ok, %" PRIu64 " bytes each way", P.done,
           P.bytes);
    if (P.aborted)
      printf(" (%ld cut short on purpose)", P.aborted);
    printf("\n");
    fflush(stdout);
    finish(0);
  }
}

/* Ends a transfer: closes it and returns 1 if the bytes received are the
 * first `expect` bytes of the peer's pattern. */
static int xfer_close_check(struct xfer *x, uint64_t expect) {
  uint8_t got[32], want[32], buf[PAT_BLOCK];
  x->finished = 1;
  for (uint64_t left = expect; left > 0;) {
    size_t n = left < PAT_BLOCK ? (size_t)left : PAT_BLOCK;
    pattern(&x->rx_state, buf, n);
    gnutls_hash(x->h_want, buf, n);
    left -= n;
  }
  gnutls_hash_deinit(x->h_got, got);
  gnutls_hash_deinit(x->h_want, want);
  uv_poll_stop(&x->poll);
  close(x->fd);
  uv_close((uv_handle_t *)&x->poll, xfer_closed);
  return x->got == expect && memcmp(got, want, 32) == 0;
}

/* Closes a transfer early; the bytes received so far must be a prefix of the
 * peer's pattern. */
static void xfer_abort(struct xfer *x) {
  if (!xfer_close_check(x, x->got)) {
    fail("stream %08x: first %" PRIu64 " bytes differ", x->id, x->got);
    return;
  }
  P.aborted++;
  count_done();
}

static void xfer_check_done(struct xfer *x) {
  if (!x->wr_done || !x->rd_done || x->finished)
    return;
  if (P.tolerate_aborts && x->got < P.bytes) {
    xfer_abort(x); /* the peer cut it short: a prefix is all we can check */
    return;
  }
  uint64_t got = x->got;
  if (!xfer_close_check(x, P.bytes)) {
    if (got != P.bytes)
      fail("stream %08x: got %" PRIu64 " of %" PRIu64 " bytes", x->id, got,
           P.bytes);
    else
      fail("stream %08x: SHA-256 mismatch", x->id);
    return;
  }
  count_done();
}

static void xfer_start(uint32_t id, int fd) {
  struct xfer *x = calloc(1, sizeof(*x));
  if (!x) {
    fail("out of memory");
    return;
  }
  x->id = id;
  x->fd = fd;
  uint64_t tag_tx = P.server ? 0x53 : 0x43, tag_rx = P.server ? 0x43 : 0x53;
  x->tx_state = (uint64_t)id << 8 | tag_tx;
  x->rx_state = (uint64_t)id << 8 | tag_rx;
  gnutls_hash_init(&x->h_got, GNUTLS_DIG_SHA256);
  gnutls_hash_init(&x->h_want, GNUTLS_DIG_SHA256);
  uv_poll_init(&P.loop, &x->poll, fd); /* makes fd non-blocking */
  x->poll.data = x;
  uv_poll_start(&x->poll, UV_READABLE | UV_WRITABLE, on_xfer);
  if (P.bytes == 0) {
    shutdown(fd, SHUT_WR);
    x->wr_done = 1;
  }
}

/* ---- taking streams: from the engine, or from qpoold's control socket */

static void ctl_send(int any, uint32_t id, uint64_t timeout_ms, wrk_get_cb cb) {
  if (P.ngets == sizeof(P.gets) / sizeof(P.gets[0])) {
    fail("too many requests in flight");
    return;
  }
  Qpool__Request r = QPOOL__REQUEST__INIT;
  r.tag = ++P.next_tag;
  r.op = any ? QPOOL__CTL_OP__OP_INCOMING_GET : QPOOL__CTL_OP__OP_OUTGOING_GET;
  r.pool = (char *)P.pool_name;
  r.has_stream_id = !any;
  r.stream_id = id;
  r.has_timeout_ms = 1;
  r.timeout_ms = (uint32_t)timeout_ms;
  int rc = qp_frame_send(P.ctl_sock, QPOOL__CTL_TYPE__CTL_REQUEST, &r.base, -1);
  if (rc < 0) {
    fail("control socket: %s", strerror(-rc));
    return;
  }
  P.gets[P.ngets].tag = r.tag;
  P.gets[P.ngets++].cb = cb;
}

static void on_ctl_sock(uv_poll_t *h, int status, int events) {
  (void)h, (void)events;
  if (status < 0) {
    fail("control socket: %s", uv_strerror(status));
    return;
  }
  for (;;) {
    struct qp_frame f;
    int rc = qp_frame_recv(P.ctl_sock, P.frame, sizeof(P.frame), &f);
    if (rc == -EAGAIN)
      return;
    if (rc <= 0) {
      fail("qpoold closed the control socket");
      uv_poll_stop(&P.ctl_sock_poll);
      return;
    }
    Qpool__Response *m = qpool__response__unpack(NULL, f.len, f.payload);
    if (!m) {
      fail("malformed response from qpoold");
      return;
    }
    wrk_get_cb cb = NULL;
    for (size_t i = 0; i < P.ngets; i++)
      if (P.gets[i].tag == m->tag) {
        cb = P.gets[i].cb;
        P.gets[i] = P.gets[--P.ngets];
        break;
      }
    if (!cb) {
      fail("response for an unknown request");
    } else if (m->code != 0) {
      fprintf(stderr, "np-peer: qpoold: %s\n", m->message ? m->message : "");
      cb(NULL, -m->code, 0, -1, NULL);
    } else {
      cb(NULL, 0, m->stream_id, f.fd, NULL);
      f.fd = -1;
    }
    if (f.fd >= 0)
      close(f.fd);
    qpool__response__free_unpacked(m, NULL);
  }
}

static void get_any(uint64_t timeout_ms, wrk_get_cb cb) {
  if (P.control)
    ctl_send(1, 0, timeout_ms, cb);
  else
    wrk_pool_incoming_get(P.pool, timeout_ms, cb, NULL);
}

static void get_id(uint32_t id, uint64_t timeout_ms, wrk_get_cb cb) {
  if (P.control)
    ctl_send(0, id, timeout_ms, cb);
  else
    wrk_pool_outgoing_get(P.pool, id, timeout_ms, cb, NULL);
}

/* ---- np-test driving ------------------------------------------------------
 */

static void on_incoming(wrk_pool *p, int status, uint32_t id, int fd,
                        void *arg);

static void on_data_stream(wrk_pool *p, int status, uint32_t id, int fd,
                           void *arg) {
  (void)p, (void)arg;
  char hex[9];
  qp_stream_id_format(id, hex);
  if (status < 0) {
    fail("%s %s: %s", P.server ? "IncomingGet" : "OutgoingGet", hex,
         strerror(-status));
    return;
  }
  if (P.server) {
    char line[16];
    int n = snprintf(line, sizeof(line), "%s\n", hex);
    if (write(P.ctl_fd, line, (size_t)n) != n) {
      fail("control stream write: %s", strerror(errno));
      close(fd);
      return;
    }
    if (++P.started < P.streams)
      get_any(30000, on_incoming);
  }
  xfer_start(id, fd);
}

static void on_incoming(wrk_pool *p, int status, uint32_t id, int fd,
                        void *arg) {
  on_data_stream(p, status, id, fd, arg);
}

static void on_ctl_readable(uv_poll_t *h, int status, int events) {
  (void)h, (void)events;
  if (status < 0)
    return;
  for (;;) {
    char ch;
    ssize_t n = read(P.ctl_fd, &ch, 1);
    if (n <= 0) {
      if (n < 0 && errno == EAGAIN)
        return;
      if (P.started < P.streams)
        fail("control stream ended after %ld of %ld IDs", P.started, P.streams);
      uv_poll_stop(&P.ctl_poll);
      return;
    }
    if (ch != '\n') {
      if (P.line_len + 1 < sizeof(P.line))
        P.line[P.line_len++] = ch;
      continue;
    }
    P.line[P.line_len] = 0;
    P.line_len = 0;
    uint32_t id;
    if (qp_stream_id_parse(P.line, &id) < 0) {
      fail("bad ID line on the control stream: \"%s\"", P.line);
      return;
    }
    P.started++;
    get_id(id, 30000, on_data_stream);
  }
}

static void on_control(wrk_pool *p, int status, uint32_t id, int fd,
                       void *arg) {
  (void)p, (void)arg;
  if (status < 0) {
    fail("control stream: %s (%s)", strerror(-status),
         P.pool ? wrk_pool_last_error(P.pool) : "via qpoold");
    return;
  }
  if (id != WRK_ID_CONTROL) {
    char hex[9];
    qp_stream_id_format(id, hex);
    fail("first stream has ID %s, not 00000000", hex);
    close(fd);
    return;
  }
  P.ctl_fd = fd;
  if (P.server) {
    get_any(30000, on_incoming);
  } else {
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    uv_poll_init(&P.loop, &P.ctl_poll, fd);
    P.ctl_poll.data = &P;
    uv_poll_start(&P.ctl_poll, UV_READABLE, on_ctl_readable);
  }
}

/* ---- reports and probes ---------------------------------------------------
 */

static void print_stats(const char *tag) {
  if (!P.pool)
    return;
  struct wrk_pool_stats st;
  wrk_pool_stats(P.pool, &st);
  printf(
      "%s t=%.2f active=%d capacity=%d interval_ms=%" PRIu64 " created=%" PRIu64
      " taken=%" PRIu64 " failed=%" PRIu64 " refused=%" PRIu64
      " setup_errors=%" PRIu64 " rejected_ip=%" PRIu64 " dropped=%" PRIu64
      " conns=%d conns_failed=%" PRIu64 " connected=%d error=\"%s\"\n",
      tag, (double)(uv_hrtime() - P.t0) / 1e9, wrk_pool_active(P.pool),
      wrk_pool_capacity(P.pool), wrk_pool_interval(P.pool) / 1000000,
      st.streams_created, st.streams_taken, st.streams_failed,
      st.streams_refused, st.setup_errors, st.rejected_ip, st.dropped_datagrams,
      st.conns, st.conns_failed, st.connected, wrk_pool_last_error(P.pool));
  fflush(stdout);
}

static void on_report(uv_timer_t *t) {
  (void)t;
  print_stats("stats");
}

static void on_taken_close(wrk_pool *p, int status, uint32_t id, int fd,
                           void *arg) {
  (void)p, (void)id, (void)arg;
  if (status == 0)
    close(fd);
}

static void on_probe(uv_timer_t *t) {
  (void)t;
  uint64_t el = uv_hrtime() - P.t0;
  if (!P.pool) { /* streams from qpoold: only --duration applies */
    if (P.duration_ns && el >= P.duration_ns)
      finish(0);
    return;
  }
  if (P.expect_error) {
    if (strstr(wrk_pool_last_error(P.pool), P.expect_error)) {
      printf("np-peer: got expected error: %s\n", wrk_pool_last_error(P.pool));
      print_stats("final");
      finish(0);
    }
    return;
  }
  if (P.wait_active > 0 && !P.printed &&
      wrk_pool_active(P.pool) >= P.wait_active) {
    uint32_t ids[65536];
    size_t n = wrk_pool_idle_ids(P.pool, ids, 65536);
    printf("ids:");
    for (size_t i = 0; i < n; i++) {
      char hex[9];
      qp_stream_id_format(ids[i], hex);
      printf(" %s", hex);
    }
    printf("\n");
    print_stats("final");
    P.printed = 1;
    if (!P.keep_running)
      finish(0);
    return;
  }
  if (P.take_all_ns && el < P.take_all_ns) {
    uint32_t ids[65536];
    size_t n = wrk_pool_idle_ids(P.pool, ids, 65536);
    for (size_t i = 0; i < n; i++)
      wrk_pool_outgoing_get(P.pool, ids[i], 0, on_taken_close, NULL);
  }
  if (P.duration_ns && el >= P.duration_ns) {
    print_stats("final");
    finish(0);
  }
}

static void on_flusher(uv_timer_t *t) {
  (void)t;
  if (P.pool)
    wrk_pool_flush(P.pool);
}

/* ---- --early: bytes written before close() reach a later taker ---------- */

static void early_line(int server, char *buf, size_t len) {
  snprintf(buf, len, "early from %s 00000000\n", server ? "server" : "client");
}

static void on_early_written(wrk_pool *p, int status, uint32_t id, int fd,
                             void *arg) {
  (void)p, (void)arg;
  char line[64];
  if (status < 0 || id != WRK_ID_CONTROL) {
    fail("early write: take: %s (id %08x)", strerror(-status), id);
    return;
  }
  early_line(P.server, line, sizeof(line));
  if (write(fd, line, strlen(line)) != (ssize_t)strlen(line)) {
    fail("early write: %s", strerror(errno));
    return;
  }
  /* --early-size: filler byte i = (uint8_t)i; the socketpair's buffers
   * (1 MiB each way) take up to about 1 MB without blocking the loop */
  static uint8_t fill[65536];
  for (size_t i = 0; i < sizeof(fill); i++)
    fill[i] = (uint8_t)i;
  for (uint64_t done = 0; done < P.early_size;) {
    size_t n = sizeof(fill) - 256; /* from offset done % 256: in bounds */
    if (P.early_size - done < n)
      n = (size_t)(P.early_size - done);
    ssize_t k = write(fd, fill + done % 256, n);
    if (k <= 0) {
      fail("early write: filler: %s", strerror(errno));
      return;
    }
    done += (uint64_t)k;
  }
  close(fd); /* not shutdown(): the application is gone */
  printf("early: wrote and closed stream 00000000\n");
  fflush(stdout);
}

static void on_early_io(uv_poll_t *h, int status, int events) {
  (void)h, (void)status, (void)events;
  char want[64];
  early_line(!P.server, want, sizeof(want));
  for (;;) {
    if (P.early_len == strlen(want)) { /* the line is in: count filler */
      uint8_t b[65536];
      ssize_t n = read(P.early_fd, b, sizeof(b));
      if (n < 0 && errno == EAGAIN)
        return;
      if (n <= 0)
        break;
      for (ssize_t i = 0; i < n; i++)
        if (b[i] != (uint8_t)(P.early_extra + (uint64_t)i)) {
          fail("early read: filler byte %" PRIu64 " differs",
               P.early_extra + (uint64_t)i);
          return;
        }
      P.early_extra += (uint64_t)n;
      continue;
    }
    ssize_t n =
        read(P.early_fd, P.early_buf + P.early_len, strlen(want) - P.early_len);
    if (n < 0 && errno == EAGAIN)
      return;
    if (n > 0) {
      P.early_len += (size_t)n;
      if (P.early_len < sizeof(P.early_buf) - 1)
        continue;
    }
    break; /* EOF, error or too much */
  }
  uv_poll_stop(&P.early_poll);
  P.early_buf[P.early_len] = 0;
  if (P.early_extra != P.early_size) {
    fail("early read: %" PRIu64 " of %" PRIu64
         " bytes after the line, then EOF",
         P.early_extra, P.early_size);
    return;
  }
  if (strcmp(P.early_buf, want) != 0) {
    fail("early read: got \"%s\" (%zu bytes), want \"%.*s\"", P.early_buf,
         P.early_len, (int)strlen(want) - 1, want);
    return;
  }
  /* the peer closed entirely: writes must fail (its STOP_SENDING) */
  int werr = 0;
  for (int i = 0; i < 50 && !werr; i++) {
    if (send(P.early_fd, "x", 1, MSG_NOSIGNAL) < 0)
      werr = errno;
    else
      usleep(10000);
  }
  printf("early: read %" PRIu64 " bytes, then EOF; write: %s\n",
         (uint64_t)P.early_len + P.early_extra,
         werr ? strerror(werr) : "accepted");
  fflush(stdout);
  if (P.early_epipe && werr != EPIPE)
    fail("early read: writes after the peer closed: %s, want EPIPE",
         werr ? strerror(werr) : "accepted");
  else
    finish(0);
}

static void on_early_taken(wrk_pool *p, int status, uint32_t id, int fd,
                           void *arg) {
  (void)p, (void)arg;
  if (status < 0) {
    fail("early read: take: %s", strerror(-status));
    return;
  }
  if (id != WRK_ID_CONTROL) {
    fail("early read: took %08x, want 00000000", id);
    close(fd);
    return;
  }
  P.early_fd = fd;
  uv_poll_init(&P.loop, &P.early_poll, fd); /* non-blocking from now on */
  P.early_poll.data = &P;
  uv_poll_start(&P.early_poll, UV_READABLE | UV_DISCONNECT, on_early_io);
}

static void on_early_timer(uv_timer_t *t) {
  (void)t;
  if (P.server)
    get_any(10000, on_early_taken);
  else
    get_id(WRK_ID_CONTROL, 10000, on_early_taken);
}

static void on_deadline(uv_timer_t *t) {
  (void)t;
  print_stats("final");
  if (P.expect_error)
    fail("expected error \"%s\" did not happen (last: \"%s\")", P.expect_error,
         wrk_pool_last_error(P.pool));
  else if (P.streams)
    fail("timed out with %ld of %ld streams done", P.done, P.streams);
  else
    fail("timed out");
}

static void close_any(uv_handle_t *h, void *arg) {
  (void)arg;
  if (!uv_is_closing(h))
    uv_close(h, h->type == UV_POLL && h->data && h->data != &P ? xfer_closed
                                                               : NULL);
}

static void on_signal(uv_signal_t *s, int sig) {
  (void)s, (void)sig;
  finish(0);
}

static void usage(FILE *f) {
  fputs("usage: np-peer server --listen ADDR [options]\n"
        "       np-peer client --target ADDR [options]\n"
        "Runs one qpool engine pool and drives it for tests.\n"
        "  --streams N --bytes L   run the np-test exchange (docs/np-test.md)\n"
        "  --max-cap N --min-cap N --min-interval DUR --max-interval DUR\n"
        "  --keep-alive DUR --setup-timeout DUR\n"
        "  --cert F --key F --client-ip LIST          (server)\n"
        "  --tls-mode 0|1|2 --hostname H --ca F --alpn P (client)\n"
        "  --setup-payload HEX     bytes a client sends on a new stream\n"
        "  --expect-error TEXT     succeed once the connection fails so\n"
        "  --wait-active N         print idle IDs once N streams are idle\n"
        "  --keep-running          ... and keep serving afterwards\n"
        "  --setup-silent          open streams but never send the byte\n"
        "  --control PATH --pool NAME   take streams from a running qpoold\n"
        "                          (its pool NAME) instead of an own engine\n"
        "  --take-all DUR          take every idle stream for DUR\n"
        "  --duration DUR          run this long, then exit 0\n"
        "  --report MS             print stats every MS milliseconds\n"
        "  --abort-after BYTES     close each transfer after BYTES received\n"
        "  --tolerate-aborts       accept transfers the peer cut short\n"
        "  --flush-every DUR       flush the pool's idle streams every DUR\n"
        "  --early write|read      write: take 00000000, write a line, close;\n"
        "                          read: take it 1 s later, check the line\n"
        "                          and EOF  (--expect-epipe: and that writes\n"
        "                          fail with EPIPE)\n"
        "  --early-size N          ... and N more bytes after the line\n"
        "  --timeout DUR           give up (exit 1) after DUR (default 120s)\n",
        f);
}

static uint64_t dur(const char *flag, const char *v) {
  uint64_t ns;
  if (qp_duration_parse(v, &ns) < 0) {
    fprintf(stderr, "np-peer: %s: bad duration \"%s\"\n", flag, v);
    exit(2);
  }
  return ns;
}

int main(int argc, char **argv) {
  static const struct option opts[] = {
      {"listen", 1, 0, 'l'},       {"target", 1, 0, 't'},
      {"streams", 1, 0, 'n'},      {"bytes", 1, 0, 'b'},
      {"max-cap", 1, 0, 'M'},      {"min-cap", 1, 0, 'm'},
      {"min-interval", 1, 0, 'i'}, {"max-interval", 1, 0, 'I'},
      {"keep-alive", 1, 0, 'k'},   {"setup-timeout", 1, 0, 'S'},
      {"cert", 1, 0, 'c'},         {"key", 1, 0, 'K'},
      {"client-ip", 1, 0, 'C'},    {"tls-mode", 1, 0, 'T'},
      {"hostname", 1, 0, 'H'},     {"ca", 1, 0, 'A'},
      {"alpn", 1, 0, 'a'},         {"setup-payload", 1, 0, 'P'},
      {"expect-error", 1, 0, 'E'}, {"wait-active", 1, 0, 'w'},
      {"take-all", 1, 0, 'x'},     {"duration", 1, 0, 'd'},
      {"report", 1, 0, 'r'},       {"timeout", 1, 0, 'o'},
      {"keep-running", 0, 0, 'R'}, {"setup-silent", 0, 0, 'Z'},
      {"control", 1, 0, 'Q'},      {"pool", 1, 0, 'N'},
      {"abort-after", 1, 0, 'X'},  {"tolerate-aborts", 0, 0, 'Y'},
      {"flush-every", 1, 0, 'F'},  {"early", 1, 0, 'e'},
      {"early-size", 1, 0, 'z'},   {"expect-epipe", 0, 0, 'p'},
      {"help", 0, 0, 'h'},         {0, 0, 0, 0}};
  if (argc < 2 || (strcmp(argv[1], "server") && strcmp(argv[1], "client"))) {
    usage(argc >= 2 && !strcmp(argv[1], "--help") ? stdout : stderr);
    return argc >= 2 && !strcmp(argv[1], "--help") ? 0 : 2;
  }
  qp_log_set_ident("np-peer");
  P.server = !strcmp(argv[1], "server");
  struct wrk_pool_config cfg;
  wrk_pool_config_init(&cfg, P.server ? WRK_SERVER : WRK_CLIENT);
  uint64_t timeout_ns = 120 * QP_NS_PER_S;
  uint8_t payload[64];
  int c;
  optind = 2;
  while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
    switch (c) {
    case 'l':
      if (qp_addr_parse_numeric(optarg, &cfg.listen, &cfg.listen_len) < 0) {
        fprintf(stderr, "np-peer: --listen: bad address \"%s\"\n", optarg);
        return 2;
      }
      break;
    case 't':
      if (qp_addr_resolve(optarg, &cfg.target, &cfg.target_len) < 0) {
        fprintf(stderr, "np-peer: --target: bad address \"%s\"\n", optarg);
        return 2;
      }
      break;
    case 'n':
      P.streams = atol(optarg);
      break;
    case 'b':
      P.bytes = strtoull(optarg, NULL, 10);
      break;
    case 'M':
      cfg.set.max_cap = atoi(optarg);
      break;
    case 'm':
      cfg.set.min_cap = atoi(optarg);
      break;
    case 'i':
      cfg.set.min_ivl_ns = (int64_t)dur("--min-interval", optarg);
      break;
    case 'I':
      cfg.set.max_ivl_ns = (int64_t)dur("--max-interval", optarg);
      break;
    case 'k':
      cfg.set.keep_alive_ns = dur("--keep-alive", optarg);
      break;
    case 'S':
      cfg.set.setup_timeout_ns = dur("--setup-timeout", optarg);
      break;
    case 'c':
      cfg.cert_file = optarg;
      break;
    case 'K':
      cfg.key_file = optarg;
      break;
    case 'C':
      if (qp_ipfilter_add_list(&cfg.client_ip, optarg) < 0) {
        fprintf(stderr, "np-peer: --client-ip: bad list \"%s\"\n", optarg);
        return 2;
      }
      break;
    case 'T':
      cfg.set.tls_mode = optarg[0];
      break;
    case 'H':
      snprintf(cfg.set.hostname, sizeof(cfg.set.hostname), "%s", optarg);
      break;
    case 'A':
      cfg.ca_file = optarg;
      break;
    case 'a':
      cfg.alpn = optarg;
      break;
    case 'P': {
      size_t n = strlen(optarg) / 2;
      if (n == 0 || n > sizeof(payload)) {
        fprintf(stderr, "np-peer: --setup-payload: 1..64 hex bytes\n");
        return 2;
      }
      for (size_t i = 0; i < n; i++)
        sscanf(optarg + 2 * i, "%2hhx", &payload[i]);
      cfg.setup_payload = payload;
      cfg.setup_payload_len = n;
      break;
    }
    case 'E':
      P.expect_error = optarg;
      break;
    case 'w':
      P.wait_active = atol(optarg);
      break;
    case 'x':
      P.take_all_ns = dur("--take-all", optarg);
      break;
    case 'd':
      P.duration_ns = dur("--duration", optarg);
      break;
    case 'r':
      P.report_ms = strtoull(optarg, NULL, 10);
      break;
    case 'o':
      timeout_ns = dur("--timeout", optarg);
      break;
    case 'Q':
      P.control = optarg;
      break;
    case 'N':
      P.pool_name = optarg;
      break;
    case 'R':
      P.keep_running = 1;
      break;
    case 'Z':
      cfg.setup_silent = 1;
      break;
    case 'X':
      P.abort_after = strtoull(optarg, NULL, 10);
      break;
    case 'Y':
      P.tolerate_aborts = 1;
      break;
    case 'F':
      P.flush_every_ns = dur("--flush-every", optarg);
      break;
    case 'e':
      if (strcmp(optarg, "write") && strcmp(optarg, "read")) {
        fprintf(stderr, "np-peer: --early: write or read\n");
        return 2;
      }
      P.early = optarg;
      break;
    case 'p':
      P.early_epipe = 1;
      break;
    case 'z':
      P.early_size = strtoull(optarg, NULL, 10);
      break;
    case 'h':
      usage(stdout);
      return 0;
    default:
      usage(stderr);
      return 2;
    }
  }
  if (!P.control && (P.server ? cfg.listen_len == 0 : cfg.target_len == 0)) {
    fprintf(stderr, "np-peer: %s is required\n",
            P.server ? "--listen" : "--target");
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  uv_loop_init(&P.loop);
  char err[512];
  P.t0 = uv_hrtime();
  if (P.control) {
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", P.control);
    P.ctl_sock = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    if (!P.pool_name || P.ctl_sock < 0 ||
        connect(P.ctl_sock, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
      fprintf(stderr, "np-test: FAIL cannot use control socket %s: %s\n",
              P.control, P.pool_name ? strerror(errno) : "--pool missing");
      return 1;
    }
    uv_poll_init_socket(&P.loop, &P.ctl_sock_poll, P.ctl_sock);
    P.ctl_sock_poll.data = &P;
    uv_poll_start(&P.ctl_sock_poll, UV_READABLE, on_ctl_sock);
  } else if (wrk_pool_new(&P.loop, &cfg, &P.pool, err, sizeof(err)) < 0) {
    fprintf(stderr, "np-test: FAIL %s\n", err);
    return 1;
  } else {
    wrk_pool_start(P.pool);
  }
  if (P.server && P.pool) {
    struct sockaddr_storage ss;
    socklen_t sl;
    char a[QP_ADDR_STRLEN];
    wrk_pool_local_addr(P.pool, &ss, &sl);
    printf("np-peer: listening on %s\n",
           qp_addr_format((struct sockaddr *)&ss, a, sizeof(a)));
    fflush(stdout);
  }
  if (P.early && !strcmp(P.early, "write")) {
    if (P.server)
      get_any(30000, on_early_written);
    else
      get_id(WRK_ID_CONTROL, 30000, on_early_written);
  } else if (P.early) { /* read: take it a second later */
    uv_timer_init(&P.loop, &P.early_timer);
    uv_timer_start(&P.early_timer, on_early_timer, 1000, 0);
  }
  if (P.streams > 0) {
    if (P.server)
      get_any(60000, on_control);
    else
      get_id(WRK_ID_CONTROL, 60000, on_control);
  }
  uv_timer_init(&P.loop, &P.deadline);
  uv_timer_start(&P.deadline, on_deadline, timeout_ns / 1000000, 0);
  uv_timer_init(&P.loop, &P.probe);
  uv_timer_start(&P.probe, on_probe, 20, 20);
  uv_timer_init(&P.loop, &P.flusher);
  if (P.flush_every_ns)
    uv_timer_start(&P.flusher, on_flusher, P.flush_every_ns / 1000000,
                   P.flush_every_ns / 1000000);
  uv_timer_init(&P.loop, &P.report);
  if (P.report_ms)
    uv_timer_start(&P.report, on_report, P.report_ms, P.report_ms);
  uv_signal_t sigterm, sigint;
  uv_signal_init(&P.loop, &sigterm);
  uv_signal_start(&sigterm, on_signal, SIGTERM);
  uv_signal_init(&P.loop, &sigint);
  uv_signal_start(&sigint, on_signal, SIGINT);
  uv_unref((uv_handle_t *)&sigterm);
  uv_unref((uv_handle_t *)&sigint);

  uv_run(&P.loop, UV_RUN_DEFAULT);

  /* orderly shutdown: the pool closes its connections with "pool closed" */
  uv_timer_stop(&P.deadline);
  uv_timer_stop(&P.probe);
  uv_timer_stop(&P.report);
  uv_timer_stop(&P.flusher);
  if (P.pool)
    wrk_pool_close(P.pool, NULL, NULL);
  if (P.control && P.ctl_sock >= 0) {
    uv_poll_stop(&P.ctl_sock_poll);
    uv_close((uv_handle_t *)&P.ctl_sock_poll, NULL);
    close(P.ctl_sock);
  }
  uv_run(&P.loop, UV_RUN_DEFAULT); /* let the pool finish closing */
  if (P.ctl_fd > 0)
    close(P.ctl_fd);
  uv_walk(&P.loop, close_any, NULL);
  uv_run(&P.loop, UV_RUN_DEFAULT);
  uv_loop_close(&P.loop);
  return P.rc;
}
