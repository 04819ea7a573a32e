/* qpool-tunnel: a NodePass-style TCP tunnel over an np-quic stream pool,
 * built on qpool.h (embedded mode) only.
 *
 *   server: a server pool on --tunnel; user TCP connections on --listen.
 *           For each one: IncomingGet, tell the client {seq, id, remote}
 *           over the control stream 00000000, splice user <-> stream.
 *   client: a client pool dialing --tunnel; takes 00000000 as its control
 *           stream; for each message: OutgoingGet(id), connect --forward,
 *           splice stream <-> target.
 *
 * Control stream protocol (text lines, at most 512 bytes, "QPT1" first):
 *   server: QPT1 HELLO <snonce>                 32 hex digits
 *   client: QPT1 AUTH <cnonce> <mac>            mac = HMAC-SHA256(psk,
 *                                               "client|snonce|cnonce")
 *   server: QPT1 OK <mac>                       HMAC(psk, "server|...")
 *        or QPT1 ERROR <reason>                 (then it closes)
 *   server: QPT1 OPEN <seq> <id> <remote> <mac> HMAC(key, "open|seq|id|
 *                                               remote"), seq = 1, 2, ...
 * key = HMAC(psk, "session|snonce|cnonce"). Each side proves it knows the
 * pre-shared key without sending it; OPENs cannot be forged, replayed or
 * reordered by anyone without it.
 *
 * The control stream is the first stream the server pool ever assigns. When
 * it dies, the server starts a new pool (a new 00000000) and the client
 * pool, dropped by the old one, reconnects to it and takes the new one. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <gnutls/crypto.h>

#include "qpool.h"
#include "shared/addr.h"
#include "shared/duration.h"
#include "shared/log.h"
#include "shared/settings.h"
#include "shared/size.h"

#define LINE_MAX_LEN 512
#define NONCE_LEN 16
#define MAC_LEN 32
#define TAKE_MS 5000          /* a stream for a user connection */
#define CONNECT_MS 5000       /* the forward target */
#define RELAY_BUF (64 * 1024) /* per direction */

static struct {
  int server;
  const char *tunnel, *listen, *forward;
  char *psk;
  size_t psk_len;
  /* the pool's settings (shared/settings.h), the tunnel's defaults
   * (tunnel_defaults) unless given */
  struct qp_pool_settings set;
  unsigned char given[QP_SET_N];
  const char *cert, *key, *client_ip;
  atomic_int stop;
  atomic_long conns, conns_total, failures;
} O;

/* Where the tunnel's pool differs from qpoold's defaults: more streams
 * ready, faster refills, a shorter keep-alive (NATs on the way). */
static void tunnel_defaults(struct qp_pool_settings *s) {
  qp_pool_settings_defaults(s);
  s->min_cap = 8;
  s->max_cap = 64;
  s->min_ivl_ns = 100 * 1000000ull;
  s->max_ivl_ns = 1000 * 1000000ull;
  s->keep_alive_ns = 5 * 1000000000ull;
}

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void die(const char *fmt, ...) {
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  qp_err("%s", msg);
  exit(1);
}

static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ---- crypto helpers ----------------------------------------------------- */

static void hex(const uint8_t *b, size_t n, char *out) {
  static const char d[] = "0123456789abcdef";
  for (size_t i = 0; i < n; i++) {
    out[2 * i] = d[b[i] >> 4];
    out[2 * i + 1] = d[b[i] & 15];
  }
  out[2 * n] = 0;
}

static void mac(const void *key, size_t keylen, const char *msg,
                char out[2 * MAC_LEN + 1]) {
  uint8_t m[MAC_LEN];
  if (gnutls_hmac_fast(GNUTLS_MAC_SHA256, key, keylen, msg, strlen(msg), m) < 0)
    die("HMAC-SHA256 failed");
  hex(m, sizeof(m), out);
}

/* Constant-time comparison of two MACs in hex. */
static int mac_equal(const char *a, const char *b) {
  size_t la = strlen(a), lb = strlen(b);
  unsigned diff = la != lb;
  for (size_t i = 0; i < la && i < lb; i++)
    diff |= (unsigned)(a[i] ^ b[i]);
  return diff == 0;
}

/* The handshake's values: HMAC(psk, "LABEL|snonce|cnonce"), for the
 * labels client (its proof), server (the server's proof) and session (the
 * key of the OPEN messages). */
static void derive(const char *label, const char *sn, const char *cn,
                   char out[2 * MAC_LEN + 1]) {
  char msg[256];
  snprintf(msg, sizeof(msg), "%s|%s|%s", label, sn, cn);
  mac(O.psk, O.psk_len, msg, out);
}

static void nonce(char out[2 * NONCE_LEN + 1]) {
  uint8_t b[NONCE_LEN];
  if (gnutls_rnd(GNUTLS_RND_NONCE, b, sizeof(b)) < 0)
    die("no random bytes");
  hex(b, sizeof(b), out);
}

static int is_hex(const char *s, size_t n) {
  if (strlen(s) != n)
    return 0;
  for (size_t i = 0; i < n; i++)
    if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
      return 0;
  return 1;
}

/* ---- lines on the control stream ---------------------------------------- */

