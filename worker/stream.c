/* A pooled np-quic stream: setup exchange, idle buffering, and the relay
 * between the QUIC stream and the application's end of a socketpair, with
 * half-close and backpressure both ways. */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include "shared/log.h"
#include "worker/internal.h"

#define WRK_UNIX_BUF (1 << 20)

static void relay_update_poll(wrk_stream *s);
static void relay_flush_rx(wrk_stream *s);

wrk_stream *wrk_stream_new(wrk_pool *p, wrk_conn *c, int64_t sid) {
  wrk_stream *s = calloc(1, sizeof(*s));
  if (!s)
    return NULL;
  s->pool = p;
  s->sid = sid;
  s->fd = -1;
  wrk_setup_init(&s->setup, p->cfg.role == WRK_SERVER);
  wrk_list_init(&s->link);
  wrk_list_init(&s->tx_link);
  wrk_list_init(&s->conn_link);
  if (c && sid >= 0) {
    s->conn = c;
    wrk_list_push(&c->streams, &s->conn_link);
  }
  return s;
}

static void on_poll_closed(uv_handle_t *h) {
  free(h);
}

static void tx_unlink(wrk_stream *s) {
  if (s->in_tx) {
    s->in_tx = 0;
    wrk_list_del(&s->tx_link);
  }
}

/* s->tx changed from `before` bytes: keep its connection's sum and count
 * of holders (struct wrk_conn: tx_held, tx_holders). */
static void tx_account(wrk_stream *s, size_t before) {
  wrk_conn *c = s->conn;
  if (!c)
    return;
  c->tx_held = c->tx_held - before + s->tx.bytes;
  if (!before && s->tx.bytes)
    c->tx_holders++;
  else if (before && !s->tx.bytes)
    c->tx_holders--;
}

/* s->tx no longer counts for its connection (it is freed, or the
 * connection goes). */
static void tx_forget(wrk_stream *s) {
  wrk_conn *c = s->conn;
  if (!c)
    return;
  c->tx_held -= s->tx.bytes;
  if (s->tx.bytes)
    c->tx_holders--;
}

int wrk_stream_tx_append(wrk_stream *s, const void *data, size_t len) {
  size_t before = s->tx.bytes;
  int rc = wrk_bufq_append(&s->tx, data, len); /* a part may stay */
  tx_account(s, before);
  return rc < 0 ? -ENOMEM : 0;
}

/* Whether s may read more of its app (docs/engine.md "Streams and the
 * relay"): below WRK_TX_MIN_SHARE always; beyond it, not while the peer's
 * credit blocks it (what it holds cannot leave), else while it holds less
 * than its share of the connection's read-ahead. No condition on the other
 * streams' bytes: one whose peer stopped reading would hold the sum and
 * starve the rest. */
static int tx_may_read(const wrk_stream *s) {
  const wrk_conn *c = s->conn;
  if (!c || s->quic_closed)
    return 0;
  if (s->tx.bytes < WRK_TX_MIN_SHARE)
    return 1;
  if (s->blocked)
    return 0;
  uint64_t n = c->tx_holders ? c->tx_holders : 1;
  return s->tx.bytes < c->tx_limit / n;
}

/* ngtcp2 may still reference s->tx (the rule in worker/internal.h). */
static int ngtcp2_holds(const wrk_stream *s) {
  return s->conn && s->conn->qc && !s->quic_closed && s->sid >= 0;
}

static void leave_pool(wrk_stream *s) {
  wrk_pool_stream_leaves(s->pool, s);
}

/* We will not read the app's socket any more: its writes fail with EPIPE
 * from now on, and what it wrote before is dropped. Left unread, our close
 * would reset the app's end (ECONNRESET, POLLERR) while it may still be
 * reading what we delivered. */
static void app_input_drop(int fd) {
  static uint8_t sink[64 * 1024]; /* the loop is single-threaded */
  shutdown(fd, SHUT_RD);
  for (int i = 0; i < 256; i++) { /* bounded: the socket buffer */
    ssize_t n = recv(fd, sink, sizeof(sink), MSG_DONTWAIT);
    if (n <= 0 && !(n < 0 && errno == EINTR))
      break;
  }
}

