/* np-quic stream setup state machine (see stream_setup.h). */
#include "worker/stream_setup.h"

#include <string.h>

void wrk_setup_init(struct wrk_setup *s, int is_server) {
  memset(s, 0, sizeof(*s));
  s->is_server = (uint8_t)(is_server != 0);
}

static enum wrk_setup_result server_feed(struct wrk_setup *s,
                                         const uint8_t *data, size_t len,
                                         int fin, size_t *consumed) {
  if (len == 0) {
    if (fin) {
      s->reason = "stream ended before its setup byte";
      return WRK_SETUP_EOF;
    }
    return WRK_SETUP_MORE;
  }
  if (len > 1) {
    s->reason = "more than one byte before the ID";
    return WRK_SETUP_VIOLATION;
  }
  if (data[0] != 0x00) {
    s->reason = "setup byte is not 0x00";
    return WRK_SETUP_VIOLATION;
  }
  if (fin) {
    s->reason = "stream ended right after its setup byte";
    return WRK_SETUP_EOF;
  }
  *consumed = 1;
  s->done = 1;
  return WRK_SETUP_DONE;
}

static enum wrk_setup_result client_feed(struct wrk_setup *s,
                                         const uint8_t *data, size_t len,
                                         int fin, size_t *consumed) {
  size_t need = sizeof(s->idb) - s->have;
  size_t n = len < need ? len : need;
  if (n) /* a FIN-only frame comes with data == NULL */
    memcpy(s->idb + s->have, data, n);
  s->have = (uint8_t)(s->have + n);
  *consumed = n;
  if (s->have < sizeof(s->idb)) {
    if (fin) {
      s->reason = "stream closed before its ID arrived";
      return WRK_SETUP_EOF;
    }
    return WRK_SETUP_MORE;
  }
  s->id = (uint32_t)s->idb[0] << 24 | (uint32_t)s->idb[1] << 16 |
          (uint32_t)s->idb[2] << 8 | s->idb[3];
  s->done = 1;
  return WRK_SETUP_DONE;
}

enum wrk_setup_result wrk_setup_feed(struct wrk_setup *s, const uint8_t *data,
                                     size_t len, int fin, size_t *consumed) {
  *consumed = 0;
  if (s->done)
    return WRK_SETUP_DONE;
  return s->is_server ? server_feed(s, data, len, fin, consumed)
                      : client_feed(s, data, len, fin, consumed);
}
