/* Client pools' dials: a worker's DialRequest is answered with a UDP socket
 * connected to the pool's target (DialReply + fd), or with the reason there
 * is none. A numeric target was parsed with the configuration; a host name
 * is resolved on every dial with uv_getaddrinfo (the loop never waits for
 * DNS), so an address change is followed at the next reconnect, and a name
 * that does not resolve (yet) is only a failed attempt, which the worker
 * retries with its back-off. */
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "shared/addr.h"
#include "shared/log.h"
#include "supervisor/sup.h"

#define DIAL_ADDRS_MAX 16 /* addresses of one name tried in turn */

/* A name being resolved for one DialRequest. */
struct sup_dial {
  uv_getaddrinfo_t req;
  struct sup_dial *next;
  struct sup *s;
  int slot;  /* the worker that asked ... */
  pid_t pid; /* ... in this incarnation (a restarted one did not ask) */
  uint64_t seq;
  uint32_t attempt;
  char pool[SUP_NAME_MAX];
  char target[sizeof(((struct sup_pool_cfg *)0)->addr_text)];
  char host[256];
};

static void reply(struct sup *s, struct sup_worker *w, const char *pool,
                  uint64_t seq, int fd, const char *err) {
  Qpool__DialReply r = QPOOL__DIAL_REPLY__INIT;
  r.pool = (char *)pool;
  r.seq = seq;
  r.ok = fd >= 0;
  r.error = fd < 0 && err && *err ? (char *)err : NULL;
  if (fd < 0)
    qp_debug("pool %s: dial failed: %s", pool, err ? err : "?");
  sup_worker_send(s, w, QPOOL__MSG_TYPE__MSG_DIAL_REPLY, &r.base, fd);
  if (fd >= 0)
    close(fd); /* the worker has its copy (or is gone) */
}

/* Connects a UDP socket to the first of n addresses that takes it, starting
 * at number `attempt` modulo n (each failed attempt starts one further on),
 * and answers the worker. */
static void connect_and_reply(struct sup *s, struct sup_worker *w,
                              const char *pool, uint64_t seq, uint32_t attempt,
                              const struct sockaddr *const *addrs,
                              const socklen_t *lens, size_t n) {
  char err[256] = "no address to dial";
  char a[QP_ADDR_STRLEN];
  int fd = -1;
  for (size_t i = 0; i < n && fd < 0; i++) {
    const struct sockaddr *sa = addrs[(attempt + i) % n];
    qp_addr_format(sa, a, sizeof(a));
    qp_debug("pool %s: dialing %s (attempt %u since connected)", pool, a,
             attempt);
    fd = socket(sa->sa_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd >= 0 && connect(fd, sa, lens[(attempt + i) % n]) == 0)
      break;
    snprintf(err, sizeof(err), "cannot reach %s: %s", a, strerror(errno));
    if (fd >= 0)
      close(fd);
    fd = -1;
  }
  reply(s, w, pool, seq, fd, err);
}

static struct sup_pool *client_pool(struct sup *s, int slot, const char *name,
                                    const char *target) {
  for (size_t i = 0; i < s->npools; i++) {
    struct sup_pool *p = s->pools[i];
    if (p->worker == slot && !p->cfg.server && !p->removed &&
        !strcmp(p->cfg.name, name) && !strcmp(p->cfg.addr_text, target))
      return p;
  }
  return NULL;
}

static void dial_unlink(struct sup *s, struct sup_dial *d) {
  for (struct sup_dial **pp = &s->dials; *pp; pp = &(*pp)->next)
    if (*pp == d) {
      *pp = d->next;
      return;
    }
}

static void on_resolved(uv_getaddrinfo_t *req, int status,
                        struct addrinfo *res) {
  struct sup_dial *d = req->data;
  struct sup *s = d->s;
  dial_unlink(s, d);
  struct sup_worker *w = d->slot < s->nworkers ? s->workers[d->slot] : NULL;
  /* the asker may be gone (restarted, pool removed or changed, stopping):
   * then nobody waits for this answer */
  if (s->stopping || status == UV_EAI_CANCELED || !w || w->pid != d->pid ||
      !client_pool(s, d->slot, d->pool, d->target)) {
    uv_freeaddrinfo(res);
    free(d);
    return;
  }
  const struct sockaddr *addrs[DIAL_ADDRS_MAX];
  socklen_t lens[DIAL_ADDRS_MAX];
  size_t n = 0;
  for (struct addrinfo *ai = status == 0 ? res : NULL; ai && n < DIAL_ADDRS_MAX;
       ai = ai->ai_next)
    if (ai->ai_family == AF_INET || ai->ai_family == AF_INET6) {
      addrs[n] = ai->ai_addr;
      lens[n++] = ai->ai_addrlen;
    }
  if (n == 0) {
    char err[512];
    snprintf(err, sizeof(err), "cannot resolve %s: %s", d->host,
             status < 0 ? uv_strerror(status) : "no IPv4 or IPv6 address");
    reply(s, w, d->pool, d->seq, -1, err);
  } else {
    connect_and_reply(s, w, d->pool, d->seq, d->attempt, addrs, lens, n);
  }
  uv_freeaddrinfo(res);
  free(d);
}

void sup_dial_request(struct sup *s, struct sup_worker *w, struct sup_pool *p,
                      uint64_t seq, uint32_t attempt) {
  const struct sup_pool_cfg *c = &p->cfg;
  if (s->stopping) { /* no new resolution to wait for at exit */
    reply(s, w, c->name, seq, -1, "qpoold is stopping");
    return;
  }
  if (c->addr_len > 0) { /* numeric: parsed with the configuration */
    const struct sockaddr *sa = (const struct sockaddr *)&c->addr;
    connect_and_reply(s, w, c->name, seq, attempt, &sa, &c->addr_len, 1);
    return;
  }
  char err[512];
  unsigned port;
  struct sup_dial *d = calloc(1, sizeof(*d));
  if (!d) {
    reply(s, w, c->name, seq, -1, "out of memory");
    return;
  }
  if (qp_addr_split(c->addr_text, d->host, sizeof(d->host), &port, 0) < 0) {
    snprintf(err, sizeof(err), "\"%s\" is not an address", c->addr_text);
    reply(s, w, c->name, seq, -1, err);
    free(d);
    return;
  }
  char service[8];
  snprintf(service, sizeof(service), "%u", port);
  struct addrinfo hints;
  memset(&hints, 0, sizeof(hints));
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_DGRAM;
  hints.ai_protocol = IPPROTO_UDP;
  hints.ai_flags = AI_NUMERICSERV;
  d->s = s;
  d->slot = w->slot;
  d->pid = w->pid;
  d->seq = seq;
  d->attempt = attempt;
  d->req.data = d;
  snprintf(d->pool, sizeof(d->pool), "%s", c->name);
  snprintf(d->target, sizeof(d->target), "%s", c->addr_text);
  qp_debug("pool %s: resolving %s (attempt %u since connected)", c->name,
           d->host, attempt);
  int rc =
      uv_getaddrinfo(s->loop, &d->req, on_resolved, d->host, service, &hints);
  if (rc < 0) {
    snprintf(err, sizeof(err), "cannot resolve %s: %s", d->host,
             uv_strerror(rc));
    reply(s, w, c->name, seq, -1, err);
    free(d);
    return;
  }
  d->next = s->dials;
  s->dials = d;
}

void sup_dial_cancel_all(struct sup *s) {
  for (struct sup_dial *d = s->dials; d; d = d->next)
    (void)uv_cancel((uv_req_t *)&d->req); /* a running one finishes */
}