static void release_app(wrk_stream *s) {
  if (s->poll) {
    uv_poll_stop(s->poll);
    uv_close((uv_handle_t *)s->poll, on_poll_closed);
    s->poll = NULL;
  }
  if (s->fd >= 0) {
    app_input_drop(s->fd);
    close(s->fd);
  }
  s->fd = -1;
}

/* Gives the connection the credit its window still holds for s's rx. */
static void rx_conn_release(wrk_stream *s) {
  if (s->rx_conn_held && s->conn && s->conn->qc && !s->conn->closing) {
    ngtcp2_conn_extend_max_offset(s->conn->qc, s->rx_conn_held);
    wrk_conn_dirty(s->conn);
  }
  s->rx_conn_held = 0;
}

/* Drops received bytes unread, returning their connection credit. */
static void rx_discard(wrk_stream *s) {
  rx_conn_release(s);
  wrk_bufq_free(&s->rx);
}

/* Only once ngtcp2 no longer references tx (or never did). */
static void stream_free(wrk_stream *s) {
  leave_pool(s);
  if (ngtcp2_holds(s)) /* not reached by the rule; never leave a dangling
                          user-data pointer behind */
    ngtcp2_conn_set_stream_user_data(s->conn->qc, s->sid, NULL);
  wrk_list_del(&s->conn_link);
  tx_unlink(s);
  release_app(s);
  rx_discard(s); /* e.g. a finished idle stream flushed: credit returns */
  tx_forget(s);
  wrk_bufq_free(&s->tx);
  wrk_pool *p = s->pool;
  int detached = s->detached;
  free(s);
  if (detached)
    wrk_pool_release(p);
}

void wrk_stream_end(wrk_stream *s, uint64_t app_error) {
  if (!ngtcp2_holds(s)) {
    stream_free(s);
    return;
  }
  if (s->state == WS_ENDED)
    return; /* already ended: stream_close or teardown frees it */
  leave_pool(s);
  s->state = WS_ENDED;
  release_app(s);
  s->rx_stopped = 1;
  s->tx_stopped = 1;
  tx_unlink(s);
  /* buffered bytes were never granted back: return their connection
   * credit, or every ended stream shrinks the connection's window */
  rx_discard(s);
  ngtcp2_conn_shutdown_stream(s->conn->qc, s->sid, app_error);
  wrk_conn_dirty(s->conn);
}

/* A taken stream is finished when QUIC is done with it and the app's fd
 * needs nothing more from us. */
static void maybe_finish(wrk_stream *s) {
  if (!s->quic_closed || s->state != WS_TAKEN)
    return;
  if (s->rx.bytes > 0 && !s->rx_stopped)
    return; /* still delivering to the app */
  stream_free(s);
}

/* An idle stream whose peer finished sending keeps its bytes in the pool
 * after its QUIC stream (or connection) closed: its taker reads them, then
 * EOF (the reference keeps such a stream too). */
static int idle_keeps(const wrk_stream *s) {
  return s->state == WS_IDLE && s->rx_fin;
}

/* ---- data from QUIC -------------------------------------------------------
 */

static void deliver(wrk_stream *s, const uint8_t *data, size_t len, int fin) {
  wrk_pool *p = s->pool;
  if (s->rx_stopped) { /* app is gone: discard, keep the window open */
    wrk_conn_consumed(s->conn, s->sid, len);
    return;
  }
  int taken = s->state == WS_TAKEN;
  if (taken) /* the connection's credit comes back at once (rx_conn_held) */
    wrk_conn_credit(s->conn, len);
  size_t done = 0;
  if (taken && s->rx.bytes == 0 && len > 0) {
    ssize_t n = send(s->fd, data, len, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n > 0) {
      done = (size_t)n;
      p->st.bytes_in += done;
      wrk_stream_credit(s, done);
    }
  }
  if (done < len) {
    size_t before = s->rx.bytes;
    int rc = wrk_bufq_append(&s->rx, data + done, len - done);
    if (!taken) /* what was appended, also a part */
      s->rx_conn_held += s->rx.bytes - before;
    if (rc < 0) {
      qp_warn("pool %s: out of memory buffering stream data", p->cfg.name);
      wrk_stream_end(s, 0);
      return;
    }
  }
  if (fin)
    s->rx_fin = 1;
  if (s->state == WS_TAKEN)
    relay_flush_rx(s);
}

