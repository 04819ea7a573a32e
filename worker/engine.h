/* The pool engine: np-quic client and server pools on one libuv loop. It runs
 * inside qpool-worker, and in one process for tests and benchmarks. Every
 * function must be called on the loop's thread. Errors are negative errno. */
#ifndef QP_WORKER_ENGINE_H
#define QP_WORKER_ENGINE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

#include "shared/addr.h"
#include "shared/conn_info.h"
#include "shared/ipfilter.h"
#include "shared/settings.h"
#include "shared/stream_id.h" /* the ID text form */

#define WRK_ID_CONTROL UINT32_C(0) /* "00000000": first ID a server assigns */
#define WRK_NAME_MAX 64

typedef struct wrk_pool wrk_pool;

enum wrk_role { WRK_CLIENT = 1, WRK_SERVER = 2 };

struct wrk_pool_config {
  enum wrk_role role;
  char name[WRK_NAME_MAX];
  /* every setting of shared/settings.h's table (defaults from there) */
  struct qp_pool_settings set;

  /* client */
  const char *ca_file; /* mode 2: trust these CAs (NULL: system) */
  struct sockaddr_storage target;
  socklen_t target_len;

  /* server */
  struct sockaddr_storage listen;
  socklen_t listen_len;
  const char *cert_file, *key_file; /* NULL: self-signed in memory */
  struct qp_ipfilter client_ip;     /* empty: anyone */

  /* privilege-separated mode (qpool-worker): no socket() in the engine */
  int external_listener; /* server: connections arrive by wrk_pool_adopt */
  /* client: asks for a socket connected to the target; the answer comes
   * back by wrk_pool_dial_done(p, seq, ...). NULL: the engine dials. */
  void (*dial)(wrk_pool *p, uint64_t seq, void *arg);
  void *dial_arg;
  const char *cert_pem, *key_pem, *ca_pem; /* TLS material as PEM bytes */
  size_t cert_pem_len, key_pem_len, ca_pem_len;

  /* both */
  /* key of the stateless reset tokens (NULL: random); qpoold keeps it
   * across worker restarts so that it can reset orphaned connections */
  const uint8_t *reset_secret;
  size_t reset_secret_len; /* 32 */
  /* test knobs: not for production use */
  const char *alpn;             /* NULL: "np-quic" */
  const uint8_t *setup_payload; /* client: bytes sent on a new stream */
  size_t setup_payload_len;     /*   (default: one 0x00) */
  int setup_silent;             /* client: open streams, send no byte */
};

/* Counters a pool reports (all monotonic except the gauges marked). */
struct wrk_pool_stats {
  uint64_t streams_created;     /* got their ID (client) / were given one */
  uint64_t streams_taken;       /* handed to an application */
  uint64_t streams_failed;      /* setup failed or timed out */
  uint64_t streams_refused;     /* server: pool full, stream closed */
  uint64_t setup_errors;        /* peer broke the 1-byte/4-byte exchange */
  uint64_t bytes_in, bytes_out; /* stream payload to / from applications */
  uint64_t conns_accepted, conns_failed, conns_closed;
  uint64_t rejected_ip;       /* server: refused before any handshake */
  uint64_t dropped_datagrams; /* listener: malformed or unroutable */
  uint64_t dials;             /* client: connection attempts */
  int connected;              /* gauge: 1 if a connection is up (client) */
  int conns;                  /* gauge: open connections */
};

/* Fills cfg: the settings at their defaults (shared/settings.c), the rest
 * empty. */
void wrk_pool_config_init(struct wrk_pool_config *cfg, enum wrk_role role);

/* Creates a pool on loop. The config is copied (strings too). Loads or makes
 * TLS material; a server binds its listener here (so an address in use is
 * reported at once). Returns 0 and *out, or a negative errno with *err
 * (may be NULL) describing it; nothing is left allocated on failure. */
int wrk_pool_new(uv_loop_t *loop, const struct wrk_pool_config *cfg,
                 wrk_pool **out, char *err, size_t errlen);

/* Starts the manager (client: dial and fill; server: accept). Idempotent. */
int wrk_pool_start(wrk_pool *p);

/* Result of a get: status 0 with id and fd (the caller owns fd: one end of an
 * AF_UNIX SOCK_STREAM socketpair in blocking mode, close it when done), or a
 * negative status (-ETIMEDOUT, -ECANCELED when the pool closes) with fd -1.
 * The callback runs on the loop, never inside the call that registered it. */
typedef void (*wrk_get_cb)(wrk_pool *p, int status, uint32_t id, int fd,
                           void *arg);

/* Server: any idle stream, oldest first. timeout_ms 0 = only if one is idle
 * now. Returns 0 (callback will run) or a negative errno (it will not). */
int wrk_pool_incoming_get(wrk_pool *p, uint64_t timeout_ms, wrk_get_cb cb,
                          void *arg);
