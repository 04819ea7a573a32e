/* The client pool manager's capacity and interval rules, exactly as the
 * reference Go package computes them (float thresholds, int truncation). */
#include "shared/pool_rules.h"

void qp_rules_normalize(struct qp_rules *r, int min_cap, int max_cap,
                        int64_t min_ivl, int64_t max_ivl) {
  if (min_cap <= 0)
    min_cap = 1;
  if (max_cap <= 0)
    max_cap = 1;
  if (min_cap > max_cap) {
    int t = min_cap;
    min_cap = max_cap;
    max_cap = t;
  }
  uint64_t lo = min_ivl <= 0 ? QP_INTERVAL_DEFAULT_NS : (uint64_t)min_ivl;
  uint64_t hi = max_ivl <= 0 ? QP_INTERVAL_DEFAULT_NS : (uint64_t)max_ivl;
  if (lo > hi) {
    uint64_t t = lo;
    lo = hi;
    hi = t;
  }
  r->min_cap = min_cap;
  r->max_cap = max_cap;
  r->min_ivl = lo;
  r->max_ivl = hi;
}

uint64_t qp_rules_next_interval(const struct qp_rules *r, uint64_t interval,
                                int idle, int capacity) {
  /* Go: int(float64(capacity)*0.2), truncation toward zero. */
  int low = (int)((double)capacity * 0.2);
  int high = (int)((double)capacity * 0.8);
  uint64_t next = interval;
  /* Both tests look at the interval as it was (they cannot both hold). */
  if (idle < low && interval > r->min_ivl)
    next = interval - r->min_ivl > QP_RULES_STEP_NS
               ? interval - QP_RULES_STEP_NS
               : r->min_ivl;
  if (idle > high && interval < r->max_ivl)
    next = r->max_ivl - interval > QP_RULES_STEP_NS
               ? interval + QP_RULES_STEP_NS
               : r->max_ivl;
  return next;
}

int qp_rules_next_capacity(const struct qp_rules *r, int capacity,
                           int created) {
  if (capacity <= 0)
    return capacity; /* the ratio would divide by zero: leave it */
  double ratio = (double)created / (double)capacity;
  int next = capacity;
  if (ratio < 0.2 && capacity > r->min_cap)
    next = capacity - 1;
  if (ratio > 0.8 && capacity < r->max_cap)
    next = capacity + 1;
  return next;
}
