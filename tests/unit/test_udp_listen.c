/* Unit tests for shared/udp_listen.c: a listener's bind is exclusive (a
 * second listener, a plain socket, an overlapping wildcard all fail with
 * EADDRINUSE, naming the holder) while the hand-off sockets still join it;
 * the port is free again the moment the listener and its sockets close. */
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "shared/addr.h"
#include "shared/handoff.h"
#include "shared/udp_listen.h"

static void addr_of(const char *s, struct sockaddr_storage *ss,
                    socklen_t *len) {
  *len = sizeof(*ss);
  assert_int_equal(qp_addr_parse_numeric(s, ss, len), 0);
}

static void set_port(struct sockaddr_storage *ss, unsigned port) {
  if (ss->ss_family == AF_INET)
    ((struct sockaddr_in *)ss)->sin_port = htons((uint16_t)port);
  else
    ((struct sockaddr_in6 *)ss)->sin6_port = htons((uint16_t)port);
}

/* A listener on host:0; *port gets the port it was given. */
static int listen_any(const char *host, unsigned *port,
                      struct sockaddr_storage *ss, socklen_t *len) {
  char a[QP_ADDR_STRLEN], err[512];
  snprintf(a, sizeof(a), "%s:0", host);
  addr_of(a, ss, len);
  int fd = qp_udp_listen((struct sockaddr *)ss, *len, err, sizeof(err));
  if (fd < 0)
    return fd;
  *len = sizeof(*ss);
  assert_int_equal(getsockname(fd, (struct sockaddr *)ss, len), 0);
  *port =
      ntohs(ss->ss_family == AF_INET ? ((struct sockaddr_in *)ss)->sin_port
                                     : ((struct sockaddr_in6 *)ss)->sin6_port);
  return fd;
}

static void check_exclusive(const char *host, const char *wildcard) {
  struct sockaddr_storage ss, other, peer;
  socklen_t len, olen, plen;
  unsigned port;
  char err[512], want[256], a[QP_ADDR_STRLEN], comm[32] = "";
  int lfd = listen_any(host, &port, &ss, &len);
  if (lfd == -EADDRNOTAVAIL || lfd == -EAFNOSUPPORT) {
    print_message("no %s here: skipped\n", host);
    return;
  }
  assert_true(lfd >= 0);
  FILE *f = fopen("/proc/self/comm", "r");
  assert_non_null(f);
  assert_non_null(fgets(comm, sizeof(comm), f));
  fclose(f);
  comm[strcspn(comm, "\n")] = 0;

  /* a second listener on the same address: EADDRINUSE, naming us */
  int fd = qp_udp_listen((struct sockaddr *)&ss, len, err, sizeof(err));
  assert_int_equal(fd, -EADDRINUSE);
  snprintf(want, sizeof(want),
           "cannot listen on %s: Address already in use (held by this "
           "process: %s, pid %ld, uid %u)",
           qp_addr_format((struct sockaddr *)&ss, a, sizeof(a)), comm,
           (long)getpid(), (unsigned)geteuid());
  assert_string_equal(err, want);

  /* a plain socket (no SO_REUSEPORT) cannot bind it either */
  int plain = socket(ss.ss_family, SOCK_DGRAM, 0);
  assert_true(plain >= 0);
  assert_int_equal(bind(plain, (struct sockaddr *)&ss, len), -1);
  assert_int_equal(errno, EADDRINUSE);
  close(plain);

  /* the overlapping wildcard: refused, and the message says which
   * address overlaps */
  addr_of(wildcard, &other, &olen);
  set_port(&other, port);
  fd = qp_udp_listen((struct sockaddr *)&other, olen, err, sizeof(err));
  assert_int_equal(fd, -EADDRINUSE);
  snprintf(want, sizeof(want), "(%s overlaps it, held by this process",
           qp_addr_format((struct sockaddr *)&ss, a, sizeof(a)));
  if (!strstr(err, want))
    fail_msg("\"%s\" lacks \"%s\"", err, want);

  /* the hand-off: a connected socket on the same address joins */
  int pfd = listen_any(host, &port, &peer, &plen);
  assert_true(pfd >= 0);
  int hfd = qp_handoff_socket((struct sockaddr *)&ss, len,
                              (struct sockaddr *)&peer, plen);
  assert_true(hfd >= 0);
  /* ... and datagrams of that peer reach it, not the listener */
  assert_int_equal(sendto(pfd, "x", 1, 0, (struct sockaddr *)&ss, len), 1);
  char b[4];
  assert_int_equal(recv(hfd, b, sizeof(b), 0), 1);
  assert_int_equal(recv(lfd, b, sizeof(b), MSG_DONTWAIT), -1);

  /* while a hand-off socket lives the address stays taken (a server that
   * stops frees it when its last connection's socket is gone) */
  close(lfd);
  fd = qp_udp_listen((struct sockaddr *)&ss, len, err, sizeof(err));
  assert_int_equal(fd, -EADDRINUSE);
  close(hfd);
  /* then at once */
  fd = qp_udp_listen((struct sockaddr *)&ss, len, err, sizeof(err));
  if (fd < 0)
    fail_msg("after close: %s", err);
  close(fd);
  close(pfd);
}

static void test_exclusive_v4(void **state) {
  (void)state;
  check_exclusive("127.0.0.1", "0.0.0.0:0");
}

static void test_exclusive_v6(void **state) {
  (void)state;
  check_exclusive("[::1]", "[::]:0");
}

/* A wildcard listener blocks a specific address of its family only
 * (IPv6 listeners are V6ONLY). */
static void test_wildcard_first(void **state) {
  (void)state;
  struct sockaddr_storage ss, other;
  socklen_t len, olen;
  unsigned port;
  char err[512], a[QP_ADDR_STRLEN];
  int lfd = listen_any("0.0.0.0", &port, &ss, &len);
  assert_true(lfd >= 0);
  addr_of("127.0.0.1:0", &other, &olen);
  set_port(&other, port);
  int fd = qp_udp_listen((struct sockaddr *)&other, olen, err, sizeof(err));
  assert_int_equal(fd, -EADDRINUSE);
  snprintf(a, sizeof(a), "(0.0.0.0:%u overlaps it, held by this process", port);
  if (!strstr(err, a))
    fail_msg("\"%s\" lacks \"%s\"", err, a);
  addr_of("[::1]:0", &other, &olen);
  set_port(&other, port);
  fd = qp_udp_listen((struct sockaddr *)&other, olen, err, sizeof(err));
  if (fd >= 0)
    close(fd);
  else
    assert_int_equal(fd, -EADDRNOTAVAIL); /* no IPv6 here */
  close(lfd);
}

/* No holder visible: an empty description, and a plain strerror. */
static void test_no_holder(void **state) {
  (void)state;
  struct sockaddr_storage ss;
  socklen_t len;
  char buf[128] = "junk";
  addr_of("127.0.0.1:0", &ss, &len);
  assert_int_equal(qp_udp_holder((struct sockaddr *)&ss, buf, sizeof(buf)), 0);
  assert_string_equal(buf, "");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_exclusive_v4),
      cmocka_unit_test(test_exclusive_v6),
      cmocka_unit_test(test_wildcard_first),
      cmocka_unit_test(test_no_holder),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