struct ctl {
  int fd;
  char buf[LINE_MAX_LEN * 2];
  size_t len;
  pthread_mutex_t wmu;
};

static int ctl_write(struct ctl *c, const char *line) {
  size_t n = strlen(line);
  int rc = 0;
  pthread_mutex_lock(&c->wmu);
  for (size_t off = 0; off < n;) {
    ssize_t k = send(c->fd, line + off, n - off, MSG_NOSIGNAL);
    if (k < 0 && errno == EINTR)
      continue;
    if (k <= 0) {
      rc = -1;
      break;
    }
    off += (size_t)k;
  }
  pthread_mutex_unlock(&c->wmu);
  return rc;
}

/* Reads one line (without its '\n') into out, waiting up to ms (-1:
 * forever). Returns 1, 0 at EOF, -ETIMEDOUT, -EMSGSIZE (a line too long),
 * or another negative errno. */
static int ctl_read(struct ctl *c, char *out, size_t cap, int ms) {
  uint64_t end = ms < 0 ? 0 : now_ms() + (uint64_t)ms;
  for (;;) {
    char *nl = memchr(c->buf, '\n', c->len);
    if (nl) {
      size_t n = (size_t)(nl - c->buf);
      if (n >= cap)
        return -EMSGSIZE;
      memcpy(out, c->buf, n);
      out[n] = 0;
      c->len -= n + 1;
      memmove(c->buf, nl + 1, c->len);
      return 1;
    }
    if (c->len >= LINE_MAX_LEN)
      return -EMSGSIZE;
    int wait = -1;
    if (ms >= 0) {
      uint64_t now = now_ms();
      if (now >= end)
        return -ETIMEDOUT;
      wait = (int)(end - now);
    }
    struct pollfd pfd = {.fd = c->fd, .events = POLLIN};
    int pr = poll(&pfd, 1, wait);
    if (pr < 0 && errno == EINTR)
      continue;
    if (pr == 0)
      return -ETIMEDOUT;
    ssize_t k = read(c->fd, c->buf + c->len, sizeof(c->buf) - c->len);
    if (k < 0 && errno == EINTR)
      continue;
    if (k < 0)
      return -errno;
    if (k == 0)
      return 0;
    c->len += (size_t)k;
  }
}

/* ---- relay: two fds, both directions, half-close carried ---------------- */

struct relay {
  int a, b; /* a: the user/target TCP connection; b: the stream */
  atomic_int left;
  char what[320];
  uint64_t t0;
  atomic_ullong bytes[2];
  atomic_int reset; /* one side failed: logged once */
};

struct dir {
  struct relay *r;
  int from, to, idx;
};

static void relay_done(struct relay *r) {
  if (atomic_fetch_sub(&r->left, 1) != 1)
    return;
  close(r->a);
  close(r->b);
  qp_debug("%s: closed after %" PRIu64 " ms (%llu bytes out, %llu in)", r->what,
           now_ms() - r->t0, (unsigned long long)r->bytes[0],
           (unsigned long long)r->bytes[1]);
  atomic_fetch_sub(&O.conns, 1);
  free(r);
}

static void *dir_main(void *arg) {
  struct dir *d = arg;
  struct relay *r = d->r;
  char *buf = malloc(RELAY_BUF);
  int err = 0;
  while (buf) {
    ssize_t n = read(d->from, buf, RELAY_BUF);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0) {
      err = errno;
      break;
    }
    if (n == 0)
      break;
    for (ssize_t off = 0; off < n;) {
      ssize_t k = send(d->to, buf + off, (size_t)(n - off), MSG_NOSIGNAL);
      if (k < 0 && errno == EINTR)
        continue;
      if (k <= 0) {
        err = k < 0 ? errno : EPIPE;
        break;
      }
      off += k;
      atomic_fetch_add(&r->bytes[d->idx], (unsigned long long)k);
    }
    if (err)
      break;
  }
  free(buf);
  if (err && !atomic_exchange(&r->reset, 1))
    qp_info("%s: ended early (%s) after %llu bytes out, %llu in", r->what,
            strerror(err), (unsigned long long)r->bytes[0],
            (unsigned long long)r->bytes[1]);
  if (err) {
    /* a reset on one side ends both directions at once */
    shutdown(d->from, SHUT_RDWR);
    shutdown(d->to, SHUT_RDWR);
  } else {
    shutdown(d->to, SHUT_WR); /* EOF travels on: FIN or QUIC FIN */
  }
  free(d);
  relay_done(r);
  return NULL;
}

static int spawn_detached(void *(*fn)(void *), void *arg) {
  pthread_attr_t at;
  pthread_attr_init(&at);
  pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
  pthread_attr_setstacksize(&at, 128 * 1024);
  pthread_t t;
  int rc = pthread_create(&t, &at, fn, arg);
  pthread_attr_destroy(&at);
  return rc;
}