void wrk_stream_on_data(wrk_stream *s, const uint8_t *data, size_t len,
                        int fin) {
  if (s->state == WS_SETUP) {
    size_t used = 0;
    wrk_conn *c = s->conn; /* outlives s when the stream fails below */
    int64_t sid = s->sid;
    enum wrk_setup_result r = wrk_setup_feed(&s->setup, data, len, fin, &used);
    if (used)
      wrk_conn_consumed(c, sid, used);
    switch (r) {
    case WRK_SETUP_MORE:
      return;
    case WRK_SETUP_EOF:
    case WRK_SETUP_VIOLATION:
      if (r == WRK_SETUP_VIOLATION)
        s->pool->st.setup_errors++;
      /* the rest of this chunk is dropped: its credit comes back, or a
       * peer could shrink the connection's window stream by stream */
      wrk_conn_consumed(c, sid, len - used);
      wrk_pool_stream_failed(s->pool, s, s->setup.reason);
      return;
    case WRK_SETUP_DONE:
      break;
    }
    data += used;
    len -= used;
    /* the pool may refuse it (full, duplicate ID): then s is freed, and
     * the bytes behind the ID with it */
    if (wrk_pool_stream_ready(s->pool, s) < 0) {
      wrk_conn_consumed(c, sid, len);
      return;
    }
    /* a server may write right behind the ID: those bytes are app data */
  }
  if (len || fin)
    deliver(s, data, len, fin);
}

void wrk_stream_on_acked(wrk_stream *s, uint64_t datalen) {
  size_t n = (size_t)datalen, before = s->tx.bytes;
  if (n > s->tx.bytes)
    n = s->tx.bytes;
  wrk_bufq_drop(&s->tx, n);
  tx_account(s, before);
  s->tx_sent -= n < s->tx_sent ? n : s->tx_sent;
  s->tx_acked += n;
  s->pool->acked_total += n;
  if (s->state == WS_TAKEN)
    relay_update_poll(s);
}

void wrk_stream_credit(wrk_stream *s, size_t n) {
  if (s->conn && !s->conn->closing && n) {
    ngtcp2_conn_extend_max_stream_offset(s->conn->qc, s->sid, n);
    wrk_conn_dirty(s->conn);
  }
}

void wrk_stream_on_unblocked(wrk_stream *s) {
  if (s->state == WS_TAKEN)
    relay_update_poll(s);
}

void wrk_stream_on_reset(wrk_stream *s) {
  /* the peer abandoned its direction (RESET_STREAM) */
  switch (s->state) {
  case WS_ENDED:
    return;
  case WS_SETUP:
    wrk_pool_stream_failed(s->pool, s, "peer reset the stream during setup");
    return;
  case WS_IDLE:
    wrk_stream_end(s, 0); /* abandoned before anyone took it */
    return;
  case WS_TAKEN:
    break;
  }
  /* Only the peer's direction ends: the app reads EOF, and ours goes on
   * until its bytes and FIN are acknowledged. (quic-go and ngtcp2 answer
   * our STOP_SENDING -- sent when the app close()s -- with exactly this
   * reset: ending both directions here lost what the app had written.) */
  if (!s->rx_stopped)
    rx_discard(s);
  s->rx_fin = 1;
  relay_flush_rx(s);
}

void wrk_stream_on_write_shut(wrk_stream *s) {
  /* the peer sent STOP_SENDING and ngtcp2 reset our direction: stop reading
   * from the app. tx stays: ngtcp2 may reference it until stream_close. */
  if (s->tx_stopped)
    return;
  s->tx_stopped = 1;
  tx_unlink(s);
  if (s->fd >= 0) {
    app_input_drop(s->fd); /* can no longer be sent */
    relay_update_poll(s);
  }
}

