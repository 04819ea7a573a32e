/* First look at a received datagram: the QUIC invariant header (RFC 8999) and
 * the v1 rules a server applies before any connection state exists. */
#include "shared/quic_hdr.h"

#include <string.h>

#define QUIC_V1 UINT32_C(0x00000001)
#define HDR_FORM_LONG 0x80
#define HDR_FIXED_BIT 0x40

static enum qp_pkt_class drop(enum qp_drop_reason r, enum qp_drop_reason *why) {
  if (why)
    *why = r;
  return QP_PKT_DROP;
}

/* Copies a length-prefixed connection ID at pkt[*off]. Returns 0, or -1 if
 * the length byte or the ID runs past len. */
static int read_cid(const uint8_t *pkt, size_t len, size_t *off, uint8_t *cid,
                    size_t *cidlen) {
  if (*off >= len)
    return -1;
  size_t n = pkt[*off];
  if (n > len - *off - 1)
    return -1;
  memcpy(cid, pkt + *off + 1, n);
  *cidlen = n;
  *off += 1 + n;
  return 0;
}

enum qp_pkt_class qp_quic_classify(const uint8_t *pkt, size_t len,
                                   size_t short_dcidlen, struct qp_quic_hdr *h,
                                   enum qp_drop_reason *why) {
  struct qp_quic_hdr scratch;
  if (!h)
    h = &scratch;
  memset(h, 0, sizeof(*h));
  if (why)
    *why = QP_DROP_NONE;

  if (!pkt || len == 0)
    return drop(QP_DROP_EMPTY, why);
  uint8_t b0 = pkt[0];

  if (!(b0 & HDR_FORM_LONG)) {
    /* Short header: flags, then a DCID of the length we issue. The fixed
     * bit may be 0: ngtcp2 always advertises "greasing the QUIC bit"
     * (RFC 9287), so peers clear it at random once connected. */
    if (short_dcidlen > QP_QUIC_MAX_CIDLEN)
      return drop(QP_DROP_CIDLEN, why);
    if (len - 1 < short_dcidlen)
      return drop(QP_DROP_TRUNCATED, why);
    memcpy(h->dcid, pkt + 1, short_dcidlen);
    h->dcidlen = short_dcidlen;
    return QP_PKT_SHORT;
  }

  /* Long header: flags, version (4), DCID len + DCID, SCID len + SCID. */
  h->is_long = 1;
  if (len < 5)
    return drop(QP_DROP_TRUNCATED, why);
  h->version = (uint32_t)pkt[1] << 24 | (uint32_t)pkt[2] << 16 |
               (uint32_t)pkt[3] << 8 | (uint32_t)pkt[4];
  size_t off = 5;
  if (read_cid(pkt, len, &off, h->dcid, &h->dcidlen) < 0 ||
      read_cid(pkt, len, &off, h->scid, &h->scidlen) < 0)
    return drop(QP_DROP_TRUNCATED, why);

  if (h->version == 0)
    return drop(QP_DROP_VN, why);
  if (h->version != QUIC_V1)
    return len >= QP_QUIC_MIN_INITIAL ? QP_PKT_NEED_VN
                                      : drop(QP_DROP_SMALL_UNKNOWN, why);

  if (h->dcidlen > QP_QUIC_MAX_CIDLEN || h->scidlen > QP_QUIC_MAX_CIDLEN)
    return drop(QP_DROP_CIDLEN, why);
  h->type = (uint8_t)((b0 >> 4) & 3);
  if (h->type != 0) /* may be greased (fixed bit 0) once connected */
    return QP_PKT_LONG;
  /* an Initial opens a connection: no greasing before the peer's
   * transport parameters are known */
  if (!(b0 & HDR_FIXED_BIT))
    return drop(QP_DROP_FIXED_BIT, why);
  if (len < QP_QUIC_MIN_INITIAL)
    return drop(QP_DROP_SMALL_INITIAL, why);
  return QP_PKT_INITIAL;
}

const char *qp_drop_reason_str(enum qp_drop_reason why) {
  switch (why) {
  case QP_DROP_NONE:
    return "none";
  case QP_DROP_EMPTY:
    return "empty";
  case QP_DROP_TRUNCATED:
    return "truncated";
  case QP_DROP_CIDLEN:
    return "cid-too-long";
  case QP_DROP_FIXED_BIT:
    return "fixed-bit";
  case QP_DROP_SMALL_INITIAL:
    return "small-initial";
  case QP_DROP_SMALL_UNKNOWN:
    return "small-unknown-version";
  case QP_DROP_VN:
    return "version-negotiation";
  }
  return "unknown";
}