/* Splices tcp and stream in both directions; closes both when done. */
static void relay_start(int tcp, int stream, const char *what) {
  struct relay *r = calloc(1, sizeof(*r));
  struct dir *d1 = calloc(1, sizeof(*d1)), *d2 = calloc(1, sizeof(*d2));
  if (!r || !d1 || !d2) {
    free(r), free(d1), free(d2);
    close(tcp), close(stream);
    qp_warn("%s: out of memory: closed", what);
    return;
  }
  r->a = tcp;
  r->b = stream;
  r->t0 = now_ms();
  snprintf(r->what, sizeof(r->what), "%s", what);
  atomic_store(&r->left, 2);
  *d1 = (struct dir){r, tcp, stream, 0};
  *d2 = (struct dir){r, stream, tcp, 1};
  atomic_fetch_add(&O.conns, 1);
  atomic_fetch_add(&O.conns_total, 1);
  if (spawn_detached(dir_main, d1) != 0) {
    free(d1), free(d2), free(r);
    close(tcp), close(stream);
    atomic_fetch_sub(&O.conns, 1);
    qp_warn("%s: cannot start a thread: closed", what);
    return;
  }
  if (spawn_detached(dir_main, d2) != 0) {
    /* the first direction runs: make it end and let it clean up */
    shutdown(tcp, SHUT_RDWR);
    shutdown(stream, SHUT_RDWR);
    free(d2);
    relay_done(r);
  }
}

/* ---- addresses ---------------------------------------------------------- */

/* Resolves "host:port" / "[v6]:port" for TCP; 0 or a negative errno. */
static int resolve_tcp(const char *s, struct sockaddr_storage *ss,
                       socklen_t *len, int passive) {
  char host[256];
  unsigned port;
  if (qp_addr_split(s, host, sizeof(host), &port, 0) < 0 || port == 0)
    return -EINVAL;
  struct addrinfo hints = {.ai_socktype = SOCK_STREAM,
                           .ai_flags = passive ? AI_PASSIVE : 0};
  char ps[12]; /* any unsigned: the split checked 1..65535 */
  snprintf(ps, sizeof(ps), "%u", port);
  struct addrinfo *ai = NULL;
  int rc = getaddrinfo(host[0] ? host : NULL, ps, &hints, &ai);
  if (rc != 0 || !ai)
    return -EHOSTUNREACH;
  memcpy(ss, ai->ai_addr, ai->ai_addrlen);
  *len = ai->ai_addrlen;
  freeaddrinfo(ai);
  return 0;
}

static void peer_name(int fd, char *out, size_t cap) {
  struct sockaddr_storage ss;
  socklen_t l = sizeof(ss);
  char h[INET6_ADDRSTRLEN] = "?";
  unsigned port = 0;
  if (getpeername(fd, (struct sockaddr *)&ss, &l) == 0) {
    if (ss.ss_family == AF_INET) {
      struct sockaddr_in *a = (struct sockaddr_in *)&ss;
      inet_ntop(AF_INET, &a->sin_addr, h, sizeof(h));
      port = ntohs(a->sin_port);
    } else if (ss.ss_family == AF_INET6) {
      struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
      inet_ntop(AF_INET6, &a->sin6_addr, h, sizeof(h));
      port = ntohs(a->sin6_port);
    }
  }
  snprintf(out, cap, ss.ss_family == AF_INET6 ? "[%s]:%u" : "%s:%u", h, port);
}

/* Connects to the forward target within CONNECT_MS; fd or -errno. */
static int connect_forward(void) {
  struct sockaddr_storage ss;
  socklen_t len;
  int rc = resolve_tcp(O.forward, &ss, &len, 0);
  if (rc < 0)
    return rc;
  int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0)
    return -errno;
  if (connect(fd, (struct sockaddr *)&ss, len) < 0 && errno != EINPROGRESS) {
    rc = -errno;
    close(fd);
    return rc;
  }
  struct pollfd pfd = {.fd = fd, .events = POLLOUT};
  if (poll(&pfd, 1, CONNECT_MS) <= 0) {
    close(fd);
    return -ETIMEDOUT;
  }
  int soerr = 0;
  socklen_t sl = sizeof(soerr);
  getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl);
  if (soerr) {
    close(fd);
    return -soerr;
  }
  int fl = fcntl(fd, F_GETFL);
  fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  return fd;
}

/* ---- pools -------------------------------------------------------------- */

/* This end's pool, started (its private qpoold running), or exits. */
static qp_pool *start_pool(void) {
  qp_pool *p;
  struct qp_tls tls = {.cert_file = O.cert, .key_file = O.key};
  const struct qp_pool_settings *st = &O.set;
  char tls_mode[2] = {st->tls_mode, 0};
  int rc =
      O.server
          ? qp_server_pool_new(st->max_cap, O.client_ip, O.cert ? &tls : NULL,
                               O.tunnel, (int64_t)st->keep_alive_ns, &p)
          : qp_client_pool_new(st->min_cap, st->max_cap,
                               (int64_t)st->min_ivl_ns, (int64_t)st->max_ivl_ns,
                               (int64_t)st->keep_alive_ns, tls_mode,
                               st->hostname, O.tunnel, &p);
  if (rc < 0)
    die("%s pool: %s", O.server ? "server" : "client", qp_strerror(rc));
  /* the rest of the given settings, by the table's keys */
  for (int i = 0; i < QP_SET_N; i++) {
    char v[300];
    if (!O.given[i])
      continue;
    qp_setting_format((enum qp_setting_id)i, st, v, sizeof(v));
    if ((rc = qp_pool_set(p, qp_settings[i].key, v)) < 0) {
      qp_close(p);
      die("%s %s: %s", qp_settings[i].flag, v, qp_strerror(rc));
    }
  }
  rc = O.server ? qp_server_manager(p) : qp_client_manager(p);
  if (rc < 0) {
    qp_close(p);
    die("cannot run the %s pool for %s: %s", O.server ? "server" : "client",
        O.tunnel, qp_strerror(rc));
  }
  return p;
}

