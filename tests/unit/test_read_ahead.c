/* Engine: the read-ahead is per connection, shared by its streams.
 *
 * Default mode (loopback): a server app takes 8 streams and writes into
 * all of them as fast as they take it, while the client never takes them
 * (an idle stream credits nothing, so each peer window fills at 1 MiB and
 * everything beyond stays with the sender). What the server's worker holds
 * read from its apps must stay within the rule's bound: each stream at most
 * max(WRK_TX_MIN_SHARE, read-ahead / streams holding bytes) plus one read
 * (WRK_CHUNK_SIZE), so 8 streams hold at most the read-ahead x (1 + 1/2 +
 * ... + 1/8) + 8 x (64 KiB + 64 KiB); before the rule was per connection
 * each held the whole read-ahead (8 x at least 1 MiB). The worker must
 * also have read at least 64 KiB from each app (it did read), and the books
 * hold at every tick: tx_held is the sum of the streams' tx queues,
 * tx_holders the number holding bytes.
 *
 * "sibling" mode (tests/integration/read_ahead_sibling.sh runs it on a
 * delayed path): stream A moves bulk for 1 s (its read-ahead grows), then
 * its reader stops while its writer goes on, so A holds what it read
 * ahead; then stream B moves 32 MiB. B must not be held to the minimum
 * share because of A's bytes: B's largest tx queue must exceed 4 x (64 KiB
 * + one read). (A rule that capped the sum of the streams' bytes held B to
 * 82 KB and 3 MB/s at 20 ms RTT.)
 *
 * Two in-process pools on 127.0.0.1 (port 0), one loop; every phase
 * bounded. Exit 0 ok, 1 a bound or the books broken, 2 set-up failure. */
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
#define SIBLING_BYTES (32ull << 20)
#define ONE_READ ((uint64_t)WRK_TX_MIN_SHARE + WRK_CHUNK_SIZE)

static uv_loop_t L;
static wrk_pool *S, *C;
static int sibling, nstreams, taken;
static int fds[NSTREAMS]; /* server apps' ends */
static uint32_t ids[NSTREAMS];
static int cfa = -1, cfb = -1; /* sibling: client apps' ends of A and B */
static uv_timer_t tick;
static uint64_t t0, t_phase, written, max_held, max_limit, worst_excess;
static uint64_t got_b, wrote_b, max_b;
static int bad, phase;
static uint8_t buf[65536], rbuf[1 << 20];

static void on_client_get(wrk_pool *p, int st, uint32_t id, int fd, void *a) {
  (void)p, (void)id;
  if (st < 0) {
    fprintf(stderr, "client get: %d\n", st);
    exit(2);
  }
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  if (a)
    cfb = fd;
  else
    cfa = fd;
}

static void on_server_get(wrk_pool *p, int st, uint32_t id, int fd, void *a) {
  (void)p, (void)a;
  if (st < 0) {
    fprintf(stderr, "server get: %d\n", st);
    exit(2);
  }
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  ids[taken] = id;
  fds[taken++] = fd;
  if (taken < nstreams) {
    wrk_pool_incoming_get(S, 10000, on_server_get, NULL);
  } else if (sibling) { /* the client takes both */
    wrk_pool_outgoing_get(C, ids[0], 10000, on_client_get, NULL);
    wrk_pool_outgoing_get(C, ids[1], 10000, on_client_get, (void *)1);
  }
}

/* The books of each server connection, and the largest figures. */
static void check(void) {
  for (struct wrk_list *l = S->conns.next; l != &S->conns; l = l->next) {
    wrk_conn *c = wrk_container(l, wrk_conn, link);
    uint64_t sum = 0, holders = 0;
    for (struct wrk_list *m = c->streams.next; m != &c->streams; m = m->next) {
      wrk_stream *s = wrk_container(m, wrk_stream, conn_link);
      sum += s->tx.bytes;
      holders += s->tx.bytes > 0;
      if (sibling && s->state == WS_TAKEN && s->id == ids[1] &&
          s->tx.bytes > max_b)
        max_b = s->tx.bytes;
    }
    if (sum != c->tx_held || holders != c->tx_holders) {
      fprintf(stderr,
              "BUG: books: tx_held %llu vs streams' %llu, tx_holders %llu "
              "vs %llu\n",
              (unsigned long long)c->tx_held, (unsigned long long)sum,
              (unsigned long long)c->tx_holders, (unsigned long long)holders);
      bad = 1;
    }
    if (c->tx_limit > max_limit)
      max_limit = c->tx_limit;
    if (sum > max_held)
      max_held = sum;
    /* the rule's worst case: the k-th stream to hold bytes read up to
     * read-ahead / k (the limit may have been higher when it read) */
    double h = 0;
    for (int k = 1; k <= nstreams; k++)
      h += 1.0 / k;
    uint64_t bound = (uint64_t)(h * (double)max_limit) + nstreams * ONE_READ;
    if (sum > bound && sum - bound > worst_excess)
      worst_excess = sum - bound;
  }
}

static void write_some(int fd, uint64_t *count, uint64_t cap) {
  for (int k = 0; k < 64 && (!cap || *count < cap); k++) {
    ssize_t n = write(fd, buf, sizeof(buf));
    if (n <= 0)
      break;
    *count += (uint64_t)n;
  }
}

