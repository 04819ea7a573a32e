/* Unit tests for shared/duration.c: Go time.ParseDuration / Duration.String
 * compatibility. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "shared/duration.h"

#define NS UINT64_C(1)
#define US (UINT64_C(1000) * NS)
#define MS (UINT64_C(1000) * US)
#define SEC (UINT64_C(1000) * MS)
#define MIN (UINT64_C(60) * SEC)
#define HOUR (UINT64_C(60) * MIN)

struct parse_case {
  const char *in;
  uint64_t ns;
};

static void test_parse_valid(void **state) {
  static const struct parse_case cases[] = {
      {"0", 0},
      {"+0", 0},
      {"0s", 0},
      {"1ns", 1},
      {"1.5s", 1500 * MS},
      {"1m30s", 90 * SEC},
      {"2h45m", 2 * HOUR + 45 * MIN},
      {"100ms", 100 * MS},
      {"1us", 1 * US},
      {"1\xc2\xb5s", 1 * US}, /* micro sign */
      {"1\xce\xbcs", 1 * US}, /* greek mu */
      {"1.s", SEC},
      {".5s", 500 * MS},
      {"+5s", 5 * SEC},
      {"1h1m1s1ms1us1ns", HOUR + MIN + SEC + MS + US + 1},
      {"0.000000001s", 1},
      {"0.1234567891s", 123456789}, /* digits below a ns are dropped */
      {"30s", 30 * SEC},
      {"1.5h", HOUR + 30 * MIN},
      {"00010s", 10 * SEC},
      {"2562047h47m16.854775807s", UINT64_C(9223372036854775807)},
      {"9223372036854775807ns", UINT64_C(9223372036854775807)},
      {"1s1s", 2 * SEC},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    uint64_t ns = 12345;
    int rc = qp_duration_parse(cases[i].in, &ns);
    if (rc != 0 || ns != cases[i].ns)
      fail_msg("parse(\"%s\") = %d, %llu; want %llu", cases[i].in, rc,
               (unsigned long long)ns, (unsigned long long)cases[i].ns);
  }
}

struct bad_case {
  const char *in;
  int rc;
};

static void test_parse_invalid(void **state) {
  static const struct bad_case cases[] = {
      {"", -EINVAL},
      {"1", -EINVAL},
      {"-1s", -EINVAL},
      {"-0", -EINVAL},
      {"1x", -EINVAL},
      {"s", -EINVAL},
      {".s", -EINVAL},
      {".", -EINVAL},
      {"1.5", -EINVAL},
      {" 1s", -EINVAL},
      {"1s ", -EINVAL},
      {"1 s", -EINVAL},
      {"1S", -EINVAL},
      {"1sec", -EINVAL},
      {"1s2", -EINVAL},
      {"+", -EINVAL},
      {"++1s", -EINVAL},
      {"1e3s", -EINVAL},
      {"0x10s", -EINVAL},
      {"1\xc2s", -EINVAL},
      {"999999999h", -ERANGE},
      {"9223372036854775808ns", -ERANGE},
      {"2562047h47m16.854775808s", -ERANGE},
      {"99999999999999999999999s", -ERANGE},
      {"9223372036854775807ns1ns", -ERANGE},
      {"5124095h1h", -ERANGE},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    uint64_t ns = 777;
    int rc = qp_duration_parse(cases[i].in, &ns);
    if (rc != cases[i].rc || ns != 777)
      fail_msg("parse(\"%s\") = %d (ns %llu); want %d, ns untouched",
               cases[i].in, rc, (unsigned long long)ns, cases[i].rc);
  }
  uint64_t ns;
  assert_int_equal(qp_duration_parse(NULL, &ns), -EINVAL);
}

struct fmt_case {
  uint64_t ns;
  const char *out;
};

static void test_format(void **state) {
  static const struct fmt_case cases[] = {
      {0, "0s"},
      {1, "1ns"},
      {999, "999ns"},
      {1 * US, "1\xc2\xb5s"},
      {1500, "1.5\xc2\xb5s"},
      {100 * MS, "100ms"},
      {1500 * MS, "1.5s"},
      {1234567, "1.234567ms"},
      {SEC, "1s"},
      {90 * SEC, "1m30s"},
      {HOUR, "1h0m0s"},
      {2 * HOUR + 45 * MIN, "2h45m0s"},
      {HOUR + 1, "1h0m0.000000001s"},
      {UINT64_C(9223372036854775807), "2562047h47m16.854775807s"},
      {UINT64_MAX, "5124095h34m33.709551615s"},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    char buf[64];
    size_t n = qp_duration_format(cases[i].ns, buf, sizeof(buf));
    assert_string_equal(buf, cases[i].out);
    assert_int_equal(n, strlen(cases[i].out));
  }
}

static void test_format_truncates(void **state) {
  char buf[4] = "xyz";
  assert_int_equal(qp_duration_format(90 * SEC, buf, sizeof(buf)), 5);
  assert_string_equal(buf, "1m3");
  assert_int_equal(qp_duration_format(90 * SEC, buf, 1), 5);
  assert_string_equal(buf, "");
  buf[0] = 'q';
  assert_int_equal(qp_duration_format(90 * SEC, buf, 0), 5);
  assert_int_equal(buf[0], 'q');
}

static void test_round_trip(void **state) {
  static const uint64_t values[] = {0,
                                    1,
                                    999,
                                    1000,
                                    1001,
                                    1500,
                                    999999,
                                    MS,
                                    1234567,
                                    100 * MS,
                                    SEC - 1,
                                    SEC,
                                    1500 * MS,
                                    59 * SEC,
                                    MIN,
                                    90 * SEC,
                                    HOUR - 1,
                                    HOUR,
                                    HOUR + 1,
                                    25 * HOUR + 7 * MS,
                                    UINT64_C(9223372036854775807)};
  for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
    char buf[64];
    uint64_t back = 0;
    qp_duration_format(values[i], buf, sizeof(buf));
    assert_int_equal(qp_duration_parse(buf, &back), 0);
    if (back != values[i])
      fail_msg("%llu -> \"%s\" -> %llu", (unsigned long long)values[i], buf,
               (unsigned long long)back);
  }
  /* And a sweep of odd values across every unit range. */
  for (uint64_t v = 1; v < UINT64_C(4000000000000); v = v * 7 + 3) {
    char buf[64];
    uint64_t back = 0;
    qp_duration_format(v, buf, sizeof(buf));
    assert_int_equal(qp_duration_parse(buf, &back), 0);
    assert_true(back == v);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_parse_valid),
      cmocka_unit_test(test_parse_invalid),
      cmocka_unit_test(test_format),
      cmocka_unit_test(test_format_truncates),
      cmocka_unit_test(test_round_trip),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
