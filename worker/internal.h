/* Private structures shared by the engine's files (pool.c, conn.c,
 * stream.c, listener.c). Not part of the engine API. */
#ifndef QP_WORKER_INTERNAL_H
#define QP_WORKER_INTERNAL_H

#include <stdint.h>
#include <ngtcp2/ngtcp2.h>
#include <ngtcp2/ngtcp2_crypto.h>
#include <gnutls/gnutls.h>
#include <gnutls/crypto.h>
#include <uv.h>

#include "shared/handoff.h"
#include "worker/bufq.h"
#include "worker/engine.h"
#include "worker/idmap.h"
#include "shared/pool_rules.h"
#include "worker/retry.h"
#include "worker/stream_setup.h"
#include "worker/udp.h"

#include "shared/quic_hdr.h" /* QP_CID_LEN: the IDs we issue */
/* Closing a pool lingers while handed-over bytes are still being read and
 * acknowledged: until 5 s pass without progress, 120 s at most. */
#define WRK_LINGER_NS (5 * UINT64_C(1000000000))
#define WRK_LINGER_CAP_NS (120 * UINT64_C(1000000000))

typedef struct wrk_conn wrk_conn;
typedef struct wrk_stream wrk_stream;
struct wrk_tls;

enum wrk_stream_state {
  WS_SETUP = 0, /* exchanging the 1-byte / 4-byte setup */
  WS_IDLE,      /* in the pool, waiting for an application */
  WS_TAKEN,     /* relayed to an application fd */
  WS_ENDED,     /* ended by us: out of the pool, no fd; waits for ngtcp2 */
};

struct wrk_list { /* intrusive doubly-linked list node / head */
  struct wrk_list *prev, *next;
};

/* A pooled stream.
 *
 * Ownership of the send buffer (tx) -- the one rule for ending a stream:
 * ngtcp2 0.12 does not copy stream data. Bytes passed to
 * ngtcp2_conn_writev_stream stay referenced (for retransmission) until the
 * peer acknowledges them (cb_acked_stream_data_offset drops them from tx) or
 * ngtcp2 forgets the stream: its stream_close callback (quic_closed), or
 * ngtcp2_conn_del at connection teardown (wrk_stream_on_conn_gone). A
 * RESET_STREAM or STOP_SENDING, in either direction, ends neither. So:
 *   - the struct (and tx) is freed only once quic_closed is set, the
 *     connection is gone, or the stream never reached ngtcp2;
 *   - every other path that ends a stream (a peer reset before the stream
 *     is taken, setup failure, pool full, Flush, pool close, out of
 *     memory, a failed take) calls
 *     wrk_stream_end(): the stream leaves the pool at once (ID map, idle
 *     FIFO, setup list, counts), its fd and rx are released, the QUIC stream
 *     is reset both ways, and the struct stays on conn->streams as WS_ENDED
 *     until stream_close or teardown frees it;
 *   - STOP_SENDING from the peer (seen as NGTCP2_ERR_STREAM_SHUT_WR) stops
 *     reading the application but keeps tx; a peer reset of a taken
 *     stream ends only the peer's direction (the app reads EOF).
 * Lifetime of received bytes: rx is consumed credit not yet granted back; an
 * idle stream whose peer finished (FIN) keeps them in the pool until taken or
 * flushed, even after its QUIC stream or connection closed. */
struct wrk_stream {
  wrk_pool *pool;
  wrk_conn *conn; /* NULL once the connection is gone */
  int64_t sid;
  uint32_t id;
  enum wrk_stream_state state;
  struct wrk_setup setup;
  uint64_t setup_deadline;
  struct wrk_list link;      /* pool: setup list or idle FIFO */
  struct wrk_list tx_link;   /* conn: streams with data to send */
  struct wrk_list conn_link; /* conn->streams */

