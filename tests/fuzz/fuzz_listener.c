/* libFuzzer target: datagrams arriving at a server pool's listener
 * (worker/listener.c through wrk_listener_feed): invariant-header
 * classification, the client-IP filter, stateless refusal, Version
 * Negotiation, the hand-off of a new connection to its own connected UDP
 * socket and ngtcp2's read of its first packet.
 *
 * One pool (listening on 127.0.0.1:0, clients 127.0.0.1 and ::1 allowed) is
 * made on the first input. Every connection an input creates is closed
 * before the next one, and the loop runs until its handles are released.
 *
 * Sources: the answers (VN, CONNECTION_CLOSE, the server's handshake) are
 * really sent to the source address, so sources are sink sockets this
 * process binds itself (ephemeral ports on 127.0.0.1, 127.0.0.2 and ::1):
 * nothing else on the machine ever receives them, and nobody answers.
 *
 * Input: byte 0 = mode. Bits 0-1: source address (0 and 3: 127.0.0.1, 1:
 * 127.0.0.2, refused by the filter, 2: [::1]); bits 2-3: which of the sinks
 * of that address (its port); bit 4: several datagrams (else the rest of the
 * input is one datagram); bit 5: run the loop once after each datagram (the
 * connection writes its answer). Several datagrams: records of one byte
 * (source, as byte 0's bits 0-3) and a 2-byte big-endian length, then the
 * datagram (truncated at the end of the input); at most MAX_DGRAMS. */
#include <errno.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "shared/addr.h"
#include "shared/ipfilter.h"
#include "shared/log.h"
#include "worker/internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x)                                                               \
  do {                                                                         \
    if (!(x))                                                                  \
      __builtin_trap();                                                        \
  } while (0)

#define NSINK 4
#define MAX_DGRAMS 8
#define FD_CHECK_EVERY 1024
#define FD_SLACK 8 /* fds the process may gain (libFuzzer, sanitizers) */

enum { SRC_V4 = 0, SRC_V4_REFUSED, SRC_V6, NSRC };

struct sink {
  int fd; /* -1: could not bind (then the address is never used) */
  struct sockaddr_storage sa;
  socklen_t salen;
};

static uv_loop_t loop;
static wrk_pool *pool;
static struct sink sinks[NSRC][NSINK];
static int base_handles;
static int base_fds;
static unsigned long runs;

static void die(const char *what, const char *why) {
  fprintf(stderr, "fuzz_listener: %s: %s\n", what, why);
  abort();
}

static int count_fds(void) {
  DIR *d = opendir("/proc/self/fd");
  if (!d)
    return -1;
  int n = 0;
  while (readdir(d))
    n++;
  closedir(d);
  return n;
}

static void sink_open(struct sink *k, const char *addr) {
  k->fd = -1;
  k->salen = sizeof(k->sa);
  if (qp_addr_parse_numeric(addr, &k->sa, &k->salen) < 0)
    die(addr, "bad address");
  int fd =
      socket(k->sa.ss_family, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0)
    return;
  k->salen = k->sa.ss_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                         : sizeof(struct sockaddr_in);
  if (bind(fd, (struct sockaddr *)&k->sa, k->salen) < 0 ||
      getsockname(fd, (struct sockaddr *)&k->sa, &k->salen) < 0) {
    close(fd);
    return;
  }
  k->fd = fd;
}

static void sinks_drain(void) {
  uint8_t buf[2048];
  for (int a = 0; a < NSRC; a++)
    for (int i = 0; i < NSINK; i++)
      if (sinks[a][i].fd >= 0)
        while (recv(sinks[a][i].fd, buf, sizeof(buf), MSG_DONTWAIT) >= 0)
          ;
}

static void setup(void) {
  char err[256];
  struct wrk_pool_config cfg;
  if (!getenv("QPOOL_LOG"))
    qp_log_set_level(QP_LOG_ERROR); /* a line per refusal would dominate */
  if (uv_loop_init(&loop) < 0)
    die("uv_loop_init", "failed");
  wrk_pool_config_init(&cfg, WRK_SERVER);
  snprintf(cfg.name, sizeof(cfg.name), "fuzz");
  if (qp_addr_parse_numeric("127.0.0.1:0", &cfg.listen, &cfg.listen_len) < 0)
    die("listen address", "bad");
  cfg.set.max_cap = 4;
  if (qp_ipfilter_add_list(&cfg.client_ip, "127.0.0.1, ::1") < 0)
    die("client_ip", "bad");
  int rc = wrk_pool_new(&loop, &cfg, &pool, err, sizeof(err));
  if (rc < 0)
    die("wrk_pool_new", err);
  if ((rc = wrk_pool_start(pool)) < 0)
    die("wrk_pool_start", strerror(-rc));
  static const char *const addrs[NSRC] = {"127.0.0.1:0", "127.0.0.2:0",
                                          "[::1]:0"};
  for (int a = 0; a < NSRC; a++)
    for (int i = 0; i < NSINK; i++)
      sink_open(&sinks[a][i], addrs[a]);
  for (int i = 0; i < NSINK; i++)
    if (sinks[SRC_V4][i].fd < 0)
      die("sink on 127.0.0.1", strerror(errno));
  uv_run(&loop, UV_RUN_NOWAIT);
  base_handles = pool->handles_open;
  base_fds = count_fds();
}

/* The source a selector (bits 0-1 address, bits 2-3 sink) names. */
static const struct sink *source(uint8_t sel) {
  int a = sel & 3;
  if (a == 3)
    a = SRC_V4;
  const struct sink *k = &sinks[a][(sel >> 2) & 3];
  return k->fd >= 0 ? k : &sinks[SRC_V4][(sel >> 2) & 3];
}

static void feed(const struct sink *src, const uint8_t *pkt, size_t len,
                 int run) {
  /* an exact-size copy: reads past the datagram are caught */
  uint8_t *copy = malloc(len ? len : 1);
  CHECK(copy != NULL);
  if (len)
    memcpy(copy, pkt, len);
  CHECK(wrk_listener_feed(pool, copy, len, (const struct sockaddr *)&src->sa,
                          src->salen) == 0);
  free(copy);
  if (run)
    uv_run(&loop, UV_RUN_NOWAIT);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!pool)
    setup();
  if (size == 0)
    return 0;
  const uint8_t mode = data[0];
  const int run = (mode >> 5) & 1;
  data++, size--;

  if (!(mode & 0x10)) {
    feed(source(mode), data, size, run);
  } else {
    for (int n = 0; n < MAX_DGRAMS && size >= 3; n++) {
      const struct sink *src = source(data[0]);
      size_t len = (size_t)data[1] << 8 | data[2];
      data += 3, size -= 3;
      if (len > size)
        len = size;
      feed(src, data, len, run);
      data += len, size -= len;
    }
  }

  /* Close what the input created; the loop releases the handles. */
  while (!wrk_list_empty(&pool->conns)) {
    wrk_conn *c = wrk_container(pool->conns.next, wrk_conn, link);
    wrk_conn_close(c, "fuzz");
  }
  CHECK(pool->st.conns == 0);
  for (int i = 0; i < 4 && pool->handles_open != base_handles; i++)
    uv_run(&loop, UV_RUN_NOWAIT);
  CHECK(pool->handles_open == base_handles);
  sinks_drain();

  if (++runs % FD_CHECK_EVERY == 0) {
    int n = count_fds();
    CHECK(n <= base_fds + FD_SLACK);
  }
  return 0;
}
