/* Unit tests for shared/ipfilter.c: entries, CIDR matching, IPv4-mapped
 * peers, list parsing and capacity. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "shared/ipfilter.h"

/* A peer address for the filter: "1.2.3.4" or "::1" (port is irrelevant). */
static struct sockaddr_storage peer(const char *ip) {
  struct sockaddr_storage ss;
  memset(&ss, 0, sizeof(ss));
  if (strchr(ip, ':')) {
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons(1234);
    assert_int_equal(inet_pton(AF_INET6, ip, &sin6->sin6_addr), 1);
  } else {
    struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
    sin->sin_family = AF_INET;
    sin->sin_port = htons(1234);
    assert_int_equal(inet_pton(AF_INET, ip, &sin->sin_addr), 1);
  }
  return ss;
}

static int allows(const struct qp_ipfilter *f, const char *ip) {
  struct sockaddr_storage ss = peer(ip);
  return qp_ipfilter_allows(f, (const struct sockaddr *)&ss);
}

static struct qp_ipfilter *new_filter(void **state) {
  static struct qp_ipfilter f; /* big: keep it off the stack */
  qp_ipfilter_init(&f);
  return &f;
}

static void test_empty_allows_all(void **state) {
  struct qp_ipfilter *f = new_filter(state);
  assert_true(allows(f, "1.2.3.4"));
  assert_true(allows(f, "::1"));
  assert_true(allows(f, "::ffff:10.0.0.1"));
  assert_int_equal(qp_ipfilter_add_list(f, ""), 0);
  assert_int_equal(qp_ipfilter_add_list(f, "  "), 0);
  assert_int_equal(f->n, 0);
  assert_true(allows(f, "8.8.8.8"));
}

static void test_exact(void **state) {
  struct qp_ipfilter *f = new_filter(state);
  assert_int_equal(qp_ipfilter_add(f, "192.0.2.7"), 0);
  assert_int_equal(qp_ipfilter_add(f, "2001:db8::42"), 0);
  assert_int_equal(f->n, 2);
  assert_int_equal(f->e[0].prefix, 32);
  assert_int_equal(f->e[1].prefix, 128);
  assert_true(allows(f, "192.0.2.7"));
  assert_false(allows(f, "192.0.2.8"));
  assert_false(allows(f, "192.0.2.6"));
  assert_true(allows(f, "2001:db8::42"));
  assert_false(allows(f, "2001:db8::43"));
  assert_false(allows(f, "::1"));
  /* Adding the same entry again does not use a slot. */
  assert_int_equal(qp_ipfilter_add(f, "192.0.2.7/32"), 0);
  assert_int_equal(f->n, 2);
}

static void test_cidr_v4(void **state) {
  struct qp_ipfilter *f = new_filter(state);
  assert_int_equal(qp_ipfilter_add(f, "10.0.0.0/8"), 0);
  assert_int_equal(qp_ipfilter_add(f, "172.16.0.0/12"), 0);
  assert_int_equal(qp_ipfilter_add(f, "192.168.1.128/25"), 0);
  assert_int_equal(qp_ipfilter_add(f, "203.0.113.9/32"), 0);
  assert_true(allows(f, "10.0.0.0"));
  assert_true(allows(f, "10.255.255.255"));
  assert_false(allows(f, "11.0.0.0"));
  assert_false(allows(f, "9.255.255.255"));
  assert_true(allows(f, "172.31.1.1"));
  assert_false(allows(f, "172.32.0.0"));
  assert_false(allows(f, "172.15.255.255"));
  assert_true(allows(f, "192.168.1.128"));
  assert_true(allows(f, "192.168.1.255"));
  assert_false(allows(f, "192.168.1.127"));
  assert_true(allows(f, "203.0.113.9"));
  assert_false(allows(f, "203.0.113.8"));
  /* IPv4 entries never match native IPv6 peers. */
  assert_false(allows(f, "::a00:1"));
  assert_false(allows(f, "2001:db8::1"));
}

static void test_cidr_v4_zero(void **state) {
  struct qp_ipfilter *f = new_filter(state);
  assert_int_equal(qp_ipfilter_add(f, "0.0.0.0/0"), 0);
  assert_true(allows(f, "0.0.0.0"));
  assert_true(allows(f, "255.255.255.255"));
  assert_true(allows(f, "::ffff:8.8.8.8"));
  assert_false(allows(f, "::1"));
}