/* ---- server ------------------------------------------------------------- */

static struct {
  pthread_mutex_t mu;
  pthread_cond_t idle; /* users dropped to 0 */
  qp_pool *p;          /* the current pool; NULL while none is serving */
  struct ctl *ctl;
  char key[2 * MAC_LEN + 1];
  uint64_t seq;
  int users;
} S = {.mu = PTHREAD_MUTEX_INITIALIZER, .idle = PTHREAD_COND_INITIALIZER};

struct user {
  int fd;
  char remote[80];
};

static void *user_main(void *arg) {
  struct user *u = arg;
  pthread_mutex_lock(&S.mu);
  qp_pool *p = S.ctl ? S.p : NULL;
  if (p)
    S.users++;
  pthread_mutex_unlock(&S.mu);
  if (!p) {
    qp_warn("user %s: no tunnel client connected: closed", u->remote);
    close(u->fd);
    free(u);
    return NULL;
  }
  uint32_t id = 0;
  int fd = -1;
  int rc = qp_incoming_get(p, TAKE_MS, &id, &fd);
  char ids[9];
  qp_id_format(id, ids);
  if (rc == 0) {
    char line[LINE_MAX_LEN], msg[LINE_MAX_LEN], m[2 * MAC_LEN + 1];
    pthread_mutex_lock(&S.mu);
    uint64_t seq = ++S.seq;
    struct ctl *c = S.ctl;
    snprintf(msg, sizeof(msg), "open|%" PRIu64 "|%s|%s", seq, ids, u->remote);
    mac(S.key, strlen(S.key), msg, m);
    snprintf(line, sizeof(line), "QPT1 OPEN %" PRIu64 " %s %s %s\n", seq, ids,
             u->remote, m);
    /* written under S.mu: the client sees OPENs in sequence order */
    rc = c ? ctl_write(c, line) : -1;
    pthread_mutex_unlock(&S.mu);
    if (rc < 0) {
      qp_warn("user %s: the control stream failed: closed", u->remote);
      close(fd);
      close(u->fd);
    } else {
      char what[320];
      snprintf(what, sizeof(what), "user %s <-> stream %s", u->remote, ids);
      qp_debug("%s: open", what);
      relay_start(u->fd, fd, what);
    }
  } else {
    atomic_fetch_add(&O.failures, 1);
    qp_warn("user %s: no stream within %d ms (%s): closed", u->remote, TAKE_MS,
            qp_strerror(rc));
    close(u->fd);
  }
  pthread_mutex_lock(&S.mu);
  if (--S.users == 0)
    pthread_cond_broadcast(&S.idle);
  pthread_mutex_unlock(&S.mu);
  free(u);
  return NULL;
}

static void *accept_main(void *arg) {
  int lfd = *(int *)arg;
  while (!atomic_load(&O.stop)) {
    struct pollfd pfd = {.fd = lfd, .events = POLLIN};
    if (poll(&pfd, 1, 200) <= 0)
      continue;
    int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EMFILE || errno == ENFILE) {
        qp_warn("accept: %s: waiting", strerror(errno));
        usleep(100 * 1000);
      }
      continue;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    struct user *u = calloc(1, sizeof(*u));
    if (!u) {
      close(fd);
      continue;
    }
    u->fd = fd;
    peer_name(fd, u->remote, sizeof(u->remote));
    if (spawn_detached(user_main, u) != 0) {
      qp_warn("user %s: cannot start a thread: closed", u->remote);
      close(fd);
      free(u);
    }
  }
  return NULL;
}

/* The server's half of the handshake on a fresh control stream. Returns 0
 * (S.key set) or -1 with the reason logged (the stream is then closed). */
static int server_handshake(struct ctl *c) {
  char sn[2 * NONCE_LEN + 1], line[LINE_MAX_LEN], m[2 * MAC_LEN + 1];
  nonce(sn);
  snprintf(line, sizeof(line), "QPT1 HELLO %s\n", sn);
  if (ctl_write(c, line) < 0) {
    qp_warn("tunnel client: control stream closed before the handshake");
    return -1;
  }
  int rc = ctl_read(c, line, sizeof(line), 10000);
  if (rc <= 0) {
    qp_warn("tunnel client: no AUTH within 10 s (%s): refused",
            rc == 0 ? "stream closed" : strerror(-rc));
    return -1;
  }
  char cn[128], cm[128];
  if (sscanf(line, "QPT1 AUTH %127s %127s", cn, cm) != 2 ||
      !is_hex(cn, 2 * NONCE_LEN) || !is_hex(cm, 2 * MAC_LEN)) {
    qp_warn("tunnel client: malformed AUTH message (not qpool-tunnel, or "
            "another version): refused");
    ctl_write(c, "QPT1 ERROR malformed\n");
    return -1;
  }
  derive("client", sn, cn, m);
  if (!mac_equal(m, cm)) {
    qp_warn("tunnel client refused: pre-shared key mismatch (--psk or "
            "--psk-file differ between the two ends)");
    ctl_write(c, "QPT1 ERROR psk\n");
    return -1;
  }
  derive("server", sn, cn, m);
  snprintf(line, sizeof(line), "QPT1 OK %s\n", m);
  if (ctl_write(c, line) < 0)
    return -1;
  derive("session", sn, cn, S.key);
  return 0;
}

