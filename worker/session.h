/* Application sessions handed to the worker by qpoold (see session.c). */
#ifndef QP_WORKER_SESSION_H
#define QP_WORKER_SESSION_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

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

/* Ends every session (their pending gets answer nowhere). */
void wrk_sessions_close(struct wrk_sessions *ss);

#endif
