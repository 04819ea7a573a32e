/* Unit tests for shared/pool_rules.c: tables of interval and capacity
 * adjustments, checked against the reference Go package's arithmetic. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "shared/pool_rules.h"

#define MS INT64_C(1000000)
#define SEC (1000 * MS)

static void test_normalize(void **state) {
  static const struct {
    int min_cap, max_cap;
    int64_t min_ivl, max_ivl;
    int want_min_cap, want_max_cap;
    uint64_t want_min_ivl, want_max_ivl;
  } cases[] = {
      {2, 8, 100 * MS, 5 * SEC, 2, 8, 100 * MS, 5 * SEC},
      {0, 0, 0, 0, 1, 1, SEC, SEC},
      {-5, -1, -1, -SEC, 1, 1, SEC, SEC},
      {0, 10, 0, 3 * SEC, 1, 10, SEC, 3 * SEC},
      {10, 0, 3 * SEC, 0, 1, 10, SEC, 3 * SEC}, /* default, then swap */
      {10, 0, 500 * MS, 0, 1, 10, 500 * MS, SEC},
      {8, 2, 5 * SEC, 100 * MS, 2, 8, 100 * MS, 5 * SEC},
      {3, 3, SEC, SEC, 3, 3, SEC, SEC},
      {1, 1, 1, 1, 1, 1, 1, 1},
      {5, -3, 1, -7, 1, 5, 1, SEC},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    struct qp_rules r;
    qp_rules_normalize(&r, cases[i].min_cap, cases[i].max_cap, cases[i].min_ivl,
                       cases[i].max_ivl);
    if (r.min_cap != cases[i].want_min_cap ||
        r.max_cap != cases[i].want_max_cap ||
        r.min_ivl != cases[i].want_min_ivl ||
        r.max_ivl != cases[i].want_max_ivl)
      fail_msg("normalize case %zu: got cap %d..%d ivl %llu..%llu", i,
               r.min_cap, r.max_cap, (unsigned long long)r.min_ivl,
               (unsigned long long)r.max_ivl);
  }
}

/* Rules are built with qp_rules_normalize from the raw values given. */
struct ivl_case {
  int line;
  int64_t min_ivl, max_ivl;
  int capacity, idle;
  uint64_t interval, want;
};