static int run_server(void) {
  struct sockaddr_storage ss;
  socklen_t sl;
  if (resolve_tcp(O.listen, &ss, &sl, 1) < 0)
    die("--listen %s: not an address (host:port)", O.listen);
  int lfd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  if (lfd < 0 ||
      setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
      bind(lfd, (struct sockaddr *)&ss, sl) < 0 || listen(lfd, 512) < 0)
    die("--listen %s: %s", O.listen, strerror(errno));
  pthread_t at;
  if (pthread_create(&at, NULL, accept_main, &lfd) != 0)
    die("cannot start the accept thread");
  while (!atomic_load(&O.stop)) {
    qp_pool *p = start_pool();
    int rc = -ETIMEDOUT;
    qp_info("tunnel %s: waiting for the client (control stream 00000000); "
            "users on %s; pool control socket %s (qpoolctl --control %s "
            "watch)",
            O.tunnel, O.listen, qp_control_path(p), qp_control_path(p));
    pthread_mutex_lock(&S.mu);
    S.p = p;
    pthread_mutex_unlock(&S.mu);
    int cfd = -1;
    uint32_t id = 1;
    while (!atomic_load(&O.stop)) {
      rc = qp_incoming_get(p, 1000, &id, &cfd);
      if (rc == 0 || rc != -ETIMEDOUT)
        break;
    }
    if (rc < 0 || atomic_load(&O.stop)) {
      if (rc < 0 && rc != -ETIMEDOUT)
        qp_warn("waiting for the control stream: %s", qp_strerror(rc));
      goto next;
    }
    if (id != 0) { /* cannot happen: nobody else takes from this pool */
      qp_warn("the first stream is %08x, not 00000000: restarting the pool",
              id);
      close(cfd);
      goto next;
    }
    struct ctl *c = calloc(1, sizeof(*c));
    if (!c)
      die("out of memory");
    c->fd = cfd;
    pthread_mutex_init(&c->wmu, NULL);
    if (server_handshake(c) < 0) {
      close(cfd);
      pthread_mutex_destroy(&c->wmu);
      free(c);
      goto next;
    }
    qp_info("tunnel client authenticated: serving users on %s", O.listen);
    pthread_mutex_lock(&S.mu);
    S.ctl = c;
    S.seq = 0;
    pthread_mutex_unlock(&S.mu);
    /* the client sends nothing after AUTH: any byte or the end of the
     * stream ends this control stream */
    for (;;) {
      char line[LINE_MAX_LEN];
      rc = ctl_read(c, line, sizeof(line), 500);
      if (rc == -ETIMEDOUT && !atomic_load(&O.stop))
        continue;
      if (rc == 1) {
        qp_warn("unexpected message from the tunnel client: ignored");
        continue;
      }
      break;
    }
    if (!atomic_load(&O.stop))
      qp_warn("control stream lost (%s): starting a new pool for the client "
              "to reconnect to",
              rc == 0 ? "closed by the client" : strerror(-rc));
    pthread_mutex_lock(&S.mu);
    S.ctl = NULL;
    while (S.users > 0) /* takes in progress end (within TAKE_MS) */
      pthread_cond_wait(&S.idle, &S.mu);
    pthread_mutex_unlock(&S.mu);
    close(c->fd);
    pthread_mutex_destroy(&c->wmu);
    free(c);
  next:
    pthread_mutex_lock(&S.mu);
    S.p = NULL;
    while (S.users > 0)
      pthread_cond_wait(&S.idle, &S.mu);
    pthread_mutex_unlock(&S.mu);
    qp_close(p);
    if (!atomic_load(&O.stop))
      usleep(200 * 1000); /* a client with a wrong key: not a busy loop */
  }
  pthread_join(at, NULL);
  close(lfd);
  qp_info("stopped (%ld connections served)", atomic_load(&O.conns_total));
  return 0;
}

/* ---- client ------------------------------------------------------------- */

struct open_req {
  qp_pool *p;
  uint32_t id;
  char remote[80];
};

static atomic_int C_users;

static void *open_main(void *arg) {
  struct open_req *o = arg;
  char ids[9];
  qp_id_format(o->id, ids);
  int fd = -1;
  int rc = qp_outgoing_get(o->p, o->id, TAKE_MS, &fd);
  if (rc < 0) {
    atomic_fetch_add(&O.failures, 1);
    qp_warn("stream %s (user %s): %s", ids, o->remote, qp_strerror(rc));
  } else {
    int t = connect_forward();
    if (t < 0) {
      atomic_fetch_add(&O.failures, 1);
      qp_warn("forward %s: %s: closing stream %s (user %s)", O.forward,
              strerror(-t), ids, o->remote);
      close(fd);
    } else {
      char what[320];
      snprintf(what, sizeof(what), "stream %s <-> %.200s (user %s)", ids,
               O.forward, o->remote);
      relay_start(t, fd, what);
    }
  }
  atomic_fetch_sub(&C_users, 1);
  free(o);
  return NULL;
}

