/* A client pool's reconnect policy: when to try again after a failed
 * connection attempt (dial, name resolution or handshake) and which
 * failures to log, so that a server that is down costs neither a busy loop
 * nor a flood of identical log lines. Pure logic on a caller-supplied
 * clock (tested in tests/unit/test_retry.c). */
#ifndef QP_WORKER_RETRY_H
#define QP_WORKER_RETRY_H

#include <stdint.h>

/* First retry after 500 ms (the reference retries every 500 ms), doubling
 * up to 5 s; reset when a connection is up. */
#define WRK_RETRY_FIRST_NS (500 * UINT64_C(1000000))
#define WRK_RETRY_MAX_NS (5 * UINT64_C(1000000000))
/* While failing: the first failure is logged, then at most one "still
 * failing" line per 30 s. */
#define WRK_RETRY_LOG_NS (30 * UINT64_C(1000000000))

struct wrk_retry {
  uint64_t failures;  /* consecutive failed attempts */
  uint64_t delay_ns;  /* the delay after the last failure, 0 before any */
  uint64_t logged_ns; /* when the last failure line was logged */
};

enum wrk_retry_log {
  WRK_RETRY_QUIET = 0, /* log nothing (rate limit) */
  WRK_RETRY_FIRST,     /* the first failure since the last success */
  WRK_RETRY_STILL,     /* "still failing (N attempts)" */
};

/* An attempt failed at now_ns. Counts it and returns the delay before the
 * next attempt (500 ms, 1 s, 2 s, 4 s, then 5 s); *log (may be NULL) says
 * what to log. */
uint64_t wrk_retry_failed(struct wrk_retry *r, uint64_t now_ns,
                          enum wrk_retry_log *log);

/* A connection is up: returns the failed attempts before it (0: it was not
 * failing) and resets r, so the next failure waits 500 ms again. */
uint64_t wrk_retry_succeeded(struct wrk_retry *r);

/* wrk_retry_failed plus its log line (WARN; ERROR for a TLS refusal, which
 * does not heal by itself) for pool `pool`: "connection to
 * PEER failed: WHY" (or "connection failed: WHY" when peer is NULL), then
 * "connection to PEER still failing (N attempts): WHY". Returns the delay
 * in ns. */
uint64_t wrk_retry_failed_log(struct wrk_retry *r, uint64_t now_ns,
                              const char *pool, const char *peer,
                              const char *why);

#endif