/* Client: the stream with this id, waiting for it to arrive. */
int wrk_pool_outgoing_get(wrk_pool *p, uint32_t id, uint64_t timeout_ms,
                          wrk_get_cb cb, void *arg);

/* Withdraws a get whose requester left: its callback runs (deferred) with
 * -ECANCELED, and no stream is taken for it. Returns 0, or -ENOENT when no
 * pending get has this arg (already answered). */
int wrk_pool_get_cancel(wrk_pool *p, void *arg);

int wrk_pool_ready(const wrk_pool *p);  /* 1 once started */
int wrk_pool_active(const wrk_pool *p); /* idle streams in the pool */
int wrk_pool_capacity(const wrk_pool *p);
uint64_t wrk_pool_interval(const wrk_pool *p); /* ns; 0 for servers */
void wrk_pool_flush(wrk_pool *p);
void wrk_pool_add_error(wrk_pool *p);
uint64_t wrk_pool_error_count(const wrk_pool *p);
void wrk_pool_reset_error(wrk_pool *p);
void wrk_pool_stats(const wrk_pool *p, struct wrk_pool_stats *st);
const char *wrk_pool_name(const wrk_pool *p);
/* The congestion controller (ngtcp2_cc_algo) its connections get. */
int wrk_pool_cc_algo(const wrk_pool *p);
/* The max_stream_window (bytes) its connections get. */
uint64_t wrk_pool_max_stream_window(const wrk_pool *p);
/* Last connection error of a client pool in words ("" if none). */
const char *wrk_pool_last_error(const wrk_pool *p);
/* Up to n idle IDs (oldest first on servers). Returns how many. */
size_t wrk_pool_idle_ids(const wrk_pool *p, uint32_t *ids, size_t n);
/* The bound listener address (servers), e.g. after binding port 0. */
int wrk_pool_local_addr(const wrk_pool *p, struct sockaddr_storage *ss,
                        socklen_t *len);

/* A QUIC connection as its peer's identity and the path describe it. */
struct wrk_conn_info {
  char local[QP_ADDR_STRLEN], remote[QP_ADDR_STRLEN]; /* "1.2.3.4:5" */
  char alpn[QP_CONN_STR_MAX + 1];                     /* "np-quic" */
  const char *version, *cipher; /* GnuTLS's static names: "TLS1.3", ... */
  uint64_t rtt_ns;              /* smoothed RTT */
  /* the ngtcp2_cc_algo the connection was created with, and ngtcp2's live
   * counters (ngtcp2_conn_stat): bytes, bytes per second */
  int cc_algo;
  uint64_t cwnd, bytes_in_flight, pacing_rate_sec, delivery_rate_sec;
  /* the connection's pacing counters and its streams' read-ahead now
   * (struct wrk_conn: pacing_waits, max_burst, tx_limit) */
  uint64_t pacing_waits, max_burst, read_ahead;
  /* the peer's chain as it sent it, leaf first (none from a client); the
   * bytes belong to the connection: valid until the loop runs again */
  struct {
    const uint8_t *der;
    size_t len;
  } certs[QP_CONN_CERTS_MAX];
  size_t ncerts;
  int truncated; /* the chain had more certificates or bytes than fit */
};

/* Describes the connection that carries stream *id (idle or taken; when the
 * ID repeats, a taken stream before an idle one, the newest connection
 * first), or with id NULL the pool's connection (a client's current one, a
 * server's newest), once its handshake is done. Fills *ci. Returns 0,
 * -ESRCH (no stream with that ID on an open connection) or -ENOLINK (no
 * connection now). */
int wrk_pool_conn_info(wrk_pool *p, const uint32_t *id,
                       struct wrk_conn_info *ci);

/* Stops the manager, fails waiters with -ECANCELED, flushes, closes every
 * connection with "pool closed" and the listener; cb (may be NULL) runs once
 * everything is released, after which p is freed. */
void wrk_pool_close(wrk_pool *p, void (*cb)(void *arg), void *arg);

/* Server pools with external_listener: adopts a UDP socket bound to the
 * listen address and connected to the peer, with the datagrams already read
 * for it (the first must be the client's Initial). The pool owns fd from the
 * call on. Returns 0 or a negative errno (fd closed then). */
int wrk_pool_adopt(wrk_pool *p, int fd, const uint8_t *const *dgrams,
                   const size_t *lens, size_t n);
/* A datagram for an adopted peer that reached the listener after the
 * hand-off. Returns 0, or -ENOENT when no connection has that peer. */
int wrk_pool_datagram(wrk_pool *p, const struct sockaddr *peer,
                      const uint8_t *data, size_t len);
/* Answer to cfg.dial: fd >= 0 (owned by the pool from now on), or a negative
 * errno with a sentence in err. Stale seqs are ignored (fd closed). */
void wrk_pool_dial_done(wrk_pool *p, uint64_t seq, int fd, const char *err);

#endif