/* The client's half of the handshake. 0 (key set), -1 (retry later) or
 * exits with a clear message when the server refused our key. */
static int client_handshake(struct ctl *c, char key[2 * MAC_LEN + 1]) {
  char line[LINE_MAX_LEN], sn[128], cn[2 * NONCE_LEN + 1], m[2 * MAC_LEN + 1];
  int rc = ctl_read(c, line, sizeof(line), 10000);
  if (rc <= 0) {
    qp_warn("control stream: no HELLO from the server (%s)",
            rc == 0 ? "closed" : strerror(-rc));
    return -1;
  }
  if (sscanf(line, "QPT1 HELLO %127s", sn) != 1 || !is_hex(sn, 2 * NONCE_LEN)) {
    qp_warn("control stream: malformed HELLO (the server is not "
            "qpool-tunnel, or another version)");
    return -1;
  }
  nonce(cn);
  derive("client", sn, cn, m);
  snprintf(line, sizeof(line), "QPT1 AUTH %s %s\n", cn, m);
  if (ctl_write(c, line) < 0)
    return -1;
  rc = ctl_read(c, line, sizeof(line), 10000);
  if (rc <= 0) {
    qp_warn("control stream: no answer to AUTH (%s)",
            rc == 0 ? "closed" : strerror(-rc));
    return -1;
  }
  char arg[128];
  if (sscanf(line, "QPT1 ERROR %127s", arg) == 1) {
    if (!strcmp(arg, "psk"))
      die("the tunnel server refused our pre-shared key: --psk / --psk-file "
          "differ between the two ends");
    qp_warn("the tunnel server refused us: %s", arg);
    return -1;
  }
  derive("server", sn, cn, m);
  if (sscanf(line, "QPT1 OK %127s", arg) != 1 || !mac_equal(arg, m))
    die("the tunnel server could not prove it knows the pre-shared key: "
        "--psk / --psk-file differ between the two ends (or this is not "
        "the expected server)");
  derive("session", sn, cn, key);
  return 0;
}

static int run_client(void) {
  qp_pool *p = start_pool();
  int rc;
  qp_info("tunnel %s: forwarding to %s; pool control socket %s (qpoolctl "
          "--control %s watch)",
          O.tunnel, O.forward, qp_control_path(p), qp_control_path(p));
  uint64_t waited = now_ms();
  while (!atomic_load(&O.stop)) {
    int cfd = -1;
    rc = qp_outgoing_get(p, 0, 1000, &cfd);
    if (rc < 0) {
      if (now_ms() - waited > 10000) {
        qp_info("waiting for the tunnel server at %s (control stream "
                "00000000): %s",
                O.tunnel, qp_strerror(rc));
        waited = now_ms();
      }
      continue;
    }
    struct ctl c = {.fd = cfd};
    pthread_mutex_init(&c.wmu, NULL);
    char key[2 * MAC_LEN + 1];
    if (client_handshake(&c, key) < 0) {
      close(cfd);
      pthread_mutex_destroy(&c.wmu);
      usleep(200 * 1000);
      continue;
    }
    qp_info("connected to the tunnel server %s: forwarding to %s", O.tunnel,
            O.forward);
    uint64_t last = 0;
    for (;;) {
      char line[LINE_MAX_LEN];
      rc = ctl_read(&c, line, sizeof(line), 500);
      if (rc == -ETIMEDOUT && !atomic_load(&O.stop))
        continue;
      if (rc <= 0)
        break;
      unsigned long long seq;
      char ids[16], remote[96], m[128], want[2 * MAC_LEN + 1], msg[256];
      uint32_t id;
      if (sscanf(line, "QPT1 OPEN %llu %15s %95s %127s", &seq, ids, remote,
                 m) != 4 ||
          qp_id_parse(ids, &id) < 0) {
        qp_warn("control stream: malformed message: ignored");
        continue;
      }
      snprintf(msg, sizeof(msg), "open|%llu|%s|%s", seq, ids, remote);
      mac(key, strlen(key), msg, want);
      if (!mac_equal(m, want)) {
        qp_warn("control stream: OPEN with a bad MAC: ignored");
        continue;
      }
      if (seq <= last) {
        qp_warn("control stream: OPEN %llu replayed or out of order: ignored",
                seq);
        continue;
      }
      last = seq;
      struct open_req *o = calloc(1, sizeof(*o));
      if (!o)
        continue;
      o->p = p;
      o->id = id;
      snprintf(o->remote, sizeof(o->remote), "%.79s", remote);
      atomic_fetch_add(&C_users, 1);
      if (spawn_detached(open_main, o) != 0) {
        atomic_fetch_sub(&C_users, 1);
        qp_warn("stream %s: cannot start a thread", ids);
        free(o);
      }
    }
    close(cfd);
    pthread_mutex_destroy(&c.wmu);
    if (!atomic_load(&O.stop))
      qp_warn("control stream lost (%s): waiting for the server's new one",
              rc == 0 ? "closed by the server" : strerror(-rc));
    waited = now_ms();
  }
  for (int i = 0; i < 100 && atomic_load(&C_users) > 0; i++)
    usleep(50 * 1000); /* takes in progress end within TAKE_MS */
  qp_close(p);
  qp_info("stopped (%ld connections served)", atomic_load(&O.conns_total));
  return 0;
}

