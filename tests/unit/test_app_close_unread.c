/* Engine: an application that writes a last message and close()s while
 * bytes it received are still unread in its socket (an HTTP server
 * answering "413" without reading the upload does exactly this) resets our
 * end of the socketpair (POLLERR). The message it wrote before must still
 * reach the peer, then EOF. Two in-process pools on 127.0.0.1 (port 0), one
 * loop; every phase bounded. Exit 0 ok, 1 the message was lost or reset,
 * 2/3 set-up failure or no EOF in time. Found by review: the POLLERR path
 * marked our direction finished without reading what the socket held.
 * DRAIN=1: the server app reads its input first (the control case). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>

#include "worker/engine.h"

static uv_loop_t L;
static wrk_pool *S, *C;
static int sfd = -1, cfd = -1;
static uv_timer_t tick;
static uint64_t t0, written;
static int phase;
static char resp[4096];
static size_t resp_len;

static void on_server_get(wrk_pool *p, int st, uint32_t id, int fd, void *a) {
  (void)p, (void)a;
  if (st < 0) {
    fprintf(stderr, "server get: %d\n", st);
    exit(2);
  }
  fprintf(stderr, "server took %08x\n", id);
  sfd = fd;
}

static void on_client_get(wrk_pool *p, int st, uint32_t id, int fd, void *a) {
  (void)p, (void)a;
  if (st < 0) {
    fprintf(stderr, "client get: %d\n", st);
    exit(2);
  }
  fprintf(stderr, "client took %08x\n", id);
  cfd = fd;
  fcntl(cfd, F_SETFL, fcntl(cfd, F_GETFL) | O_NONBLOCK);
  wrk_pool_incoming_get(S, 5000, on_server_get, NULL);
}

static void on_tick(uv_timer_t *t) {
  (void)t;
  uint64_t ms = (uv_hrtime() - t0) / 1000000;
  if (cfd < 0 || sfd < 0) {
    if (ms > 10000) {
      fprintf(stderr, "no streams\n");
      exit(2);
    }
    return;
  }
  static uint8_t buf[65536];
  if (phase == 0) { /* client uploads as fast as the socket takes it */
    for (;;) {
      ssize_t n = write(cfd, buf, sizeof(buf));
      if (n <= 0)
        break;
      written += (uint64_t)n;
    }
    static uint64_t start;
    if (!start)
      start = ms;
    if (ms - start > 1500) {
      fprintf(stderr, "client wrote %llu bytes; server app answers + closes\n",
              (unsigned long long)written);
      const char *r = "RESPONSE 413\n";
      if (write(sfd, r, strlen(r)) < 0)
        perror("server write");
      if (getenv("DRAIN")) { /* the server app reads what it got first */
        fcntl(sfd, F_SETFL, fcntl(sfd, F_GETFL) | O_NONBLOCK);
        size_t d = 0;
        ssize_t k;
        while ((k = read(sfd, buf, sizeof(buf))) > 0)
          d += (size_t)k;
        fprintf(stderr, "server app drained %zu bytes before close\n", d);
      }
      close(sfd);
      phase = 1;
    }
    return;
  }
  if (phase == 1) { /* client app: read the response, expect EOF */
    static uint64_t since;
    if (!since)
      since = ms;
    for (;;) {
      ssize_t n = read(cfd, resp + resp_len, sizeof(resp) - resp_len - 1);
      if (n > 0) {
        resp_len += (size_t)n;
        continue;
      }
      if (n == 0) {
        int ok = resp_len == 13 && !memcmp(resp, "RESPONSE 413\n", 13);
        printf("%s: read %zu bytes (\"%.*s\") then EOF\n", ok ? "OK" : "BUG",
               resp_len, (int)(resp_len ? resp_len - 1 : 0), resp);
        exit(ok ? 0 : 1);
      }
      if (errno == EAGAIN) {
        if (ms - since > 15000) {
          printf("STUCK: read %zu bytes, no EOF after 15 s\n", resp_len);
          exit(3);
        }
        return;
      }
      printf("BUG: read %zu bytes (\"%.*s\") then %s instead of EOF\n",
             resp_len, (int)(resp_len ? resp_len - 1 : 0), resp,
             strerror(errno));
      exit(1);
    }
  }
}

int main(void) {
  uv_loop_init(&L);
  char err[256];
  struct wrk_pool_config sc, cc;
  wrk_pool_config_init(&sc, WRK_SERVER);
  snprintf(sc.name, sizeof(sc.name), "srv");
  sc.set.min_cap = sc.set.max_cap = 4;
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
  cc.set.min_cap = cc.set.max_cap = 1;
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
  wrk_pool_outgoing_get(C, WRK_ID_CONTROL, 10000, on_client_get, NULL);
  t0 = uv_hrtime();
  uv_timer_init(&L, &tick);
  uv_timer_start(&tick, on_tick, 10, 10);
  uv_run(&L, UV_RUN_DEFAULT);
  return 2;
}