static uint64_t read_all(int fd) {
  uint64_t got = 0;
  for (;;) {
    ssize_t n = read(fd, rbuf, sizeof(rbuf));
    if (n <= 0)
      return got;
    got += (uint64_t)n;
  }
}

static void sibling_tick(uint64_t now) {
  static uint64_t wrote_a;
  if (cfa < 0 || cfb < 0) {
    if ((now - t0) / 1000000 > 15000) {
      fprintf(stderr, "the client did not take both streams\n");
      exit(2);
    }
    return;
  }
  if (!phase) {
    phase = 1;
    t_phase = now;
  }
  uint64_t ms = (now - t_phase) / 1000000;
  write_some(fds[0], &wrote_a, 0); /* A's writer never stops */
  if (phase == 1) {
    if (ms < 1000)
      (void)read_all(cfa); /* A's reader stops after 1 s */
    check();
    if (ms < 2500)
      return;
    phase = 2;
    t_phase = now;
    max_b = 0;
  }
  write_some(fds[1], &wrote_b, SIBLING_BYTES);
  got_b += read_all(cfb);
  check();
  double secs = (double)(now - t_phase) / 1e9;
  if (got_b < SIBLING_BYTES && secs < 60)
    return;
  printf("B moved %llu bytes in %.2f s beside a stalled A (A's app wrote "
         "%llu); B's tx queue at most %llu bytes, the connection's at most "
         "%llu, read-ahead at most %llu\n",
         (unsigned long long)got_b, secs, (unsigned long long)wrote_a,
         (unsigned long long)max_b, (unsigned long long)max_held,
         (unsigned long long)max_limit);
  if (got_b < SIBLING_BYTES) {
    printf("BUG: B did not finish in 60 s\n");
    exit(1);
  }
  if (max_b <= 4 * ONE_READ) {
    printf("BUG: B was held to the minimum share (%llu <= 4 x %llu)\n",
           (unsigned long long)max_b, (unsigned long long)ONE_READ);
    exit(1);
  }
  printf("%s\n", bad ? "BUG: the books" : "OK");
  exit(bad);
}

static void on_tick(uv_timer_t *t) {
  (void)t;
  uint64_t now = uv_hrtime();
  if (taken < nstreams) {
    if ((now - t0) / 1000000 > 15000) {
      fprintf(stderr, "only %d of %d streams taken\n", taken, nstreams);
      exit(2);
    }
    return;
  }
  if (sibling) {
    sibling_tick(now);
    return;
  }
  if (!phase) {
    phase = 1;
    t_phase = now;
  }
  for (int i = 0; i < nstreams; i++) /* as fast as each socket takes it */
    write_some(fds[i], &written, 0);
  check();
  if ((now - t_phase) / 1000000 < WRITE_MS)
    return;
  printf("apps wrote %llu bytes into %d streams; the worker held at most "
         "%llu bytes read ahead, the read-ahead was at most %llu\n",
         (unsigned long long)written, nstreams, (unsigned long long)max_held,
         (unsigned long long)max_limit);
  if (written < nstreams * (uint64_t)1048576) {
    printf("BUG: the apps could not even fill the peers' 1 MiB windows\n");
    exit(1);
  }
  if (max_held < nstreams * (uint64_t)WRK_TX_MIN_SHARE) {
    printf("BUG: the worker read less than %d x %d bytes from the apps\n",
           nstreams, WRK_TX_MIN_SHARE);
    exit(1);
  }
  if (worst_excess) {
    printf("BUG: held %llu bytes over the rule's bound\n",
           (unsigned long long)worst_excess);
    exit(1);
  }
  printf("%s\n", bad ? "BUG: the books" : "OK");
  exit(bad);
}

int main(int argc, char **argv) {
  sibling = argc > 1 && !strcmp(argv[1], "sibling");
  nstreams = sibling ? 2 : NSTREAMS;
  uv_loop_init(&L);
  char err[256];
  struct wrk_pool_config sc, cc;
  wrk_pool_config_init(&sc, WRK_SERVER);
  snprintf(sc.name, sizeof(sc.name), "srv");
  sc.set.min_cap = sc.set.max_cap = nstreams;
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
  cc.set.min_cap = cc.set.max_cap = nstreams;
  sin = (struct sockaddr_in *)&cc.target;
  sin->sin_family = AF_INET;
  sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  sin->sin_port = port;
  cc.target_len = sizeof(*sin);
  cc.set.tls_mode = '0';
  if (wrk_pool_new(&L, &cc, &C, err, sizeof(err)) < 0) {
    fprintf(stderr, "client: %s\n", err);
    return 2;
  }
  wrk_pool_start(S);
  wrk_pool_start(C);
  wrk_pool_incoming_get(S, 10000, on_server_get, NULL);
  t0 = uv_hrtime();
  uv_timer_init(&L, &tick);
  uv_timer_start(&tick, on_tick, sibling ? 1 : 5, sibling ? 1 : 5);
  uv_run(&L, UV_RUN_DEFAULT);
  return 2;
}