static void test_next_interval(void **state) {
  static const struct ivl_case cases[] = {
      /* capacity 10: thresholds int(2.0)=2 and int(8.0)=8 */
      {__LINE__, 100 * MS, 2 * SEC, 10, 1, SEC, 900 * MS},
      {__LINE__, 100 * MS, 2 * SEC, 10, 0, SEC, 900 * MS},
      {__LINE__, 100 * MS, 2 * SEC, 10, 2, SEC, SEC}, /* idle == low */
      {__LINE__, 100 * MS, 2 * SEC, 10, 5, SEC, SEC},
      {__LINE__, 100 * MS, 2 * SEC, 10, 8, SEC, SEC}, /* idle == high */
      {__LINE__, 100 * MS, 2 * SEC, 10, 9, SEC, 1100 * MS},
      {__LINE__, 100 * MS, 2 * SEC, 10, 10, SEC, 1100 * MS},
      /* at and near the bounds */
      {__LINE__, 100 * MS, 2 * SEC, 10, 1, 100 * MS, 100 * MS},
      {__LINE__, 100 * MS, 2 * SEC, 10, 1, 150 * MS, 100 * MS},
      {__LINE__, 100 * MS, 2 * SEC, 10, 1, 200 * MS, 100 * MS},
      {__LINE__, 100 * MS, 2 * SEC, 10, 1, 201 * MS, 101 * MS},
      {__LINE__, 100 * MS, 2 * SEC, 10, 9, 2 * SEC, 2 * SEC},
      {__LINE__, 100 * MS, 2 * SEC, 10, 9, 1950 * MS, 2 * SEC},
      {__LINE__, 100 * MS, 2 * SEC, 10, 9, 1900 * MS, 2 * SEC},
      {__LINE__, 100 * MS, 2 * SEC, 10, 9, 1899 * MS, 1999 * MS},
      {__LINE__, 100 * MS, 2 * SEC, 10, 1, 2 * SEC, 1900 * MS},
      {__LINE__, 100 * MS, 2 * SEC, 10, 9, 100 * MS, 200 * MS},
      /* a minimum below one step: no unsigned wrap-around */
      {__LINE__, 30 * MS, SEC, 10, 0, 50 * MS, 30 * MS},
      {__LINE__, 1, SEC, 10, 0, 99 * MS, 1},
      /* outside the bounds: only the rule's own test applies */
      {__LINE__, 100 * MS, 2 * SEC, 10, 0, 50 * MS, 50 * MS},
      {__LINE__, 100 * MS, 2 * SEC, 10, 9, 50 * MS, 150 * MS},
      {__LINE__, 100 * MS, 2 * SEC, 10, 9, 3 * SEC, 3 * SEC},
      {__LINE__, 100 * MS, 2 * SEC, 10, 0, 3 * SEC, 2900 * MS},
      /* capacity 1..4: int(cap*0.2) == 0, so the interval never shrinks */
      {__LINE__, 100 * MS, 2 * SEC, 1, 0, SEC, SEC},
      {__LINE__, 100 * MS, 2 * SEC, 1, 1, SEC, 1100 * MS}, /* 1 > int(0.8) */
      {__LINE__, 100 * MS, 2 * SEC, 2, 0, SEC, SEC},
      {__LINE__, 100 * MS, 2 * SEC, 2, 1, SEC, SEC}, /* 1 == int(1.6) */
      {__LINE__, 100 * MS, 2 * SEC, 2, 2, SEC, 1100 * MS},
      {__LINE__, 100 * MS, 2 * SEC, 3, 0, SEC, SEC},
      {__LINE__, 100 * MS, 2 * SEC, 3, 2, SEC, SEC}, /* 2 == int(2.4) */
      {__LINE__, 100 * MS, 2 * SEC, 3, 3, SEC, 1100 * MS},
      {__LINE__, 100 * MS, 2 * SEC, 4, 0, SEC, SEC},
      {__LINE__, 100 * MS, 2 * SEC, 4, 3, SEC, SEC}, /* 3 == int(3.2) */
      {__LINE__, 100 * MS, 2 * SEC, 4, 4, SEC, 1100 * MS},
      /* capacity 5: int(1.0) == 1 and int(4.0) == 4 */
      {__LINE__, 100 * MS, 2 * SEC, 5, 0, SEC, 900 * MS},
      {__LINE__, 100 * MS, 2 * SEC, 5, 1, SEC, SEC},
      {__LINE__, 100 * MS, 2 * SEC, 5, 4, SEC, SEC},
      {__LINE__, 100 * MS, 2 * SEC, 5, 5, SEC, 1100 * MS},
      /* capacity 7: int(1.4) == 1 and int(5.6) == 5 */
      {__LINE__, 100 * MS, 2 * SEC, 7, 0, SEC, 900 * MS},
      {__LINE__, 100 * MS, 2 * SEC, 7, 1, SEC, SEC},
      {__LINE__, 100 * MS, 2 * SEC, 7, 5, SEC, SEC},
      {__LINE__, 100 * MS, 2 * SEC, 7, 6, SEC, 1100 * MS},
      /* capacity 0 (not normalised by the caller): no division involved */
      {__LINE__, 100 * MS, 2 * SEC, 0, 0, SEC, SEC},
      {__LINE__, 100 * MS, 2 * SEC, 0, 1, SEC, 1100 * MS},
      /* min == max: nothing moves */
      {__LINE__, SEC, SEC, 10, 0, SEC, SEC},
      {__LINE__, SEC, SEC, 10, 10, SEC, SEC},
      {__LINE__, 500 * MS, 500 * MS, 10, 10, 500 * MS, 500 * MS},
      /* normalised bounds: 0 means 1 s; min > max swaps */
      {__LINE__, 0, 0, 10, 0, SEC, SEC},
      {__LINE__, 0, 0, 10, 10, SEC, SEC},
      {__LINE__, 0, 3 * SEC, 10, 0, SEC, SEC},
      {__LINE__, 0, 3 * SEC, 10, 10, SEC, 1100 * MS},
      {__LINE__, -1, 3 * SEC, 10, 0, 1100 * MS, SEC},
      {__LINE__, 2 * SEC, 500 * MS, 10, 0, SEC, 900 * MS},
      {__LINE__, 2 * SEC, 500 * MS, 10, 0, 550 * MS, 500 * MS},
      {__LINE__, 2 * SEC, 500 * MS, 10, 10, 1950 * MS, 2 * SEC},
      /* large pool */
      {__LINE__, 100 * MS, 2 * SEC, 1000, 199, SEC, 900 * MS},
      {__LINE__, 100 * MS, 2 * SEC, 1000, 200, SEC, SEC},
      {__LINE__, 100 * MS, 2 * SEC, 1000, 800, SEC, SEC},
      {__LINE__, 100 * MS, 2 * SEC, 1000, 801, SEC, 1100 * MS},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    const struct ivl_case *c = &cases[i];
    struct qp_rules r;
    qp_rules_normalize(&r, 1, 1000, c->min_ivl, c->max_ivl);
    uint64_t got =
        qp_rules_next_interval(&r, c->interval, c->idle, c->capacity);
    if (got != c->want)
      fail_msg("line %d: cap %d idle %d ivl %llu -> %llu, want %llu", c->line,
               c->capacity, c->idle, (unsigned long long)c->interval,
               (unsigned long long)got, (unsigned long long)c->want);
  }
}