void wrk_stream_on_quic_close(wrk_stream *s) {
  /* stays on conn->streams until freed: if the connection goes first, its
   * teardown must detach this stream (it may still deliver rx to the app) */
  s->quic_closed = 1;
  tx_unlink(s);
  /* ngtcp2 is done with tx (the rule in worker/internal.h): what is left
   * will never be acknowledged, and must not count as read-ahead */
  tx_forget(s);
  wrk_bufq_free(&s->tx);
  s->tx_sent = 0;
  switch (s->state) {
  case WS_SETUP:
    wrk_pool_stream_failed(s->pool, s, "stream closed during setup");
    return;
  case WS_IDLE:
    if (!idle_keeps(s))
      stream_free(s);
    return;
  case WS_TAKEN:
    if (!s->tx_fin_sent && !s->tx_stopped) {
      /* closed with our direction unfinished (reset after the peer's
       * STOP_SENDING while blocked on its credit, so the write loop never
       * saw it): nothing more goes out, not even the FIN of an app that
       * already ended its direction (a pool's close must not wait for
       * it); an app still writing gets EPIPE now */
      s->tx_stopped = 1;
      if (!s->tx_eof && s->fd >= 0)
        app_input_drop(s->fd);
      relay_update_poll(s);
    }
    maybe_finish(s);
    return;
  case WS_ENDED:
    stream_free(s);
    return;
  }
}

void wrk_stream_on_conn_gone(wrk_stream *s) {
  s->quic_closed = 1;
  tx_forget(s);
  s->conn = NULL;
  tx_unlink(s);
  switch (s->state) {
  case WS_SETUP:
    wrk_pool_stream_failed(s->pool, s, "connection closed during setup");
    return;
  case WS_IDLE:
    if (!idle_keeps(s))
      stream_free(s); /* leaves the pool */
    return;
  case WS_ENDED:
    stream_free(s);
    return;
  case WS_TAKEN:
    break;
  }
  if (s->rx.bytes > 0 && !s->rx_stopped) {
    /* bytes the peer already sent stay deliverable: the app reads them,
     * then EOF; its writes fail from now on */
    shutdown(s->fd, SHUT_RD);
    s->detached = 1;
    wrk_pool_hold(s->pool); /* the pool outlives this stream */
    relay_update_poll(s);
    return;
  }
  stream_free(s); /* the app sees EOF on its fd */
}

/* ---- relay between the app's fd and QUIC ----------------------------------
 */

static void on_app_io(uv_poll_t *h, int status, int events);

static void relay_update_poll(wrk_stream *s) {
  if (!s->poll)
    return;
  int ev = 0;
  if (!s->tx_eof && !s->tx_stopped && !s->quic_closed && tx_may_read(s))
    ev |= UV_READABLE;
  if (s->rx.bytes > 0 && !s->rx_stopped)
    ev |= UV_WRITABLE;
  if (ev == s->poll_events)
    return;
  s->poll_events = ev;
  if (ev)
    uv_poll_start(s->poll, ev, on_app_io);
  else
    uv_poll_stop(s->poll);
}

/* The app closed its end entirely (not just shutdown(SHUT_WR)). */
static int app_hung_up(int fd) {
  struct pollfd pfd = {fd, POLLRDHUP, 0};
  return poll(&pfd, 1, 0) == 1 && (pfd.revents & (POLLHUP | POLLERR));
}

int wrk_stream_app_pending(wrk_stream *s) {
  int unread = 0;
  if (s->fd < 0 || s->tx_eof)
    return 0;
  if (ioctl(s->fd, FIONREAD, &unread) == 0 && unread > 0)
    return 1;
  return app_hung_up(s->fd); /* EOF not read yet: the FIN is still owed */
}

static void app_gone(wrk_stream *s) {
  /* close() by the app: FIN on our direction plus STOP_SENDING */
  if (!s->rx_stopped) {
    s->rx_stopped = 1;
    wrk_bufq_drop(&s->rx, s->rx.bytes);
    if (s->conn && !s->quic_closed) {
      if (!s->rx_fin)
        ngtcp2_conn_shutdown_stream_read(s->conn->qc, s->sid, 0);
      rx_conn_release(s); /* a taken stream's: given back on arrival */
      wrk_conn_dirty(s->conn);
    }
  }
}

static void relay_flush_rx(wrk_stream *s) {
  wrk_pool *p = s->pool;
  while (s->rx.bytes > 0 && !s->rx_stopped) {
    struct iovec iov[16];
    size_t cnt = wrk_bufq_iov(&s->rx, 0, s->rx.bytes, iov, 16);
    struct msghdr mh = {0};
    mh.msg_iov = iov;
    mh.msg_iovlen = cnt;
    ssize_t n = sendmsg(s->fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK)
        break;
      app_gone(s); /* EPIPE / ECONNRESET: the app closed its end */
      break;
    }
    wrk_bufq_drop(&s->rx, (size_t)n);
    p->st.bytes_in += (size_t)n;
    wrk_stream_credit(s, (size_t)n);
  }
  if (s->rx.bytes == 0 && (s->rx_fin || s->detached) && !s->rx_eof_done) {
    s->rx_eof_done = 1;
    shutdown(s->fd, SHUT_WR); /* QUIC FIN -> the app reads EOF */
  }
  relay_update_poll(s);
}

