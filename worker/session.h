/* Application sessions handed to the worker by qpoold (see session.c). */
#ifndef QP_WORKER_SESSION_H
#define QP_WORKER_SESSION_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "control.pb-c.h"
#include "worker/engine.h"

struct wrk_session;

struct wrk_sessions {
  uv_loop_t *loop;
  struct wrk_session *list;
  int count;
  /* finds a pool by name (NULL: gone or not started) */
  wrk_pool *(*lookup)(const char *name, void *arg);
  void *arg;
  uint8_t *buf; /* frame buffer, shared: the loop is single-threaded */
  size_t bufsize;
};

void wrk_sessions_init(struct wrk_sessions *ss, uv_loop_t *loop,
                       wrk_pool *(*lookup)(const char *, void *), void *arg,
                       uint8_t *buf, size_t bufsize);

/* Serves the application on fd (a SOCK_SEQPACKET socket, now owned here)
 * for pool `pool`. Returns 0, or a negative errno after closing fd (too many
 * sessions, no memory). */
int wrk_session_add(struct wrk_sessions *ss, const char *pool, int fd);

/* OP_CONN_INFO, for sessions and the supervisor's path alike. */
struct wrk_conn_info_msg {
  struct wrk_conn_info ci;
  ProtobufCBinaryData certs[QP_CONN_CERTS_MAX];
  Qpool__ConnInfo m; /* points into ci and certs, which point into the
                        connection: send it before the loop runs again */
  char why[160];     /* the sentence when it fails */
};

/* Describes the connection of stream *id of p (id NULL: the pool's
 * connection) in out->m. Returns 0, or -ESRCH / -ENOLINK (as
 * wrk_pool_conn_info) with a sentence in out->why. */
int wrk_conn_info_msg(wrk_pool *p, const uint32_t *id,
                      struct wrk_conn_info_msg *out);

/* Ends every session (their pending gets answer nowhere). */
void wrk_sessions_close(struct wrk_sessions *ss);

#endif
