/* libFuzzer target: qp_quic_classify on arbitrary datagrams, checking the
 * classifier's invariants. Byte 0 picks the short-header DCID length. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "shared/quic_hdr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x)                                                               \
  do {                                                                         \
    if (!(x))                                                                  \
      __builtin_trap();                                                        \
  } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size == 0)
    return 0;
  size_t short_dcidlen = data[0] % (QP_QUIC_MAX_CIDLEN + 1);
  const uint8_t *pkt = data + 1;
  size_t len = size - 1;

  struct qp_quic_hdr h;
  enum qp_drop_reason why = QP_DROP_EMPTY;
  enum qp_pkt_class c =
      qp_quic_classify(len ? pkt : NULL, len, short_dcidlen, &h, &why);

  CHECK((c == QP_PKT_DROP) == (why != QP_DROP_NONE));
  CHECK(qp_drop_reason_str(why) != NULL);
  CHECK(h.dcidlen <= 255 && h.scidlen <= 255);
  CHECK(h.dcidlen <= len && h.scidlen <= len);
  CHECK(h.dcidlen + h.scidlen <= len);
  if (len == 0) {
    CHECK(c == QP_PKT_DROP && why == QP_DROP_EMPTY);
    return 0;
  }
  CHECK(why != QP_DROP_EMPTY);
  CHECK(h.is_long == !!(pkt[0] & 0x80));

  /* The same answer without the optional outputs. */
  CHECK(qp_quic_classify(pkt, len, short_dcidlen, NULL, NULL) == c);

  switch (c) {
  case QP_PKT_SHORT:
    CHECK(!h.is_long && h.version == 0 && h.scidlen == 0);
    CHECK(h.dcidlen == short_dcidlen && len >= 1 + short_dcidlen);
    CHECK(memcmp(h.dcid, pkt + 1, h.dcidlen) == 0);
    break; /* the fixed bit may be greased (RFC 9287) */
  case QP_PKT_INITIAL:
  case QP_PKT_LONG:
    CHECK(h.is_long && h.version == 1);
    CHECK(c == QP_PKT_LONG || (pkt[0] & 0x40)); /* Initials: never greased */
    CHECK(h.dcidlen <= QP_QUIC_MAX_CIDLEN && h.scidlen <= QP_QUIC_MAX_CIDLEN);
    CHECK(h.type == ((pkt[0] >> 4) & 3));
    CHECK((c == QP_PKT_INITIAL) == (h.type == 0));
    if (c == QP_PKT_INITIAL)
      CHECK(len >= QP_QUIC_MIN_INITIAL);
    break;
  case QP_PKT_NEED_VN:
    CHECK(h.is_long && h.version != 0 && h.version != 1);
    CHECK(len >= QP_QUIC_MIN_INITIAL);
    break;
  case QP_PKT_DROP:
    if (why == QP_DROP_SMALL_INITIAL)
      CHECK(len < QP_QUIC_MIN_INITIAL && h.version == 1);
    if (why == QP_DROP_SMALL_UNKNOWN)
      CHECK(len < QP_QUIC_MIN_INITIAL && h.version > 1);
    if (why == QP_DROP_VN)
      CHECK(h.is_long && h.version == 0);
    break;
  default:
    CHECK(0);
  }

  /* A full long header: the IDs are the bytes where RFC 8999 puts them. */
  if (h.is_long && why != QP_DROP_TRUNCATED) {
    CHECK(len >= 7 + h.dcidlen + h.scidlen);
    CHECK(pkt[5] == h.dcidlen);
    CHECK(memcmp(h.dcid, pkt + 6, h.dcidlen) == 0);
    CHECK(pkt[6 + h.dcidlen] == h.scidlen);
    CHECK(memcmp(h.scid, pkt + 7 + h.dcidlen, h.scidlen) == 0);
  }
  return 0;
}