static void relay_read_app(wrk_stream *s) {
  wrk_pool *p = s->pool;
  size_t got = 0;
  while (!s->tx_eof && tx_may_read(s)) {
    size_t avail;
    uint8_t *dst = wrk_bufq_reserve(&s->tx, &avail);
    if (!dst)
      break;
    ssize_t n = recv(s->fd, dst, avail, MSG_DONTWAIT);
    if (n > 0) {
      size_t before = s->tx.bytes;
      wrk_bufq_commit(&s->tx, (size_t)n);
      tx_account(s, before);
      got += (size_t)n;
      if ((size_t)n < avail)
        break; /* drained for now */
      continue;
    }
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
      break;
    /* 0: the app shut down its direction (or closed); error: same */
    s->tx_eof = 1;
    if (app_hung_up(s->fd))
      app_gone(s);
    break;
  }
  p->st.bytes_out += got;
  if (got || s->tx_eof)
    wrk_conn_want_send(s->conn, s);
}

/* The app closed its end with bytes from us unread, which resets ours
 * (POLLERR): what it wrote before its close is still in our socket, ahead
 * of the error. Read all of it (bounded by the socket buffer, past the
 * read-ahead limit) so that it goes out before our FIN. */
static void relay_read_rest(wrk_stream *s) {
  if (!s->conn || s->quic_closed || s->tx_stopped || s->tx_eof)
    return;
  size_t got = 0;
  for (int i = 0; i < 1024; i++) {
    size_t avail;
    uint8_t *dst = wrk_bufq_reserve(&s->tx, &avail);
    if (!dst)
      break;
    ssize_t n = recv(s->fd, dst, avail, MSG_DONTWAIT);
    if (n > 0) {
      size_t before = s->tx.bytes;
      wrk_bufq_commit(&s->tx, (size_t)n);
      tx_account(s, before);
      got += (size_t)n;
      continue;
    }
    if (n < 0 && errno == EINTR)
      continue;
    break; /* 0, the reset, or nothing more */
  }
  s->pool->st.bytes_out += got;
}

static void on_app_io(uv_poll_t *h, int status, int events) {
  wrk_stream *s = h->data;
  if (status < 0) {
    relay_read_rest(s);
    s->tx_eof = 1;
    app_gone(s);
    wrk_conn_want_send(s->conn, s);
  } else {
    if (events & UV_WRITABLE)
      relay_flush_rx(s);
    if ((events & UV_READABLE) && s->conn && !s->quic_closed)
      relay_read_app(s);
  }
  relay_update_poll(s);
  if (s->quic_closed)
    maybe_finish(s);
}

int wrk_stream_take(wrk_stream *s) {
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
    return -errno;
  int sz = WRK_UNIX_BUF;
  /* AF_UNIX stream sockets account queued bytes to the sender: the send
   * buffers of both ends are what bound each direction */
  (void)setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
  (void)setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
  uv_poll_t *poll = malloc(sizeof(*poll));
  if (!poll || uv_poll_init_socket(s->pool->loop, poll, sv[0]) < 0) {
    free(poll);
    close(sv[0]);
    close(sv[1]);
    return -ENOMEM;
  }
  poll->data = s;
  s->poll = poll;
  s->poll_events = 0;
  s->fd = sv[0];
  leave_pool(s);
  s->state = WS_TAKEN;
  rx_conn_release(s); /* what it received while idle, from now on its own */
  if (s->tx_stopped || s->quic_closed || !s->conn)
    shutdown(s->fd, SHUT_RD); /* the peer reads no more: writes get EPIPE */
  if (!s->conn) { /* kept idle after its connection went: as on_conn_gone */
    s->detached = 1;
    wrk_pool_hold(s->pool);
  }
  relay_flush_rx(s);
  relay_update_poll(s);
  maybe_finish(s); /* QUIC already done: frees s once rx is delivered */
  return sv[1];
}
