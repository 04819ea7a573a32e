/* Unit tests for a client pool's reconnect policy (worker/retry.c) and the
 * keep-alive -> idle timeout rule (shared/pool_params.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "shared/pool_params.h"
#include "worker/retry.h"

#define MS UINT64_C(1000000)
#define SEC (1000 * MS)

static void test_backoff_sequence(void **st) {
  (void)st;
  struct wrk_retry r = {0};
  /* the first retry as the reference's (500 ms), then doubling to 5 s */
  static const uint64_t want[] = {500 * MS, 1 * SEC, 2 * SEC, 4 * SEC,
                                  5 * SEC,  5 * SEC, 5 * SEC};
  uint64_t now = 1000 * SEC;
  for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
    uint64_t d = wrk_retry_failed(&r, now, NULL);
    assert_int_equal(d, want[i]);
    assert_int_equal(r.failures, i + 1);
    now += d;
  }
  /* success resets: the next failure waits 500 ms again */
  assert_int_equal(wrk_retry_succeeded(&r), 7);
  assert_int_equal(wrk_retry_succeeded(&r), 0);
  assert_int_equal(wrk_retry_failed(&r, now, NULL), 500 * MS);
  assert_int_equal(r.failures, 1);
}

static void test_log_rate_limit(void **st) {
  (void)st;
  struct wrk_retry r = {0};
  enum wrk_retry_log l;
  uint64_t now = 5 * SEC;
  wrk_retry_failed(&r, now, &l);
  assert_int_equal(l, WRK_RETRY_FIRST); /* the first failure is logged */
  int still = 0, quiet = 0;
  /* two minutes of failures every 5 s: one "still failing" per 30 s */
  for (int i = 0; i < 24; i++) {
    now += 5 * SEC;
    wrk_retry_failed(&r, now, &l);
    assert_int_not_equal(l, WRK_RETRY_FIRST);
    still += l == WRK_RETRY_STILL;
    quiet += l == WRK_RETRY_QUIET;
  }
  assert_int_equal(still, 4);
  assert_int_equal(quiet, 20);
  /* a dozen quick failures log once, not a dozen times */
  wrk_retry_succeeded(&r);
  int logged = 0;
  for (int i = 0; i < 12; i++) {
    wrk_retry_failed(&r, now + (uint64_t)i * 500 * MS, &l);
    logged += l != WRK_RETRY_QUIET;
  }
  assert_int_equal(logged, 1);
  /* after a success, the next failure is a first one again */
  wrk_retry_succeeded(&r);
  wrk_retry_failed(&r, now + 7 * SEC, &l);
  assert_int_equal(l, WRK_RETRY_FIRST);
}

static void test_idle_timeout_rule(void **st) {
  (void)st;
  /* as the reference (quic-go): 3 x keep-alive; 0 means no PINGs but
   * quic-go's default idle timeout of 30 s, not "none" */
  assert_int_equal(qp_idle_timeout_ns(0), 30 * SEC);
  assert_int_equal(QP_IDLE_TIMEOUT_DEFAULT_NS, 30 * SEC);
  assert_int_equal(qp_idle_timeout_ns(1 * SEC), 3 * SEC);
  assert_int_equal(qp_idle_timeout_ns(30 * SEC), 90 * SEC);
  assert_int_equal(qp_idle_timeout_ns(1), 3);
  assert_int_equal(qp_idle_timeout_ns(QP_DURATION_MAX_NS),
                   3 * QP_DURATION_MAX_NS);
  assert_int_equal(qp_idle_timeout_ns(UINT64_MAX / 2), UINT64_MAX);
  /* negotiated: the smaller one; 0 from a peer means it has none */
  assert_int_equal(qp_idle_timeout_effective(30 * SEC, 3 * SEC), 3 * SEC);
  assert_int_equal(qp_idle_timeout_effective(3 * SEC, 30 * SEC), 3 * SEC);
  assert_int_equal(qp_idle_timeout_effective(30 * SEC, 0), 30 * SEC);
  assert_int_equal(qp_idle_timeout_effective(0, 9 * SEC), 9 * SEC);
  assert_int_equal(qp_idle_timeout_effective(0, 0), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_backoff_sequence),
      cmocka_unit_test(test_log_rate_limit),
      cmocka_unit_test(test_idle_timeout_rule),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
