/* The client pool manager's adjustment rules (docs/protocol.md), as pure
 * functions so they can be tested on a table of cases. Intervals are ns. */
#ifndef QP_SHARED_POOL_RULES_H
#define QP_SHARED_POOL_RULES_H

#include <stdint.h>

#include "shared/pool_params.h" /* QP_INTERVAL_DEFAULT_NS */

#define QP_RULES_STEP_NS UINT64_C(100000000) /* 100 ms */

struct qp_rules {
  int min_cap, max_cap;
  uint64_t min_ivl, max_ivl;
};

/* Non-positive capacity -> 1; non-positive interval -> 1 s; min > max ->
 * swapped. */
void qp_rules_normalize(struct qp_rules *r, int min_cap, int max_cap,
                        int64_t min_ivl, int64_t max_ivl);
/* Step 2: idle < trunc(capacity*0.2) and interval > min -> -100ms (floor min);
 * idle > trunc(capacity*0.8) and interval < max -> +100ms (ceil max). */
uint64_t qp_rules_next_interval(const struct qp_rules *r, uint64_t interval,
                                int idle, int capacity);
/* Step 4: ratio = created/capacity; < 0.2 and capacity > min -> -1;
 * > 0.8 and capacity < max -> +1. capacity <= 0 is returned unchanged. */
int qp_rules_next_capacity(const struct qp_rules *r, int capacity, int created);

#endif