  /* relay */
  int fd;          /* our end of the socketpair, -1 until taken */
  uv_poll_t *poll; /* on fd, NULL until taken */
  int poll_events;
  struct wrk_bufq rx; /* from QUIC, not yet written to fd */
  /* bytes of rx still charged to the connection's window: an idle
   * stream's (returned when it is taken or drops them); a taken stream's
   * bytes give their connection credit back as they arrive, so one whose
   * app stops reading holds only its own stream window, not its
   * connection's (docs/engine.md "Streams and the relay") */
  size_t rx_conn_held;
  struct wrk_bufq tx;       /* from fd (or setup bytes), not yet acked */
  size_t tx_sent;           /* bytes of tx handed to ngtcp2 */
  uint64_t tx_acked;        /* stream offset acked */
  unsigned rx_fin : 1;      /* peer's FIN received */
  unsigned rx_eof_done : 1; /* SHUT_WR done on fd after all rx */
  unsigned rx_stopped : 1;  /* we sent STOP_SENDING / app closed */
  unsigned tx_eof : 1;      /* app ended its direction (read 0) */
  unsigned tx_fin_sent : 1; /* FIN handed to ngtcp2 */
  unsigned tx_stopped : 1;  /* peer sent STOP_SENDING / reset us */
  unsigned quic_closed : 1; /* ngtcp2 closed the stream */
  unsigned in_tx : 1;       /* on conn->tx_streams */
  unsigned blocked : 1;     /* flow-control blocked */
  unsigned detached : 1;    /* conn gone, still delivering rx to the app */
};

struct wrk_conn {
  wrk_pool *pool;
  ngtcp2_conn *qc;
  gnutls_session_t tls;
  ngtcp2_crypto_conn_ref ref;
  int fd;
  uv_poll_t poll;
  uv_timer_t timer;
  int poll_events;
  struct sockaddr_storage local, peer;
  socklen_t local_len, peer_len;
  ngtcp2_path path;
  size_t max_payload;
  struct wrk_list link;       /* pool->conns */
  struct wrk_list tx_streams; /* streams with sendable data */
  struct wrk_list streams;    /* every stream of this connection */
  struct wrk_list dirty_link; /* pool->dirty: needs a write pass */
  uint8_t *pending;           /* datagrams not yet sent (EAGAIN) */
  size_t pending_len, pending_seg;
  uint64_t created_ns;
  int cc_algo; /* the ngtcp2_cc_algo its ngtcp2_conn was given */
  /* pacing (docs/engine.md "Pacing"): write passes that stopped at the
   * pacing deadline with data, congestion window and credit to send, and
   * the largest burst on the wire: the most bytes sent with no gap of
   * WRK_BURST_GAP_NS between two sends (run_bytes: the current run,
   * last_tx_ns: its last send) */
  uint64_t pacing_waits;
  uint64_t max_burst;
  uint64_t run_bytes, last_tx_ns;
  /* app bytes the connection's streams read ahead of the network
   * (docs/engine.md "Streams and the relay"): twice the congestion window,
   * within QP_STREAM_WINDOW_INIT..max_stream_window (updated by each write
   * pass), shared by its streams; tx_held is the sum of their tx queues,
   * tx_holders how many have bytes there (kept by worker/stream.c) */
  uint64_t tx_limit;
  uint64_t tx_held;
  uint64_t tx_holders;
  int handles_open; /* uv handles still to close */
  unsigned handshake_done : 1;
  unsigned reset_received : 1; /* the peer sent a Stateless Reset */
  unsigned closing : 1;        /* torn down; waiting for handles */
  unsigned dirty : 1;
  unsigned draining : 1; /* peer closed: send nothing more */
  char error[256];
};

struct wrk_waiter {
  struct wrk_list link;
  wrk_pool *pool;
  uint32_t id;
  int any; /* IncomingGet */
  wrk_get_cb cb;
  void *arg;
  uv_timer_t timer;
  int status, fd;
  uint32_t result_id;
};

struct wrk_pool {
  uv_loop_t *loop;
  struct wrk_pool_config cfg;
  char *ca_file, *cert_file, *key_file, *alpn;
  uint8_t *setup_payload;
  struct wrk_tls *tls;
  struct qp_rules rules;
  int capacity;
  uint64_t interval;
  uint64_t errors;
  struct wrk_pool_stats st;
  char last_error[256];

