/* qpoold's optional HTTP endpoint for Prometheus (metrics_listen, off by
 * default): GET /metrics answers the same text as `qpoolctl metrics`. One
 * request per connection (Connection: close); at most 16 connections, each
 * with a 4 KiB request head and 5 s to send it; anything else gets a short
 * HTTP error. The endpoint reads nothing but the request line. */
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>

#include "shared/addr.h"
#include "shared/http.h"
#include "shared/log.h"
#include "shared/stats.h"
#include "supervisor/sup.h"

#define HTTP_MAX_CONNS 16
#define HTTP_DEADLINE_MS 5000

struct sup_http {
  struct sup_http *next;
  struct sup *s;
  int fd;
  uv_poll_t poll;
  uv_timer_t timer;
  uint8_t in[QP_HTTP_HEAD_MAX];
  size_t inlen;
  char *out; /* the whole response once the request is read */
  size_t outlen, outoff;
  int closing, handles;
};

static void on_handle_closed(uv_handle_t *h) {
  struct sup_http *c = h->data;
  if (--c->handles == 0) {
    free(c->out);
    free(c);
  }
}

static void conn_close(struct sup_http *c) {
  if (c->closing)
    return;
  c->closing = 1;
  struct sup *s = c->s;
  for (struct sup_http **pp = &s->http_conns; *pp; pp = &(*pp)->next)
    if (*pp == c) {
      *pp = c->next;
      break;
    }
  s->nhttp--;
  uv_poll_stop(&c->poll);
  uv_timer_stop(&c->timer);
  close(c->fd);
  uv_close((uv_handle_t *)&c->poll, on_handle_closed);
  uv_close((uv_handle_t *)&c->timer, on_handle_closed);
}

/* The metrics text of every pool, malloc'ed (NULL when out of memory). */
static char *metrics_text(struct sup *s, size_t *len) {
  char *buf = NULL;
  FILE *f = open_memstream(&buf, len);
  if (!f)
    return NULL;
  size_t n;
  Qpool__PoolStats **ptrs = sup_stats_collect(s, NULL, &n);
  if (ptrs)
    qp_stats_prometheus(f, ptrs, n);
  int bad = !ptrs || ferror(f);
  free(ptrs);
  if (fclose(f) != 0 || bad) {
    free(buf);
    return NULL;
  }
  return buf;
}

static void on_conn(uv_poll_t *h, int status, int events);

static void respond(struct sup_http *c, int code, const char *reason,
                    const char *type, const char *body, size_t blen,
                    int head_only) {
  char hdr[256];
  int n = snprintf(hdr, sizeof(hdr),
                   "HTTP/1.1 %d %s\r\nContent-Type: %s\r\n"
                   "Content-Length: %zu\r\nConnection: close\r\n\r\n",
                   code, reason, type, blen);
  size_t total = (size_t)n + (head_only ? 0 : blen);
  c->out = malloc(total);
  if (!c->out) {
    conn_close(c);
    return;
  }
  memcpy(c->out, hdr, (size_t)n);
  if (!head_only)
    memcpy(c->out + n, body, blen);
  c->outlen = total;
  c->outoff = 0;
  uv_poll_start(&c->poll, UV_WRITABLE, on_conn);
}

static void handle(struct sup_http *c, const struct qp_http_req *r) {
  static const char text[] = "text/plain; charset=utf-8";
  if (r->method == QP_HTTP_OTHER) {
    static const char b[] = "only GET and HEAD are served here\n";
    respond(c, 405, "Method Not Allowed", text, b, sizeof(b) - 1, 0);
    return;
  }
  int head = r->method == QP_HTTP_HEAD;
  if (strcmp(r->path, "/metrics") != 0) {
    static const char b[] = "qpoold serves Prometheus metrics at /metrics\n";
    respond(c, 404, "Not Found", text, b, sizeof(b) - 1, head);
    return;
  }
  size_t len = 0;
  char *body = metrics_text(c->s, &len);
  if (!body) {
    static const char b[] = "out of memory\n";
    respond(c, 500, "Internal Server Error", text, b, sizeof(b) - 1, head);
    return;
  }
  respond(c, 200, "OK", QP_METRICS_CONTENT_TYPE, body, len, head);
  free(body);
}

