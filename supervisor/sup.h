/* qpoold's state: pools (with their listeners and latest reports) and the
 * worker processes that run them. One libuv loop, one thread. */
#ifndef QP_SUPERVISOR_SUP_H
#define QP_SUPERVISOR_SUP_H

#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

#include "control.pb-c.h"
#include "ipc.pb-c.h"
#include "shared/frame.h"
#include "shared/handoff.h"
#include "supervisor/config.h"

/* The system CA bundle of client pools in TLS mode 2 without a CA file:
 * $SSL_CERT_FILE when set (as OpenSSL and Go read it), else the file
 * Debian's GnuTLS uses. */
#define SUP_SYSTEM_CA_BUNDLE "/etc/ssl/certs/ca-certificates.crt"
#define SUP_TLS_PEM_MAX (64u << 10) /* a certificate chain or key file */
#define SUP_TLS_CA_MAX (8u << 20)   /* a CA bundle */
#define SUP_RECENT_PEERS 256        /* hand-offs remembered for stragglers */
#define SUP_STRAGGLER_NS (5 * UINT64_C(1000000000))

struct sup_peer {
  struct sockaddr_storage addr;
  socklen_t len;
  uint64_t until_ns;
};

/* A pool's TLS material, read and checked by qpoold (tls.c). */
struct sup_tls {
  char *cert_pem, *key_pem; /* server: both, or neither (self-signed) */
  size_t cert_len, key_len;
  int ca_fd;    /* client, tls_mode 2: the CA bundle in a sealed memfd that
                   travels with PoolAdd; -1 otherwise */
  int ca_count; /* certificates in it */
};

struct sup_pool {
  struct sup_pool_cfg cfg; /* this pool's own copy: reloads replace pools */
  int worker;              /* slot of the worker that runs it */
  int removed;             /* reload dropped it; freed once closed */
  /* server listener */
  int lfd;
  uv_poll_t lpoll;
  struct qp_ratelimit refusals;
  struct sup_peer recent[SUP_RECENT_PEERS];
  unsigned recent_next;
  uint64_t rejected_ip, dropped, handoffs, vn_sent, sessions, resets;
  uint8_t reset_secret[32]; /* server: stateless reset token key */
  uint64_t app_errors; /* AddError / ResetError / ErrorCount (apps own it) */
  struct sup_tls tls;  /* read and checked before any worker starts */
  /* could not start (the worker refused its settings, or they could not be
   * sent): last_error says why; cleared by a report of a running pool */
  int failed;
  /* client: DialRequests since the pool last reported itself connected */
  uint32_t dials_unconnected;
  /* the worker's latest report */
  Qpool__Report report;
  /* the congestion controller the worker last reported for the pool (a
   * static name from shared/pool_params.c), NULL before its first report */
  const char *cc_reported;
  char last_error[256];
  int has_report;
};

/* A frame waiting for a worker's socket to become writable. */
struct sup_out {
  struct sup_out *next;
  int fd; /* owned: closed once sent or dropped */
  size_t len;
  uint64_t queued_ns;
  uint8_t *frame;
};

#define SUP_OUT_MAX_BYTES (16u << 20) /* per worker; past it: EBUSY */
#define SUP_STUCK_NS (10 * UINT64_C(1000000000))

struct sup_worker {
  int slot;
  struct sup_out *out, *out_tail; /* frames the socket did not take yet */
  size_t out_bytes;
  pid_t pid; /* 0 when not running */
  int fd;
  uv_poll_t poll;
  int poll_open;
  uv_timer_t restart;
  uint64_t started_ns;
  unsigned backoff_ms;
  int hello;
  uint64_t seen; /* its once-only messages received (from_worker[] bits) */
  /* pools a reload removed from it: a Report or DialRequest of theirs may
   * still be on its way (dropped, not an offence); the last 16 */
  char removed[16][SUP_NAME_MAX];
  unsigned nremoved;
  int retired; /* no pools left after a reload: not restarted */
  unsigned restarts;
};

struct sup_client;
struct sup_pending;
struct sup_dial;

struct sup {
  uv_loop_t *loop;
  struct sup_config *cfg;
  struct sup_pool **pools; /* by pointer: uv handles must not move */
  size_t npools;
  struct sup_worker **workers;
  int nworkers;
  int argc;
  char **argv;
  /* control socket */
  int ctl_fd;
  uv_poll_t ctl_poll;
  struct sup_client *clients;
  int nclients;
  struct sup_pending *pending; /* requests forwarded to workers */
  struct sup_dial *dials;      /* client targets being resolved */
  uint64_t next_token;
  char worker_path[4096];
  uid_t uid;
  gid_t gid;
  int stopping;
  int probes; /* QPOOL_ALLOW_PROBES=1: SIGUSR2 probes the sandboxes */
  uint64_t stop_deadline;
  uint8_t buf[QP_FRAME_HDR + QP_FRAME_MAX];
  int ready_sent; /* sd_notify READY=1 went out */
  /* metrics endpoint */
  int http_fd;
  uv_poll_t http_poll;
  struct sup_http *http_conns;
  int nhttp;
};

/* control.c: one pool's PoolStats (strings point into the pool) */
void sup_pool_stats(const struct sup *s, const struct sup_pool *p,
                    Qpool__PoolStats *st);
/* Stats of pool `only`, or of every pool when NULL: *n pointers in one
 * malloc'ed block (free() it), NULL when out of memory. */
Qpool__PoolStats **sup_stats_collect(const struct sup *s,
                                     const struct sup_pool *only, size_t *n);