static void test_cidr_v6(void **state) {
  struct qp_ipfilter *f = new_filter(state);
  assert_int_equal(qp_ipfilter_add(f, "fd00::/8"), 0);
  assert_int_equal(qp_ipfilter_add(f, "2001:db8:abcd::/48"), 0);
  assert_int_equal(qp_ipfilter_add(f, "2001:db8:1::1/128"), 0);
  assert_int_equal(qp_ipfilter_add(f, "2001:db8:2::/127"), 0);
  assert_true(allows(f, "fd12:3456::1"));
  assert_true(allows(f, "fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"));
  assert_false(allows(f, "fc00::1"));
  assert_false(allows(f, "fe00::"));
  assert_true(allows(f, "2001:db8:abcd:ffff::1"));
  assert_false(allows(f, "2001:db8:abce::"));
  assert_true(allows(f, "2001:db8:1::1"));
  assert_false(allows(f, "2001:db8:1::2"));
  assert_true(allows(f, "2001:db8:2::"));
  assert_true(allows(f, "2001:db8:2::1"));
  assert_false(allows(f, "2001:db8:2::2"));
  assert_false(allows(f, "10.0.0.1"));
}

static void test_cidr_v6_zero(void **state) {
  struct qp_ipfilter *f = new_filter(state);
  assert_int_equal(qp_ipfilter_add(f, "::/0"), 0);
  assert_true(allows(f, "::"));
  assert_true(allows(f, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"));
  assert_false(allows(f, "1.2.3.4"));
}

static void test_host_bits(void **state) {
  static const char *const bad[] = {
      "10.0.0.1/8",  "192.168.1.1/24", "192.168.1.129/25", "0.0.0.1/0",
      "fd00::1/8",   "2001:db8::1/64", "::1/127",          "fe80::/8",
      "10.1.0.0/15", "8000::/0",
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    struct qp_ipfilter *f = new_filter(state);
    if (qp_ipfilter_add(f, bad[i]) != -EINVAL)
      fail_msg("\"%s\" accepted", bad[i]);
    assert_int_equal(f->n, 0);
  }
  struct qp_ipfilter *f = new_filter(state);
  assert_int_equal(qp_ipfilter_add(f, "11.0.0.0/7"), -EINVAL); /* 11 = 1011 */
  assert_int_equal(qp_ipfilter_add(f, "10.0.0.0/7"), 0);
  assert_int_equal(qp_ipfilter_add(f, "10.0.0.0/15"), 0);
  assert_int_equal(qp_ipfilter_add(f, "fe80::/10"), 0);
}

static void test_syntax(void **state) {
  static const char *const bad[] = {
      "",
      "1.2.3",
      "1.2.3.4.5",
      "256.0.0.0",
      "1.2.3.4/",
      "1.2.3.4/33",
      "::/129",
      "1.2.3.4/-1",
      "1.2.3.4/+8",
      "1.2.3.4/0x8",
      "1.2.3.4/8/8",
      " 1.2.3.4",
      "1.2.3.4 ",
      "[::1]",
      "fe80::1%lo",
      "::g",
      "host.example",
      "1.2.3.4/1000",
      "aaaa:bbbb:cccc:dddd:eeee:ffff:1111:2222:3333:4444:5555:6666/128",
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    struct qp_ipfilter *f = new_filter(state);
    if (qp_ipfilter_add(f, bad[i]) != -EINVAL)
      fail_msg("\"%s\" accepted", bad[i]);
  }
}

static void test_mapped(void **state) {
  struct qp_ipfilter *f = new_filter(state);
  assert_int_equal(qp_ipfilter_add(f, "198.51.100.0/24"), 0);
  assert_int_equal(qp_ipfilter_add(f, "2001:db8::/32"), 0);
  /* Dual-stack sockets report IPv4 peers as ::ffff:a.b.c.d. */
  assert_true(allows(f, "::ffff:198.51.100.20"));
  assert_false(allows(f, "::ffff:198.51.101.20"));
  /* The IPv4-compatible (deprecated) form is not mapped. */
  assert_false(allows(f, "::198.51.100.20"));
  assert_true(allows(f, "2001:db8::1"));

  /* A mapped entry is stored as IPv4 and matches both kinds of peer. */
  f = new_filter(state);
  assert_int_equal(qp_ipfilter_add(f, "::ffff:10.0.0.0/104"), 0);
  assert_int_equal(f->e[0].family, AF_INET);
  assert_int_equal(f->e[0].prefix, 8);
  assert_true(allows(f, "10.9.8.7"));
  assert_true(allows(f, "::ffff:10.9.8.7"));
  assert_false(allows(f, "11.0.0.0"));
  assert_int_equal(qp_ipfilter_add(f, "::ffff:192.0.2.1"), 0);
  assert_int_equal(f->e[1].family, AF_INET);
  assert_int_equal(f->e[1].prefix, 32);
  assert_true(allows(f, "192.0.2.1"));
}

static void test_list(void **state) {
  struct qp_ipfilter *f = new_filter(state);
  assert_int_equal(
      qp_ipfilter_add_list(f, "10.0.0.0/8, 192.0.2.1 ,\t::1,fd00::/8"), 0);
  assert_int_equal(f->n, 4);
  assert_true(allows(f, "10.1.1.1"));
  assert_true(allows(f, "192.0.2.1"));
  assert_true(allows(f, "::1"));
  assert_true(allows(f, "fd00::5"));
  assert_false(allows(f, "192.0.2.2"));

  f = new_filter(state);
  assert_int_equal(qp_ipfilter_add_list(f, "192.0.2.1"), 0);
  assert_int_equal(f->n, 1);

  /* Stops at the first bad item; the good ones before it stay. */
  f = new_filter(state);
  assert_int_equal(qp_ipfilter_add_list(f, "1.1.1.1, bogus, 2.2.2.2"), -EINVAL);
  assert_int_equal(f->n, 1);
  assert_true(allows(f, "1.1.1.1"));
  assert_false(allows(f, "2.2.2.2"));

  static const char *const bad[] = {"1.1.1.1,",         ",1.1.1.1",
                                    "1.1.1.1,,2.2.2.2", " , ",
                                    "1.1.1.1 2.2.2.2",  "10.0.0.1/8"};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    f = new_filter(state);
    if (qp_ipfilter_add_list(f, bad[i]) != -EINVAL)
      fail_msg("list \"%s\" accepted", bad[i]);
  }
}

static void test_full(void **state) {
  struct qp_ipfilter *f = new_filter(state);
  char spec[32];
  for (int i = 0; i < QP_IPFILTER_MAX; i++) {
    snprintf(spec, sizeof(spec), "10.0.%d.%d", i / 256, i % 256);
    assert_int_equal(qp_ipfilter_add(f, spec), 0);
  }
  assert_int_equal(f->n, QP_IPFILTER_MAX);
  assert_int_equal(qp_ipfilter_add(f, "192.0.2.1"), -ENOSPC);
  assert_int_equal(qp_ipfilter_add_list(f, "192.0.2.1"), -ENOSPC);
  /* Syntax is still checked first, and a duplicate costs nothing. */
  assert_int_equal(qp_ipfilter_add(f, "bogus"), -EINVAL);
  assert_int_equal(qp_ipfilter_add(f, "10.0.0.5"), 0);
  assert_int_equal(f->n, QP_IPFILTER_MAX);
  assert_true(allows(f, "10.0.0.255"));
  assert_false(allows(f, "10.0.1.0"));
}

static void test_other_family(void **state) {
  struct qp_ipfilter *f = new_filter(state);
  assert_int_equal(qp_ipfilter_add(f, "0.0.0.0/0"), 0);
  assert_int_equal(qp_ipfilter_add(f, "::/0"), 0);
  struct sockaddr sa;
  memset(&sa, 0, sizeof(sa));
  sa.sa_family = AF_UNIX;
  assert_false(qp_ipfilter_allows(f, &sa));
  assert_false(qp_ipfilter_allows(f, NULL));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_empty_allows_all),
      cmocka_unit_test(test_exact),
      cmocka_unit_test(test_cidr_v4),
      cmocka_unit_test(test_cidr_v4_zero),
      cmocka_unit_test(test_cidr_v6),
      cmocka_unit_test(test_cidr_v6_zero),
      cmocka_unit_test(test_host_bits),
      cmocka_unit_test(test_syntax),
      cmocka_unit_test(test_mapped),
      cmocka_unit_test(test_list),
      cmocka_unit_test(test_full),
      cmocka_unit_test(test_other_family),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