static void on_conn(uv_poll_t *h, int status, int events) {
  struct sup_http *c = h->data;
  if (status < 0) {
    conn_close(c);
    return;
  }
  if (c->out) { /* writing the response */
    if (!(events & UV_WRITABLE))
      return;
    ssize_t n = send(c->fd, c->out + c->outoff, c->outlen - c->outoff,
                     MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
      return;
    if (n <= 0 || (c->outoff += (size_t)n) == c->outlen)
      conn_close(c);
    return;
  }
  ssize_t n =
      recv(c->fd, c->in + c->inlen, sizeof(c->in) - c->inlen, MSG_DONTWAIT);
  if (n < 0 && (errno == EAGAIN || errno == EINTR))
    return;
  if (n <= 0) {
    conn_close(c);
    return;
  }
  c->inlen += (size_t)n;
  struct qp_http_req r;
  int rc = qp_http_parse(c->in, c->inlen, &r);
  if (rc == 0)
    return; /* more to come */
  uv_poll_stop(&c->poll);
  if (rc < 0) {
    static const char b[] = "malformed request\n";
    static const char big[] = "request head too large\n";
    if (rc == -EMSGSIZE)
      respond(c, 431, "Request Header Fields Too Large",
              "text/plain; charset=utf-8", big, sizeof(big) - 1, 0);
    else
      respond(c, 400, "Bad Request", "text/plain; charset=utf-8", b,
              sizeof(b) - 1, 0);
    return;
  }
  handle(c, &r);
}

static void on_deadline(uv_timer_t *t) {
  conn_close(t->data); /* too slow: request or response unfinished */
}

static void on_accept(uv_poll_t *h, int status, int events) {
  struct sup *s = h->data;
  (void)status, (void)events;
  for (int i = 0; i < 16; i++) {
    int fd = accept4(s->http_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0)
      return;
    struct sup_http *c = s->nhttp < HTTP_MAX_CONNS && !s->stopping
                             ? calloc(1, sizeof(*c))
                             : NULL;
    if (!c) { /* busy: the scraper retries */
      close(fd);
      continue;
    }
    c->s = s;
    c->fd = fd;
    c->handles = 2;
    uv_poll_init_socket(s->loop, &c->poll, fd);
    c->poll.data = c;
    uv_timer_init(s->loop, &c->timer);
    c->timer.data = c;
    uv_poll_start(&c->poll, UV_READABLE, on_conn);
    uv_timer_start(&c->timer, on_deadline, HTTP_DEADLINE_MS, 0);
    c->next = s->http_conns;
    s->http_conns = c;
    s->nhttp++;
  }
}

static int is_loopback(const struct sockaddr_storage *ss) {
  if (ss->ss_family == AF_INET)
    return (ntohl(((const struct sockaddr_in *)ss)->sin_addr.s_addr) >> 24) ==
           127;
  if (ss->ss_family == AF_INET6)
    return IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)ss)->sin6_addr);
  return 0;
}

int sup_metrics_open(struct sup *s, char *err, size_t errlen) {
  s->http_fd = -1;
  const struct sup_config *cfg = s->cfg;
  if (!cfg->metrics_len)
    return 0;
  const struct sockaddr *sa = (const struct sockaddr *)&cfg->metrics_addr;
  int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int one = 1;
  if (fd < 0 ||
      setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
      bind(fd, sa, cfg->metrics_len) < 0 || listen(fd, 16) < 0) {
    int e = errno;
    snprintf(err, errlen, "metrics_listen %s: %s", cfg->metrics_text,
             strerror(e));
    if (fd >= 0)
      close(fd);
    return -e;
  }
  s->http_fd = fd;
  uv_poll_init_socket(s->loop, &s->http_poll, fd);
  s->http_poll.data = s;
  uv_poll_start(&s->http_poll, UV_READABLE, on_accept);
  if (!is_loopback(&cfg->metrics_addr))
    qp_warn("metrics_listen %s is not a loopback address: anyone who can "
            "reach it reads every pool's counters",
            cfg->metrics_text);
  qp_info("metrics on http://%s/metrics", cfg->metrics_text);
  return 0;
}

void sup_metrics_close(struct sup *s) {
  if (s->http_fd < 0)
    return;
  uv_poll_stop(&s->http_poll);
  uv_close((uv_handle_t *)&s->http_poll, NULL);
  close(s->http_fd);
  s->http_fd = -1;
  while (s->http_conns)
    conn_close(s->http_conns);
}
