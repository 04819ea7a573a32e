/* A client pool's reconnect back-off and its rate-limited log lines. */
#include "worker/retry.h"

#include <string.h>

#include "shared/log.h"

uint64_t wrk_retry_failed(struct wrk_retry *r, uint64_t now_ns,
                          enum wrk_retry_log *log) {
  enum wrk_retry_log l = WRK_RETRY_QUIET;
  r->failures++;
  if (r->failures == 1) {
    l = WRK_RETRY_FIRST;
    r->logged_ns = now_ns;
  } else if (now_ns - r->logged_ns >= WRK_RETRY_LOG_NS) {
    l = WRK_RETRY_STILL;
    r->logged_ns = now_ns;
  }
  if (r->delay_ns == 0)
    r->delay_ns = WRK_RETRY_FIRST_NS;
  else if (r->delay_ns < WRK_RETRY_MAX_NS / 2)
    r->delay_ns *= 2;
  else
    r->delay_ns = WRK_RETRY_MAX_NS;
  if (log)
    *log = l;
  return r->delay_ns;
}

uint64_t wrk_retry_succeeded(struct wrk_retry *r) {
  uint64_t n = r->failures;
  r->failures = 0;
  r->delay_ns = 0;
  r->logged_ns = 0;
  return n;
}

uint64_t wrk_retry_failed_log(struct wrk_retry *r, uint64_t now_ns,
                              const char *pool, const char *peer,
                              const char *why) {
  enum wrk_retry_log l;
  uint64_t delay = wrk_retry_failed(r, now_ns, &l);
  const char *sp = peer ? " to " : "";
  if (!peer)
    peer = "";
  /* a server that is down is a WARN; a TLS refusal (certificate, host
   * name, ALPN) will not heal by itself: the pool cannot start, an ERROR */
  enum qp_log_level lvl = strstr(why, "TLS") ? QP_LOG_ERROR : QP_LOG_WARN;
  if (l == WRK_RETRY_FIRST)
    qp_log(lvl, "pool %s: connection%s%s failed: %s; retrying with back-off",
           pool, sp, peer, why);
  else if (l == WRK_RETRY_STILL)
    qp_log(lvl, "pool %s: connection%s%s still failing (%llu attempts): %s",
           pool, sp, peer, (unsigned long long)r->failures, why);
  return delay;
}
