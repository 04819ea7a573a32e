/* Unit tests for shared/addr.c: splitting, numeric parsing, resolving,
 * formatting and comparing socket addresses. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "shared/addr.h"

static void test_split_ok(void **state) {
  static const struct {
    const char *in;
    int allow_zero;
    const char *host;
    unsigned port;
  } cases[] = {
      {"1.2.3.4:5", 0, "1.2.3.4", 5},
      {"example.com:443", 0, "example.com", 443},
      {"[::1]:8443", 0, "::1", 8443},
      {"[fe80::1%eth0]:1", 0, "fe80::1%eth0", 1},
      {":80", 0, "", 80},
      {"h:65535", 0, "h", 65535},
      {"h:0", 1, "h", 0},
      {"h:00080", 0, "h", 80},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    char host[QP_ADDR_STRLEN];
    unsigned port = 99999;
    int rc = qp_addr_split(cases[i].in, host, sizeof(host), &port,
                           cases[i].allow_zero);
    if (rc != 0)
      fail_msg("split(\"%s\") = %d", cases[i].in, rc);
    assert_string_equal(host, cases[i].host);
    assert_int_equal(port, cases[i].port);
  }
}

static void test_split_bad(void **state) {
  static const char *const bad[] = {
      "",           "1.2.3.4", "1.2.3.4:", ":",      "h:0",     "h:65536",
      "h:99999999", "h:-1",    "h:+1",     "h:1a",   "h: 1",    "::1:80",
      "[::1:80",    "::1]:80", "[::1]80",  "[::1]",  "[]:80",   "[[::1]]:80",
      "a]:80",      "a[:80",   "h:1:2",    "[::1]:", "[::1]:x", "garbage",
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    char host[QP_ADDR_STRLEN];
    unsigned port;
    if (qp_addr_split(bad[i], host, sizeof(host), &port, 0) != -EINVAL)
      fail_msg("split(\"%s\") accepted", bad[i]);
  }
  /* Host buffer too small. */
  char tiny[4];
  unsigned port;
  assert_int_equal(qp_addr_split("abcd:1", tiny, sizeof(tiny), &port, 0),
                   -EINVAL);
  assert_int_equal(qp_addr_split("abc:1", tiny, sizeof(tiny), &port, 0), 0);
  assert_string_equal(tiny, "abc");
}

static void test_parse_v4(void **state) {
  struct sockaddr_storage ss;
  socklen_t len = 0;
  assert_int_equal(qp_addr_parse_numeric("10.1.2.3:4433", &ss, &len), 0);
  assert_int_equal(len, sizeof(struct sockaddr_in));
  const struct sockaddr_in *sin = (const struct sockaddr_in *)&ss;
  assert_int_equal(sin->sin_family, AF_INET);
  assert_int_equal(ntohs(sin->sin_port), 4433);
  assert_int_equal(ntohl(sin->sin_addr.s_addr), 0x0a010203);
}

static void test_parse_v6(void **state) {
  struct sockaddr_storage ss;
  socklen_t len = 0;
  assert_int_equal(qp_addr_parse_numeric("[2001:db8::7]:53", &ss, &len), 0);
  assert_int_equal(len, sizeof(struct sockaddr_in6));
  const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&ss;
  assert_int_equal(sin6->sin6_family, AF_INET6);
  assert_int_equal(ntohs(sin6->sin6_port), 53);
  struct in6_addr want;
  inet_pton(AF_INET6, "2001:db8::7", &want);
  assert_memory_equal(&sin6->sin6_addr, &want, sizeof(want));
  assert_int_equal(sin6->sin6_scope_id, 0);

  assert_int_equal(qp_addr_parse_numeric("[fe80::1%3]:53", &ss, &len), 0);
  assert_int_equal(sin6->sin6_scope_id, 3);
  assert_int_equal(qp_addr_parse_numeric("[fe80::1%lo]:53", &ss, &len), 0);
  assert_true(sin6->sin6_scope_id > 0);
  assert_int_equal(qp_addr_parse_numeric("[fe80::1%]:53", &ss, &len), -EINVAL);
  assert_int_equal(qp_addr_parse_numeric("[fe80::1%no-such-if0]:53", &ss, &len),
                   -EINVAL);
}

static void test_parse_wildcard_and_port0(void **state) {
  struct sockaddr_storage ss;
  socklen_t len = 0;
  assert_int_equal(qp_addr_parse_numeric(":5", &ss, &len), 0);
  const struct sockaddr_in *sin = (const struct sockaddr_in *)&ss;
  assert_int_equal(sin->sin_family, AF_INET);
  assert_int_equal(sin->sin_addr.s_addr, htonl(INADDR_ANY));
  assert_int_equal(ntohs(sin->sin_port), 5);
  /* Port 0: bind to an ephemeral port. */
  assert_int_equal(qp_addr_parse_numeric("127.0.0.1:0", &ss, &len), 0);
  assert_int_equal(sin->sin_port, 0);
  assert_int_equal(qp_addr_parse_numeric("127.0.0.1:65536", &ss, &len),
                   -EINVAL);
}

static void test_parse_bad(void **state) {
  static const char *const bad[] = {
      "localhost:80",
      "1.2.3:80",
      "1.2.3.4.5:80",
      "256.1.1.1:80",
      "[1.2.3.4]:80",
      "[::g]:80",
      "::1:80",
      "1.2.3.4",
      "[::1]",
      "",
      "x",
      " 1.2.3.4:80",
      "1.2.3.4 :80",
      "[::1]]:80",
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    struct sockaddr_storage ss;
    socklen_t len = 1234;
    if (qp_addr_parse_numeric(bad[i], &ss, &len) != -EINVAL)
      fail_msg("parse_numeric(\"%s\") accepted", bad[i]);
    assert_int_equal(len, 1234);
  }
}