/* ---- options ------------------------------------------------------------ */

/* The pool settings whose scope is exactly `scope`, with the tunnel's
 * defaults. */
static void usage_settings(FILE *f, unsigned scope) {
  struct qp_pool_settings d;
  tunnel_defaults(&d);
  for (int i = 0; i < QP_SET_N; i++)
    if (qp_settings[i].scope == scope)
      qp_setting_usage(f, (enum qp_setting_id)i, &d);
}

static void usage(FILE *f) {
  fputs("qpool-tunnel " QP_VERSION
        " - a TCP tunnel over an np-quic stream pool\n"
        "\n"
        "Usage:\n"
        "  qpool-tunnel server --tunnel ADDR --listen ADDR (--psk SECRET | "
        "--psk-file FILE) [options]\n"
        "  qpool-tunnel client --tunnel ADDR --forward ADDR (--psk SECRET | "
        "--psk-file FILE) [options]\n"
        "\n"
        "The server end accepts user TCP connections on --listen and carries "
        "each one\n"
        "over a pooled QUIC stream to the client end, which connects it to "
        "--forward.\n"
        "Both ends need the same pre-shared key; it authenticates the control "
        "stream\n"
        "(00000000) with HMAC-SHA256 and is never sent.\n"
        "\n"
        "Both:\n"
        "  --tunnel ADDR        UDP address of the server pool (server: where "
        "to listen,\n"
        "                       numeric; client: where to dial, host names "
        "resolved)\n"
        "  --psk SECRET         the pre-shared key (visible in ps: prefer "
        "--psk-file)\n"
        "  --psk-file FILE      read the key from FILE (trailing newline "
        "ignored)\n"
        "  --log-level LEVEL    error, warn, info or debug (default info)\n",
        f);
  usage_settings(f, QP_SCOPE_SERVER | QP_SCOPE_CLIENT);
  fputs(
      "\n"
      "Server:\n"
      "  --listen ADDR        TCP address for user connections "
      "(host:port)\n"
      "  --cert FILE --key FILE  PEM certificate and key (default: "
      "self-signed,\n"
      "                       made in memory)\n"
      "  --client-ip LIST     only these client addresses/CIDRs may connect\n",
      f);
  usage_settings(f, QP_SCOPE_SERVER);
  fputs("\nClient:\n"
        "  --forward ADDR       TCP target of every tunnelled connection\n",
        f);
  usage_settings(f, QP_SCOPE_CLIENT);
  fputs(
      "\n"
      "Durations: Go's syntax (500ms, 5s, 1m30s). Each end runs a private "
      "qpoold for\n"
      "its pool (embedded mode); its control socket is logged at start, for "
      "qpoolctl.\n"
      "\n"
      "Example (two hosts):\n"
      "  relay$  qpool-tunnel server --tunnel :4433 --listen :8080 --psk-file "
      "/etc/qpt.key\n"
      "  office$ qpool-tunnel client --tunnel relay.example:4433 --forward "
      "127.0.0.1:80 \\\n"
      "              --psk-file /etc/qpt.key\n"
      "  anyone$ curl http://relay.example:8080/\n",
      f);
}

/* A setting's name as our user writes it: its flag. */
static const char *flag_name(int id, void *arg) {
  (void)arg;
  return qp_settings[id].flag;
}

static void usage_error(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));
static void usage_error(const char *fmt, ...) {
  va_list ap;
  fputs("qpool-tunnel: ", stderr);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputs("\n(see qpool-tunnel --help)\n", stderr);
  exit(2);
}

static void read_psk_file(const char *path) {
  FILE *f = fopen(path, "r");
  if (!f)
    usage_error("--psk-file %s: %s", path, strerror(errno));
  char buf[1024];
  size_t n = fread(buf, 1, sizeof(buf) - 1, f);
  int big = !feof(f);
  fclose(f);
  if (big)
    usage_error("--psk-file %s: longer than 1023 bytes", path);
  while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
    n--;
  buf[n] = 0;
  O.psk = strdup(buf);
  O.psk_len = n;
}

static void on_stop(int sig) {
  (void)sig;
  atomic_store(&O.stop, 1);
}