/* metrics.c: the optional HTTP endpoint for Prometheus (metrics_listen) */
int sup_metrics_open(struct sup *s, char *err, size_t errlen);
void sup_metrics_close(struct sup *s);

/* main.c: READY=1 once every worker said Hello and every pool reported */
void sup_check_ready(struct sup *s);

/* workers.c */
int sup_workers_start(struct sup *s);
/* Adds one more worker slot, not started yet (reload with one worker per
 * pool). Returns 0 or -ENOMEM. */
int sup_worker_add(struct sup *s);
/* Starts (spawns) worker w: it gets every pool assigned to it. */
int sup_workers_start_one(struct sup *s, struct sup_worker *w);
/* Sends p's PoolAdd (with its CA bundle's fd in TLS mode 2); a pool whose
 * settings cannot be sent is marked failed (sup_pool_failed). */
void sup_worker_send_pool(struct sup *s, struct sup_worker *w,
                          struct sup_pool *p);
/* Marks p as unable to start, with a sentence: logged at ERROR, shown by
 * qpoolctl status; before READY=1 it stops qpoold's start. */
void sup_pool_failed(struct sup *s, struct sup_pool *p, const char *why);
/* Sends (or queues, when the worker's socket is full) one message; fd (or
 * -1) stays the caller's. Returns 0, or -EBUSY when the queue is full (the
 * message is not sent: the caller answers its requester), -EMSGSIZE (too
 * big for a frame: never sent), or -ENOTCONN. */
int sup_worker_send(struct sup *s, struct sup_worker *w, Qpool__MsgType t,
                    const ProtobufCMessage *m, int fd);
void sup_workers_stop(struct sup *s);
int sup_workers_running(const struct sup *s);
void sup_on_child_exit(struct sup *s, pid_t pid, int status);

/* listener.c */
/* Opens and starts the listener of every server pool (at start). Returns 0,
 * or the first error (err says which pool and why); a second server on an
 * address gets -EADDRINUSE. */
int sup_listeners_open(struct sup *s, char *err, size_t errlen);
/* Binds server pool p's listener, exclusively (shared/udp_listen.h), or
 * takes over the socket a pool removed by the running reload left on the
 * same address (sup_listener_park). Returns 0 with p->lfd set (p owns it),
 * or a negative errno with err ("pool NAME: cannot listen on ADDR: why,
 * naming the holder") and p->lfd -1. Not read until sup_listener_start. */
int sup_listener_open(struct sup_pool *p, char *err, size_t errlen);
void sup_listener_start(struct sup *s, struct sup_pool *p);
/* Reload: pool p is being removed; its socket is kept (ownership moves
 * here) for a pool the same reload adds on that address, since the removed
 * pool's lingering connections keep the port bound and a new exclusive
 * bind would fail. The caller stops polling p->lfd and forgets it. */
void sup_listener_park(struct sup_pool *p);
/* End of a reload: closes the parked sockets no added pool took. */
void sup_listeners_unpark(void);
void sup_listeners_close(struct sup *s);

/* control.c */
int sup_control_open(struct sup *s, char *err, size_t errlen);
void sup_control_close(struct sup *s);
/* A worker answered a Get: forwards the stream fd (owned by the callee) to
 * the application. Returns -EPROTO if nobody asked this worker for it. */
int sup_control_get_result(struct sup *s, struct sup_worker *w,
                           const Qpool__GetResult *m, int fd);
/* A worker answered a ConnInfoGet: forwards the description to the
 * application. Returns 0, or -EPROTO with a reason in *why (static) when
 * the answer breaks the protocol: nobody asked this worker, or a
 * description missing or over the limits of shared/conn_info.h. */
int sup_control_conn_info_result(struct sup *s, struct sup_worker *w,
                                 const Qpool__ConnInfoResult *m,
                                 const char **why);
/* Fails the requests waiting on a worker that died. */
void sup_control_worker_gone(struct sup *s, struct sup_worker *w);
/* A report changed: WATCH subscribers get the new stats. */
void sup_control_notify(struct sup *s);

/* tls.c */
/* Reads and checks pc's TLS files as the worker will use them: a server's
 * certificate chain and key (both or neither; PEM; they must match), a
 * client's CA bundle in tls_mode 2 (its --ca file, else the system bundle).
 * Returns 0 with *t filled (free it with sup_tls_free), or a negative errno
 * with a sentence naming the pool and the file in err (*t then holds
 * nothing). */
int sup_tls_load(const struct sup_pool_cfg *pc, struct sup_tls *t, char *err,
                 size_t errlen);
void sup_tls_free(struct sup_tls *t);
/* Path of the system CA bundle; *from_env (may be NULL) tells whether it
 * came from $SSL_CERT_FILE. */
const char *sup_tls_system_ca(int *from_env);

/* dial.c */
/* Answers worker w's DialRequest seq for client pool p with a UDP socket
 * connected to p's target, or with why not: now for a numeric target, after
 * resolving (without blocking the loop) for a host name. `attempt` counts
 * the dials since the pool was last connected: the attempt starts at that
 * address number (modulo their count), so failed attempts try each of the
 * name's addresses in turn. */
void sup_dial_request(struct sup *s, struct sup_worker *w, struct sup_pool *p,
                      uint64_t seq, uint32_t attempt);
/* Stopping: cancels the resolutions in flight (their answers are dropped). */
void sup_dial_cancel_all(struct sup *s);

/* status.c */
void sup_status_write(const struct sup *s, const char *path);

#endif
