/* Derived pool settings shared by qpoold, the engine and libqpool. */
#include "shared/pool_params.h"

uint64_t qp_idle_timeout_ns(uint64_t keep_alive_ns) {
  if (keep_alive_ns == 0)
    return QP_IDLE_TIMEOUT_DEFAULT_NS;
  if (keep_alive_ns > UINT64_MAX / 3)
    return UINT64_MAX;
  return 3 * keep_alive_ns;
}

uint64_t qp_idle_timeout_effective(uint64_t ours_ns, uint64_t peers_ns) {
  if (ours_ns == 0)
    return peers_ns;
  if (peers_ns == 0)
    return ours_ns;
  return ours_ns < peers_ns ? ours_ns : peers_ns;
}