int main(int argc, char **argv) {
  qp_log_set_ident("qpool-tunnel");
  if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
    usage(stdout);
    return 0;
  }
  if (argc >= 2 && !strcmp(argv[1], "--version")) {
    puts("qpool-tunnel " QP_VERSION);
    return 0;
  }
  if (argc < 2 || (strcmp(argv[1], "server") && strcmp(argv[1], "client")))
    usage_error("the first argument is \"server\" or \"client\"");
  O.server = !strcmp(argv[1], "server");
  enum {
    OPT_TUNNEL = 256,
    OPT_LISTEN,
    OPT_FORWARD,
    OPT_PSK,
    OPT_PSK_FILE,
    OPT_CERT,
    OPT_KEY,
    OPT_CLIENT_IP,
    OPT_LOG_LEVEL,
    OPT_SET, /* + qp_setting_id: the pool's settings */
  };
  static const struct option fixed[] = {
      {"tunnel", required_argument, NULL, OPT_TUNNEL},
      {"listen", required_argument, NULL, OPT_LISTEN},
      {"forward", required_argument, NULL, OPT_FORWARD},
      {"psk", required_argument, NULL, OPT_PSK},
      {"psk-file", required_argument, NULL, OPT_PSK_FILE},
      {"cert", required_argument, NULL, OPT_CERT},
      {"key", required_argument, NULL, OPT_KEY},
      {"client-ip", required_argument, NULL, OPT_CLIENT_IP},
      {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
      {"help", no_argument, NULL, 'h'}};
  enum { NFIXED = sizeof(fixed) / sizeof(fixed[0]) };
  struct option lo[NFIXED + QP_SET_N + 1];
  memcpy(lo, fixed, sizeof(fixed));
  for (int i = 0; i < QP_SET_N; i++)
    lo[NFIXED + i] = (struct option){qp_settings[i].flag + 2, required_argument,
                                     NULL, OPT_SET + i};
  lo[NFIXED + QP_SET_N] = (struct option){NULL, 0, NULL, 0};
  tunnel_defaults(&O.set);
  const char *mode = argv[1];
  int c;
  optind = 2;
  opterr = 0;
  while ((c = getopt_long(argc, argv, ":h", lo, NULL)) != -1) {
    switch (c) {
    case OPT_TUNNEL:
      O.tunnel = optarg;
      break;
    case OPT_LISTEN:
      O.listen = optarg;
      break;
    case OPT_FORWARD:
      O.forward = optarg;
      break;
    case OPT_PSK:
      free(O.psk);
      O.psk = strdup(optarg);
      O.psk_len = strlen(optarg);
      break;
    case OPT_PSK_FILE:
      free(O.psk);
      read_psk_file(optarg);
      break;
    case OPT_CERT:
      O.cert = optarg;
      break;
    case OPT_KEY:
      O.key = optarg;
      break;
    case OPT_CLIENT_IP:
      O.client_ip = optarg;
      break;
    case OPT_LOG_LEVEL: {
      static const char *lv[] = {"error", "warn", "info", "debug"};
      int i = 0;
      while (i < 4 && strcmp(optarg, lv[i]))
        i++;
      if (i == 4)
        usage_error("--log-level: \"%s\" is not error, warn, info or debug",
                    optarg);
      qp_log_set_level((enum qp_log_level)i);
      break;
    }
    case 'h':
      usage(stdout);
      return 0;
    case ':':
      usage_error("%s needs a value", argv[optind - 1]);
      break;
    default:
      if (c >= OPT_SET && c < OPT_SET + QP_SET_N) {
        enum qp_setting_id id = (enum qp_setting_id)(c - OPT_SET);
        const struct qp_setting *e = &qp_settings[id];
        char why[256];
        if (!(e->scope & (O.server ? QP_SCOPE_SERVER : QP_SCOPE_CLIENT)))
          usage_error("%s is for the %s end", e->flag,
                      O.server ? "client" : "server");
        if (qp_setting_parse(id, optarg, &O.set, why, sizeof(why)) < 0)
          usage_error("%s: %s", e->flag, why);
        O.given[id] = 1;
        break;
      }
      usage_error("unknown option %s", argv[optind - 1]);
    }
  }
  if (optind < argc)
    usage_error("unexpected argument \"%s\"", argv[optind]);
  if (!O.tunnel)
    usage_error("%s needs --tunnel ADDR", mode);
  if (O.server && !O.listen)
    usage_error("server needs --listen ADDR (where users connect)");
  if (!O.server && !O.forward)
    usage_error("client needs --forward ADDR (where connections go)");
  if (O.server && O.forward)
    usage_error("--forward is for the client end");
  if (!O.server && (O.listen || O.cert || O.key || O.client_ip))
    usage_error("--listen, --cert, --key and --client-ip are for the server "
                "end");
  if (!O.psk || O.psk_len == 0)
    usage_error("both ends need the same pre-shared key: --psk SECRET or "
                "--psk-file FILE");
  if (O.psk_len < 12)
    qp_warn("the pre-shared key is short (%zu bytes): use 16 or more random "
            "characters",
            O.psk_len);
  if (!!O.cert != !!O.key)
    usage_error("--cert and --key go together");
  /* the rules that span settings, as qpoold has them */
  enum qp_setting_id bad;
  char why[256];
  if (qp_pool_settings_reconcile(
          &O.set, O.server ? QP_SCOPE_SERVER : QP_SCOPE_CLIENT, O.given,
          flag_name, NULL, &bad, why, sizeof(why)) < 0)
    usage_error("%s: %s", qp_settings[bad].flag, why);
  struct sockaddr_storage ss;
  socklen_t sl;
  if (O.forward && resolve_tcp(O.forward, &ss, &sl, 0) < 0)
    usage_error("--forward %s: cannot resolve (host:port)", O.forward);

  signal(SIGPIPE, SIG_IGN);
  struct sigaction sa = {.sa_handler = on_stop};
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  /* two fds per connection, plus the pool's: lift the soft limit */
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  return O.server ? run_server() : run_client();
}