  struct wrk_list conns;
  struct wrk_list setup_streams; /* oldest first: setup deadlines */
  struct wrk_list idle;          /* oldest first */
  int nidle;
  struct wrk_idmap ids;    /* idle streams by ID */
  struct wrk_list waiters; /* IncomingGet / OutgoingGet waiters */
  uint64_t ids_assigned;   /* server: IDs handed out so far */
  uint8_t rnd[256];        /* random bytes for server IDs, used 4 at a time */
  size_t rnd_used;

  uv_timer_t tick; /* client: the manager's rounds; both: the close linger */
  uv_timer_t setup_timer; /* earliest setup deadline */
  uv_idle_t deferred;     /* runs waiter callbacks outside API calls */
  struct wrk_list done_waiters;
  int handles_open;
  uv_prepare_t flusher; /* one write pass per loop turn for dirty conns */
  uv_idle_t kick;       /* keeps the loop spinning while work remains */
  struct wrk_list dirty;
  uint8_t *txbuf; /* GSO batch being built (one per pool) */

  /* client manager round */
  wrk_conn *conn; /* current client connection */
  int round_active, round_want, round_pending, round_created;
  int want_open;     /* open streams at the next flush (credit arrived) */
  uint64_t dial_seq; /* external dial in flight (0: none) */
  /* reconnect back-off and the rate limit of its log lines */
  struct wrk_retry retry;
  uint64_t linger_deadline, linger_cap, linger_progress;
  uint64_t acked_total; /* stream bytes the peer acknowledged */

  /* server listener */
  int lfd;
  uv_poll_t lpoll;
  struct wrk_udp_rx *rx;
  uint8_t secret[32];           /* stateless reset tokens */
  struct qp_ratelimit close_rl; /* stateless refusals */

  unsigned started : 1;
  unsigned closing : 1;
  void (*close_cb)(void *);
  void *close_arg;
};

/* list helpers */
static inline void wrk_list_init(struct wrk_list *h) {
  h->prev = h->next = h;
}
static inline int wrk_list_empty(const struct wrk_list *h) {
  return h->next == h;
}
static inline void wrk_list_push(struct wrk_list *h, struct wrk_list *n) {
  n->prev = h->prev;
  n->next = h;
  h->prev->next = n;
  h->prev = n;
}
static inline void wrk_list_del(struct wrk_list *n) {
  n->prev->next = n->next;
  n->next->prev = n->prev;
  n->prev = n->next = n;
}
#define wrk_container(ptr, type, member)                                       \
  ((type *)(void *)((char *)(ptr)-offsetof(type, member)))

/* conn.c: the constructors own fd from the call on (closed on failure) */
int wrk_conn_client_new(wrk_pool *p, int fd, wrk_conn **out);
int wrk_conn_server_new(wrk_pool *p, int fd, const uint8_t *pkt, size_t len,
                        const struct sockaddr *peer, socklen_t peerlen,
                        wrk_conn **out);
/* Feeds one datagram; may close the connection (returns -ECONNRESET then). */
int wrk_conn_feed(wrk_conn *c, const uint8_t *pkt, size_t len);
/* One write pass. Returns 1 if it stopped with more to send. */
int wrk_conn_write(wrk_conn *c);
/* Sends CONNECTION_CLOSE (app code 0, reason) if possible, then tears down. */
void wrk_conn_close(wrk_conn *c, const char *reason);
int wrk_conn_open_stream(wrk_conn *c, wrk_stream *s);
void wrk_conn_want_send(wrk_conn *c, wrk_stream *s);
/* Schedules a write pass before the loop next waits. */
void wrk_conn_dirty(wrk_conn *c);
/* Extends stream and connection flow-control credit by n consumed bytes. */
void wrk_conn_consumed(wrk_conn *c, int64_t sid, size_t n);
/* Gives back n bytes of the connection's window only. */
void wrk_conn_credit(wrk_conn *c, size_t n);
/* Fills *ci for a connection whose handshake is done (see engine.h). */
void wrk_conn_describe(wrk_conn *c, struct wrk_conn_info *ci);
void wrk_pool_want_flush(wrk_pool *p);
/* The pool's count of things that close later (handles, detached
 * streams): hold before, release when it is done; the last release of a
 * closing pool frees it. Only pool.c writes the count. */
