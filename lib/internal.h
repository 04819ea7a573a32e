/* libqpool internals shared by attached.c (the control and session
 * channels) and embedded.c (the private qpoold). */
#ifndef QP_LIB_INTERNAL_H
#define QP_LIB_INTERNAL_H

#include <pthread.h>
#include <stdint.h>
#include <sys/types.h>

#include "qpool.h"
#include "shared/settings.h"

struct chan;

/* An embedded pool's settings and its private qpoold (embedded.c). */
struct qp_embedded {
  int server;
  /* qpoold's flags that are not settings (MODE, --target/--listen, TLS
   * files, --client-ip), NULL-terminated */
  char **argv;
  int argc;
  struct qp_pool_settings set;   /* the settings (shared/settings.h) */
  unsigned char given[QP_SET_N]; /* set by a constructor or qp_pool_set */
  int has_ca;                    /* client: --ca given (qp_client_pool_tls) */
  int state;                     /* 0 not started, 1 starting, 2 running */
  pid_t pid;                     /* qpoold's, 0 when none */
  int lifeline;                  /* our end of its --lifeline pipe */
  char dir[80];
  char control[100];
};

struct qp_pool {
  char *name;
  pthread_mutex_t mu; /* everything below, and the channels' state */
  pthread_cond_t idle_cv;
  int closing;
  int users; /* calls in progress */
  uint64_t next_tag;
  struct chan *ctl;        /* NULL until attached (embedded: manager started) */
  struct chan *sess;       /* the worker session: NULL, alive, or dead */
  uint64_t sess_retry_ms;  /* no new session before this time */
  int sess_off;            /* qpoold has no sessions, or QPOOL_NO_SESSION=1 */
  struct qp_embedded *emb; /* NULL in attached mode */
  /* embedded mode's part of qp_close (attached.c calls it, knowing nothing
   * of embedded.c: the files do not call each other in a circle) */
  void (*on_close)(qp_pool *p);
  char *path; /* the control socket, once connected */
};

uint64_t qp__now_ms(void);
qp_pool *qp__pool_alloc(const char *name);
void qp__pool_free(qp_pool *p);
/* Connects p to qpoold's control socket at path, checks the pool (stats)
 * and opens a worker session. 0 or a negative errno. */
int qp__connect(qp_pool *p, const char *path, uint64_t deadline_ms);
/* Ends every call on p and disconnects (the channels are freed). */
void qp__disconnect(qp_pool *p);
/* Frees p's channels after a failed start (no call may be in progress). */
void qp__reset(qp_pool *p);
/* Counts a call in progress (qp_close waits for it): 0 or -ECANCELED. */
int qp__enter(qp_pool *p);
void qp__leave(qp_pool *p);

/* embedded.c */
int qp__embedded_start(qp_pool *p);
void qp__embedded_stop(qp_pool *p);
void qp__embedded_free(struct qp_embedded *e);
/* The private qpoold's pool flags: e->argv, then "--flag=value" for each
 * given setting. A NULL-terminated array to free with qp__args_free, or
 * NULL (out of memory). */
char **qp__embedded_args(const struct qp_embedded *e);
void qp__args_free(char **args);

#endif