static void test_resolve(void **state) {
  struct sockaddr_storage ss;
  socklen_t len = 0;
  assert_int_equal(qp_addr_resolve("localhost:80", &ss, &len), 0);
  if (ss.ss_family == AF_INET) {
    const struct sockaddr_in *sin = (const struct sockaddr_in *)&ss;
    assert_int_equal(len, sizeof(*sin));
    assert_int_equal(ntohs(sin->sin_port), 80);
    assert_int_equal(ntohl(sin->sin_addr.s_addr) >> 24, 127);
  } else {
    const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&ss;
    assert_int_equal(ss.ss_family, AF_INET6);
    assert_int_equal(len, sizeof(*sin6));
    assert_int_equal(ntohs(sin6->sin6_port), 80);
    assert_true(IN6_IS_ADDR_LOOPBACK(&sin6->sin6_addr));
  }
  /* Numeric forms need no resolver. */
  assert_int_equal(qp_addr_resolve("[::1]:9", &ss, &len), 0);
  assert_int_equal(ss.ss_family, AF_INET6);
  assert_int_equal(qp_addr_resolve(":9", &ss, &len), 0);
  assert_int_equal(ss.ss_family, AF_INET);
  /* Bad syntax versus a name that does not resolve (.invalid is reserved). */
  assert_int_equal(qp_addr_resolve("localhost", &ss, &len), -EINVAL);
  assert_int_equal(qp_addr_resolve("local host:80", &ss, &len), -EINVAL);
  assert_int_equal(qp_addr_resolve("[localhost]:80", &ss, &len), -EINVAL);
  assert_int_equal(qp_addr_resolve("no-such-host.invalid:80", &ss, &len),
                   -EHOSTUNREACH);
}

static void test_format(void **state) {
  struct sockaddr_storage ss;
  socklen_t len;
  char buf[QP_ADDR_STRLEN];
  static const char *const round[] = {
      "1.2.3.4:5",
      "0.0.0.0:0",
      "255.255.255.255:65535",
      "[::1]:443",
      "[2001:db8::1]:1",
      "[::ffff:1.2.3.4]:7",
      "[fe80::1%4294967295]:65535",
      "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff%4294967295]:65535",
  };
  for (size_t i = 0; i < sizeof(round) / sizeof(round[0]); i++) {
    assert_int_equal(qp_addr_parse_numeric(round[i], &ss, &len), 0);
    assert_ptr_equal(qp_addr_format((struct sockaddr *)&ss, buf, sizeof(buf)),
                     buf);
    assert_string_equal(buf, round[i]);
  }
  /* Truncation keeps the NUL. */
  char small[6];
  assert_int_equal(qp_addr_parse_numeric("10.20.30.40:5", &ss, &len), 0);
  qp_addr_format((struct sockaddr *)&ss, small, sizeof(small));
  assert_string_equal(small, "10.20");
  /* Unknown family. */
  struct sockaddr sa;
  memset(&sa, 0, sizeof(sa));
  sa.sa_family = AF_UNIX;
  qp_addr_format(&sa, buf, sizeof(buf));
  assert_true(strlen(buf) > 0);
}

static void test_equal(void **state) {
  struct sockaddr_storage a, b;
  socklen_t la, lb;
  assert_int_equal(qp_addr_parse_numeric("1.2.3.4:5", &a, &la), 0);
  assert_int_equal(qp_addr_parse_numeric("1.2.3.4:5", &b, &lb), 0);
  assert_true(qp_addr_equal((struct sockaddr *)&a, (struct sockaddr *)&b));
  assert_int_equal(qp_addr_parse_numeric("1.2.3.4:6", &b, &lb), 0);
  assert_false(qp_addr_equal((struct sockaddr *)&a, (struct sockaddr *)&b));
  assert_int_equal(qp_addr_parse_numeric("1.2.3.5:5", &b, &lb), 0);
  assert_false(qp_addr_equal((struct sockaddr *)&a, (struct sockaddr *)&b));
  assert_int_equal(qp_addr_parse_numeric("[::ffff:1.2.3.4]:5", &b, &lb), 0);
  assert_false(qp_addr_equal((struct sockaddr *)&a, (struct sockaddr *)&b));

  assert_int_equal(qp_addr_parse_numeric("[::1]:5", &a, &la), 0);
  assert_int_equal(qp_addr_parse_numeric("[::1]:5", &b, &lb), 0);
  assert_true(qp_addr_equal((struct sockaddr *)&a, (struct sockaddr *)&b));
  assert_int_equal(qp_addr_parse_numeric("[::1]:6", &b, &lb), 0);
  assert_false(qp_addr_equal((struct sockaddr *)&a, (struct sockaddr *)&b));
  assert_int_equal(qp_addr_parse_numeric("[::2]:5", &b, &lb), 0);
  assert_false(qp_addr_equal((struct sockaddr *)&a, (struct sockaddr *)&b));
  assert_int_equal(qp_addr_parse_numeric("[fe80::1%1]:5", &a, &la), 0);
  assert_int_equal(qp_addr_parse_numeric("[fe80::1%2]:5", &b, &lb), 0);
  assert_false(qp_addr_equal((struct sockaddr *)&a, (struct sockaddr *)&b));
  assert_false(qp_addr_equal(NULL, (struct sockaddr *)&b));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_split_ok),
      cmocka_unit_test(test_split_bad),
      cmocka_unit_test(test_parse_v4),
      cmocka_unit_test(test_parse_v6),
      cmocka_unit_test(test_parse_wildcard_and_port0),
      cmocka_unit_test(test_parse_bad),
      cmocka_unit_test(test_resolve),
      cmocka_unit_test(test_format),
      cmocka_unit_test(test_equal),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