struct cap_case {
  int line;
  int min_cap, max_cap;
  int capacity, created, want;
};

static void test_next_capacity(void **state) {
  static const struct cap_case cases[] = {
      /* capacity 10: ratio 0.1 .. 1.0 */
      {__LINE__, 1, 20, 10, 0, 9},
      {__LINE__, 1, 20, 10, 1, 9},
      {__LINE__, 1, 20, 10, 2, 10}, /* 0.2 is not < 0.2 */
      {__LINE__, 1, 20, 10, 5, 10},
      {__LINE__, 1, 20, 10, 8, 10}, /* 0.8 is not > 0.8 */
      {__LINE__, 1, 20, 10, 9, 11},
      {__LINE__, 1, 20, 10, 10, 11},
      {__LINE__, 1, 20, 10, 25, 11}, /* ratio > 1 */
      /* at the bounds */
      {__LINE__, 10, 20, 10, 0, 10},
      {__LINE__, 11, 20, 10, 0, 10}, /* below min already: no lower */
      {__LINE__, 1, 10, 10, 10, 10},
      {__LINE__, 1, 9, 10, 10, 10},
      {__LINE__, 1, 9, 10, 0, 9},
      /* small capacities */
      {__LINE__, 1, 5, 1, 0, 1},
      {__LINE__, 1, 5, 1, 1, 2},
      {__LINE__, 1, 1, 1, 1, 1},
      {__LINE__, 1, 5, 2, 0, 1},
      {__LINE__, 1, 5, 2, 1, 2},
      {__LINE__, 1, 5, 2, 2, 3},
      {__LINE__, 1, 5, 5, 0, 4},
      {__LINE__, 1, 5, 5, 1, 5}, /* 1/5 == 0.2 */
      {__LINE__, 1, 5, 5, 4, 5}, /* 4/5 == 0.8 */
      {__LINE__, 1, 5, 5, 5, 5}, /* at max */
      {__LINE__, 1, 6, 5, 5, 6},
      {__LINE__, 1, 50, 15, 3, 15}, /* 3/15 == 0.2 */
      {__LINE__, 1, 50, 15, 2, 14},
      {__LINE__, 1, 50, 15, 12, 15}, /* 12/15 == 0.8 */
      {__LINE__, 1, 50, 15, 13, 16},
      /* min == max */
      {__LINE__, 3, 3, 3, 0, 3},
      {__LINE__, 3, 3, 3, 3, 3},
      /* capacity 0 or below: no division, no change */
      {__LINE__, 1, 5, 0, 0, 0},
      {__LINE__, 1, 5, 0, 3, 0},
      {__LINE__, 1, 5, -2, 1, -2},
      /* normalised bounds */
      {__LINE__, 0, 0, 1, 1, 1},
      {__LINE__, 0, 0, 2, 0, 1},
      {__LINE__, 8, 2, 8, 8, 8},
      {__LINE__, 8, 2, 8, 0, 7},
      {__LINE__, 8, 2, 2, 0, 2},
      {__LINE__, 8, 2, 2, 2, 3},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    const struct cap_case *c = &cases[i];
    struct qp_rules r;
    qp_rules_normalize(&r, c->min_cap, c->max_cap, SEC, SEC);
    int got = qp_rules_next_capacity(&r, c->capacity, c->created);
    if (got != c->want)
      fail_msg("line %d: cap %d created %d -> %d, want %d", c->line,
               c->capacity, c->created, got, c->want);
  }
}

/* Converges the way the reference's manager does when demand is steady. */
static void test_capacity_converges(void **state) {
  struct qp_rules r;
  qp_rules_normalize(&r, 2, 16, SEC, SEC);
  int cap = 2;
  for (int round = 0; round < 100; round++)
    cap = qp_rules_next_capacity(&r, cap, cap); /* every slot used */
  assert_int_equal(cap, 16);
  for (int round = 0; round < 100; round++)
    cap = qp_rules_next_capacity(&r, cap, 0); /* nothing used */
  assert_int_equal(cap, 2);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_normalize),
      cmocka_unit_test(test_next_interval),
      cmocka_unit_test(test_next_capacity),
      cmocka_unit_test(test_capacity_converges),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
