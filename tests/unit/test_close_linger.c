/* Engine: a pool's close does not wait for a stream that can send nothing
 * more. A taken stream blocked on its peer's credit has its app end its
 * direction (the FIN cannot go out yet); then the peer's app closes
 * (STOP_SENDING), ngtcp2 resets our direction and the QUIC stream closes
 * while our app still has bytes to read. The stream must count as stopped
 * (tx_stopped), so that wrk_pool_close finishes at once instead of
 * lingering 5 s for a FIN that can never be sent, with a false "closing
 * with unacknowledged stream data" warning. Found by review, reproducer by
 * the reviewer. Two in-process pools on 127.0.0.1 (port 0); every phase
 * bounded. Exit 0 ok, 1 the close lingered or the stream was not stopped,
 * 2 set-up failure or timeout. */
#include <arpa/inet.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include "worker/internal.h"

static uv_loop_t L;
static wrk_pool *S, *C;
static int sfd = -1, cfd = -1, phase;
static uint32_t sid_id;
static uv_timer_t tick;
static uint64_t t0, tclose, swrote, cwrote;
static uint8_t buf[16384];

static void on_c(wrk_pool *p, int st, uint32_t id, int fd, void *a) {
  (void)p, (void)id, (void)a;
  if (st < 0) {
    fprintf(stderr, "cget %d\n", st);
    exit(2);
  }
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  cfd = fd;
}
static void on_s(wrk_pool *p, int st, uint32_t id, int fd, void *a) {
  (void)p, (void)a;
  if (st < 0) {
    fprintf(stderr, "sget %d\n", st);
    exit(2);
  }
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  sfd = fd;
  sid_id = id;
  wrk_pool_outgoing_get(C, id, 10000, on_c, NULL);
}
static wrk_stream *sstream(void) {
  for (struct wrk_list *l = S->conns.next; l != &S->conns; l = l->next) {
    wrk_conn *c = wrk_container(l, wrk_conn, link);
    for (struct wrk_list *m = c->streams.next; m != &c->streams; m = m->next) {
      wrk_stream *s = wrk_container(m, wrk_stream, conn_link);
      if (s->state == WS_TAKEN && s->id == sid_id)
        return s;
    }
  }
  return NULL;
}
static void closed(void *a) {
  (void)a;
  double secs = (uv_hrtime() - tclose) / 1e9;
  printf("server pool closed %.2f s after wrk_pool_close\n", secs);
  exit(secs > 2 ? 1 : 0); /* the linger would be 5 s */
}
static void on_tick(uv_timer_t *t) {
  (void)t;
  uint64_t ms = (uv_hrtime() - t0) / 1000000;
  if (ms > 40000) {
    fprintf(stderr, "timeout in phase %d\n", phase);
    exit(2);
  }
  if (cfd < 0 || sfd < 0)
    return;
  wrk_stream *s = phase == 5 ? NULL : sstream();
  if (phase == 0) { /* server app writes while its stream is not blocked */
    if (!s)
      return;
    if (!s->blocked) {
      ssize_t n = write(sfd, buf, sizeof(buf));
      if (n > 0)
        swrote += n;
      return;
    }
    printf("server stream blocked: wrote %llu, tx %zu sent %zu\n",
           (unsigned long long)swrote, s->tx.bytes, s->tx_sent);
    shutdown(sfd, SHUT_WR);
    phase = 1;
    return;
  }
  if (phase == 1) { /* wait for the server's worker to read the EOF */
    if (!s->tx_eof)
      return;
    printf("server stream tx_eof while blocked (tx %zu, fin_sent %d)\n",
           s->tx.bytes, s->tx_fin_sent);
    phase = 2;
    return;
  }
  if (phase == 2) { /* client app writes 2.5 MiB (unread by server app) */
    while (cwrote < (5u << 19)) {
      ssize_t n = write(cfd, buf, sizeof(buf));
      if (n <= 0)
        return;
      cwrote += n;
    }
    close(cfd); /* STOP_SENDING for the server's direction */
    phase = 3;
    return;
  }
  if (phase == 3) {
    if (!s) {
      fprintf(stderr, "the stream was freed before it was seen closed\n");
      exit(2);
    }
    if (!s->quic_closed) {
      /* the server app reads slowly: the client's FIN must get through
       * the window (how much the socketpair holds depends on the kernel's
       * accounting), and bytes must stay unread when the stream closes */
      (void)read(sfd, buf, sizeof(buf));
      return;
    }
    printf("server stream quic_closed: tx_eof %d fin_sent %d tx_stopped %d "
           "rx %zu\n",
           s->tx_eof, s->tx_fin_sent, s->tx_stopped, s->rx.bytes);
    if (!s->tx_stopped) {
      printf("BUG: a closed stream that never sent its FIN is not stopped\n");
      exit(1);
    }
    phase = 4;
    tclose = uv_hrtime();
    phase = 5;
    wrk_pool_close(S, closed, NULL);
    return;
  }
  if (phase == 5 && wrk_list_empty(&S->conns)) {
    double secs = (uv_hrtime() - tclose) / 1e9;
    printf("server pool's connections closed %.2f s after wrk_pool_close\n",
           secs);
    exit(secs > 2 ? 1 : 0);
  }
}
int main(void) {
  setvbuf(stdout, NULL, _IONBF, 0);
  uv_loop_init(&L);
  char err[256];
  struct wrk_pool_config sc, cc;
  wrk_pool_config_init(&sc, WRK_SERVER);
  snprintf(sc.name, sizeof(sc.name), "srv");
  sc.set.min_cap = sc.set.max_cap = 1;
  struct sockaddr_in *sin = (struct sockaddr_in *)&sc.listen;
  sin->sin_family = AF_INET;
  sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  sc.listen_len = sizeof(*sin);
  if (wrk_pool_new(&L, &sc, &S, err, sizeof(err)) < 0)
    return 2;
  struct sockaddr_storage ss;
  socklen_t sl = sizeof(ss);
  if (wrk_pool_local_addr(S, &ss, &sl) < 0)
    return 2;
  wrk_pool_config_init(&cc, WRK_CLIENT);
  snprintf(cc.name, sizeof(cc.name), "cli");
  cc.set.min_cap = cc.set.max_cap = 1;
  sin = (struct sockaddr_in *)&cc.target;
  sin->sin_family = AF_INET;
  sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  sin->sin_port = ((struct sockaddr_in *)&ss)->sin_port;
  cc.target_len = sizeof(*sin);
  cc.set.tls_mode = '0';
  if (wrk_pool_new(&L, &cc, &C, err, sizeof(err)) < 0)
    return 2;
  wrk_pool_start(S);
  wrk_pool_start(C);
  wrk_pool_incoming_get(S, 10000, on_s, NULL);
  t0 = uv_hrtime();
  uv_timer_init(&L, &tick);
  uv_timer_start(&tick, on_tick, 1, 1);
  uv_run(&L, UV_RUN_DEFAULT);
  return 2;
}
