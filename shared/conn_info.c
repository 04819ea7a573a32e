/* The limits of a connection's description (see conn_info.h). */
#include <errno.h>
#include <string.h>

#include "control.pb-c.h"
#include "shared/conn_info.h"
#include "shared/pool_params.h"

static int str_ok(const char *s) {
  return s && strnlen(s, QP_CONN_STR_MAX + 1) <= QP_CONN_STR_MAX;
}

int qp_conn_info_check(const Qpool__ConnInfo *m, const char **why) {
  int algo;
  *why = NULL;
  if (!str_ok(m->local) || !str_ok(m->remote) || !str_ok(m->alpn) ||
      !str_ok(m->version) || !str_ok(m->cipher))
    *why = "a string field missing or too long";
  else if (m->congestion_control && qp_cc_parse(m->congestion_control, &algo))
    *why = "an unknown congestion controller";
  else if (m->has_read_ahead && !qp_stream_window_ok(m->read_ahead))
    *why = "a read-ahead out of range";
  else if (m->n_certs > QP_CONN_CERTS_MAX)
    *why = "too many certificates";
  else {
    size_t total = 0;
    for (size_t i = 0; i < m->n_certs && !*why; i++) {
      if (m->certs[i].len == 0 || !m->certs[i].data)
        *why = "an empty certificate";
      else if (m->certs[i].len > QP_CONN_CHAIN_MAX - total)
        *why = "a certificate chain over the size limit";
      else
        total += m->certs[i].len;
    }
  }
  return *why ? -EPROTO : 0;
}