void wrk_pool_hold(wrk_pool *p);
void wrk_pool_release(wrk_pool *p);
/* A stream leaves the pool's lists: its books (idle count, ID map) are
 * pool.c's. */
void wrk_pool_stream_leaves(wrk_pool *p, wrk_stream *s);
uint64_t wrk_now(void);

/* stream.c */
wrk_stream *wrk_stream_new(wrk_pool *p, wrk_conn *c, int64_t sid);
void wrk_stream_on_data(wrk_stream *s, const uint8_t *data, size_t len,
                        int fin);
void wrk_stream_on_acked(wrk_stream *s, uint64_t datalen);
void wrk_stream_on_unblocked(wrk_stream *s); /* the peer granted credit */
/* The app accepted n bytes of a taken stream: its stream credit grows
 * (its connection credit came back on arrival). */
void wrk_stream_credit(wrk_stream *s, size_t n);
/* Every stream may read this much of its app ahead of the network whatever
 * the others hold; beyond it, while the peer's credit does not block it and
 * it holds less than its share of tx_limit (tx_limit / tx_holders). */
#define WRK_TX_MIN_SHARE (64 * 1024)
/* Appends setup bytes (the ID, a payload) to s->tx, counted in its
 * connection's read-ahead. Returns 0 or -ENOMEM. */
int wrk_stream_tx_append(wrk_stream *s, const void *data, size_t len);
void wrk_stream_on_reset(wrk_stream *s);
/* ngtcp2 refused data for the stream: the peer stopped our direction. */
void wrk_stream_on_write_shut(wrk_stream *s);
void wrk_stream_on_quic_close(wrk_stream *s);
void wrk_stream_on_conn_gone(wrk_stream *s);
/* Takes an idle stream out of the pool: creates the socketpair and flushes
 * buffered data. Returns the app's fd (s may be freed already when its QUIC
 * side was finished), or a negative errno (s unchanged, still idle). */
int wrk_stream_take(wrk_stream *s);
/* Ends a stream on any path (see the rule above struct wrk_stream): it
 * leaves the pool, its fd closes, the QUIC stream is reset both ways, and
 * the struct is freed now if ngtcp2 no longer references it, else by
 * stream_close or connection teardown. s must not be used afterwards. */
void wrk_stream_end(wrk_stream *s, uint64_t app_error);
/* 1 if the app wrote bytes (or ended its direction) we have not read yet. */
int wrk_stream_app_pending(wrk_stream *s);

/* pool.c: events from streams and connections */
/* Setup finished. Returns 0 (stream kept) or -1 (refused and freed). */
int wrk_pool_stream_ready(wrk_pool *p, wrk_stream *s);
void wrk_pool_stream_failed(wrk_pool *p, wrk_stream *s, const char *why);
void wrk_pool_conn_handshake(wrk_pool *p, wrk_conn *c);
void wrk_pool_conn_closed(wrk_pool *p, wrk_conn *c, const char *why);
void wrk_pool_conn_streams_left(wrk_pool *p, wrk_conn *c);
void wrk_pool_peer_stream(wrk_pool *p, wrk_conn *c, int64_t sid);
void wrk_pool_arm_setup_timer(wrk_pool *p);

/* listener.c (server pools in standalone mode) */
int wrk_listener_open(wrk_pool *p, char *err, size_t errlen);
/* Handles one datagram as if it had arrived at the listener (fuzzing and
 * tests). Returns 0. */
int wrk_listener_feed(wrk_pool *p, const uint8_t *pkt, size_t len,
                      const struct sockaddr *src, socklen_t srclen);
void wrk_listener_start(wrk_pool *p);
void wrk_listener_close(wrk_pool *p);

#endif
