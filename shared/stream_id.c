/* The text form of stream IDs. */
#include "shared/stream_id.h"

#include <errno.h>
#include <stddef.h>

void qp_stream_id_format(uint32_t id, char buf[QP_STREAM_ID_TEXT]) {
  static const char hex[] = "0123456789abcdef";
  for (int i = 7; i >= 0; i--, id >>= 4)
    buf[i] = hex[id & 0xf];
  buf[8] = 0;
}

int qp_stream_id_parse(const char *s, uint32_t *id) {
  uint32_t v = 0;
  if (!s || !id)
    return -EINVAL;
  for (int i = 0; i < 8; i++) {
    char ch = s[i];
    int d = ch >= '0' && ch <= '9'   ? ch - '0'
            : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10
            : ch >= 'A' && ch <= 'F' ? ch - 'A' + 10
                                     : -1;
    if (d < 0)
      return -EINVAL;
    v = v << 4 | (uint32_t)d;
  }
  if (s[8] != 0)
    return -EINVAL;
  *id = v;
  return 0;
}
