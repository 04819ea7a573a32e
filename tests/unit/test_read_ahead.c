/* Engine: the read-ahead is per connection, shared by its streams. A server
 * app takes 8 streams and writes into all of them as fast as they take it,
 * while the client never takes them (an idle stream credits nothing, so
 * each peer window fills at 1 MiB and everything beyond stays with the
 * sender). What the server's worker holds read from its apps must stay
 * within the connection's read-ahead plus, per stream, the minimum share
 * and one read (WRK_TX_MIN_SHARE + WRK_CHUNK_SIZE): before the rule was
 * per connection, each stream held the whole read-ahead (8 x at least
 * 1 MiB). Also checks the books: tx_held is the sum of the streams' tx
 * queues and tx_holders the number holding bytes, at every tick. Two
 * in-process pools on 127.0.0.1 (port 0), one loop; every phase bounded.
 * Exit 0 ok, 1 a bound or the books broken, 2 set-up failure. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>

#include "worker/bufq.h"
#include "worker/internal.h"

#define NSTREAMS 8
#define WRITE_MS 2000

static uv_loop_t L;
static wrk_pool *S, *C;
static int fds[NSTREAMS], taken;
static uv_timer_t tick;
static uint64_t t0, t_all, written, max_held, max_limit, worst_excess;
static int bad;

static void on_server_get(wrk_pool *p, int st, uint32_t id, int fd, void *a) {
  (void)p, (void)a, (void)id;
  if (st < 0) {
    fprintf(stderr, "server get: %d\n", st);
    exit(2);
  }
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  fds[taken++] = fd;
  if (taken < NSTREAMS)
    wrk_pool_incoming_get(S, 10000, on_server_get, NULL);
  else
    t_all = uv_hrtime();
}

/* The books of each server connection, and the bound. */
static void check(void) {
  for (struct wrk_list *l = S->conns.next; l != &S->conns; l = l->next) {
    wrk_conn *c = wrk_container(l, wrk_conn, link);
    uint64_t sum = 0, holders = 0;
    for (struct wrk_list *m = c->streams.next; m != &c->streams;
         m = m->next) {
      wrk_stream *s = wrk_container(m, wrk_stream, conn_link);
      sum += s->tx.bytes;
      holders += s->tx.bytes > 0;
    }
    if (sum != c->tx_held || holders != c->tx_holders) {
      fprintf(stderr,
              "BUG: books: tx_held %llu vs streams' %llu, tx_holders %llu "
              "vs %llu\n",
              (unsigned long long)c->tx_held, (unsigned long long)sum,
              (unsigned long long)c->tx_holders,
              (unsigned long long)holders);
      bad = 1;
    }
    if (c->tx_limit > max_limit)
      max_limit = c->tx_limit;
    if (sum > max_held)
      max_held = sum;
    /* the limit may have been higher when the bytes were read */
    uint64_t bound =
        max_limit + NSTREAMS * (uint64_t)(WRK_TX_MIN_SHARE + WRK_CHUNK_SIZE);
    if (sum > bound && sum - bound > worst_excess)
      worst_excess = sum - bound;
  }
}

static void on_tick(uv_timer_t *t) {
  (void)t;
  uint64_t ms = (uv_hrtime() - t0) / 1000000;
  if (taken < NSTREAMS) {
    if (ms > 15000) {
      fprintf(stderr, "only %d of %d streams taken\n", taken, NSTREAMS);
      exit(2);
    }
    return;
  }
  static uint8_t buf[65536];
  for (int i = 0; i < NSTREAMS; i++) /* as fast as each socket takes it */
    for (int k = 0; k < 64; k++) {
      ssize_t n = write(fds[i], buf, sizeof(buf));
      if (n <= 0)
        break;
      written += (uint64_t)n;
    }
  check();
  if ((uv_hrtime() - t_all) / 1000000 < WRITE_MS)
    return;
  printf("apps wrote %llu bytes into %d streams; the worker held at most "
         "%llu bytes read ahead, the read-ahead was at most %llu\n",
         (unsigned long long)written, NSTREAMS,
         (unsigned long long)max_held, (unsigned long long)max_limit);
  if (written < NSTREAMS * (uint64_t)1048576) {
    printf("BUG: the apps could not even fill the peers' 1 MiB windows\n");
    exit(1);
  }
  if (worst_excess) {
    printf("BUG: held %llu bytes over read-ahead + %d x (%d + %d)\n",
           (unsigned long long)worst_excess, NSTREAMS, WRK_TX_MIN_SHARE,
           WRK_CHUNK_SIZE);
    exit(1);
  }
  printf("%s\n", bad ? "BUG: the books" : "OK");
  exit(bad);
}

int main(void) {
  uv_loop_init(&L);
  char err[256];
  struct wrk_pool_config sc, cc;
  wrk_pool_config_init(&sc, WRK_SERVER);
  snprintf(sc.name, sizeof(sc.name), "srv");
  sc.min_cap = sc.max_cap = NSTREAMS;
  struct sockaddr_in *sin = (struct sockaddr_in *)&sc.listen;
  sin->sin_family = AF_INET;
  sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  sin->sin_port = 0;
  sc.listen_len = sizeof(*sin);
  if (wrk_pool_new(&L, &sc, &S, err, sizeof(err)) < 0) {
    fprintf(stderr, "server: %s\n", err);
    return 2;
  }
  struct sockaddr_storage ss;
  socklen_t sl = sizeof(ss);
  if (wrk_pool_local_addr(S, &ss, &sl) < 0) {
    fprintf(stderr, "server: no local address\n");
    return 2;
  }
  uint16_t port = ((struct sockaddr_in *)&ss)->sin_port;
  wrk_pool_config_init(&cc, WRK_CLIENT);
  snprintf(cc.name, sizeof(cc.name), "cli");
  cc.min_cap = cc.max_cap = NSTREAMS;
  sin = (struct sockaddr_in *)&cc.target;
  sin->sin_family = AF_INET;
  sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  sin->sin_port = port;
  cc.target_len = sizeof(*sin);
  cc.tls_mode = '0';
  if (wrk_pool_new(&L, &cc, &C, err, sizeof(err)) < 0) {
    fprintf(stderr, "client: %s\n", err);
    return 2;
  }
  wrk_pool_start(S);
  wrk_pool_start(C);
  wrk_pool_incoming_get(S, 10000, on_server_get, NULL);
  t0 = uv_hrtime();
  uv_timer_init(&L, &tick);
  uv_timer_start(&tick, on_tick, 5, 5);
  uv_run(&L, UV_RUN_DEFAULT);
  return 2;
}
