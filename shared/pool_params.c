/* Derived pool settings shared by qpoold, the engine and libqpool. */
#include "shared/pool_params.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

uint64_t qp_idle_timeout_ns(uint64_t keep_alive_ns) {
  if (keep_alive_ns == 0)
    return QP_IDLE_TIMEOUT_DEFAULT_NS;
  if (keep_alive_ns > UINT64_MAX / 3)
    return UINT64_MAX;
  return 3 * keep_alive_ns;
}

uint64_t qp_stream_window_init(uint64_t max_stream_window) {
  return max_stream_window < QP_STREAM_WINDOW_INIT ? max_stream_window
                                                   : QP_STREAM_WINDOW_INIT;
}

uint64_t qp_conn_window_max(uint64_t max_stream_window) {
  uint64_t w = QP_CONN_WINDOW_FACTOR * max_stream_window;
  return w < QP_CONN_WINDOW_INIT ? QP_CONN_WINDOW_INIT : w;
}

int qp_stream_window_ok(uint64_t bytes) {
  return bytes >= QP_STREAM_WINDOW_MIN && bytes <= QP_STREAM_WINDOW_MAX;
}

uint64_t qp_idle_timeout_effective(uint64_t ours_ns, uint64_t peers_ns) {
  if (ours_ns == 0)
    return peers_ns;
  if (peers_ns == 0)
    return ours_ns;
  return ours_ns < peers_ns ? ours_ns : peers_ns;
}

const struct qp_cc qp_cc_table[] = {
    {"cubic", NGTCP2_CC_ALGO_CUBIC, "CUBIC: loss-based (ngtcp2's own default)"},
    {"bbr", NGTCP2_CC_ALGO_BBR, "BBR v1: paces at the measured bandwidth, RTT"},
    {"bbr2", NGTCP2_CC_ALGO_BBR2, "BBR v2 (IETF draft): BBR that heeds loss"},
};
const size_t qp_cc_count = sizeof(qp_cc_table) / sizeof(qp_cc_table[0]);

int qp_cc_parse(const char *name, int *out) {
  for (size_t i = 0; name && i < qp_cc_count; i++)
    if (strcmp(name, qp_cc_table[i].name) == 0) {
      *out = qp_cc_table[i].algo;
      return 0;
    }
  return -EINVAL;
}

const char *qp_cc_name(int algo) {
  for (size_t i = 0; i < qp_cc_count; i++)
    if (qp_cc_table[i].algo == algo)
      return qp_cc_table[i].name;
  return NULL;
}

char *qp_cc_names(char *buf, size_t len) {
  size_t n = 0;
  if (len == 0)
    return buf;
  buf[0] = '\0';
  for (size_t i = 0; i < qp_cc_count && n < len; i++) {
    const char *sep = i == 0 ? "" : i + 1 == qp_cc_count ? " or " : ", ";
    int w = snprintf(buf + n, len - n, "%s%s", sep, qp_cc_table[i].name);
    if (w < 0)
      break;
    n += (size_t)w;
  }
  return buf;
}
