/* Classifies a received UDP datagram by the QUIC invariant header (RFC 8999)
 * plus the v1 Initial size rule. Pure function over untrusted bytes. */
#ifndef QP_SHARED_QUIC_HDR_H
#define QP_SHARED_QUIC_HDR_H

#include <stddef.h>
#include <stdint.h>

#define QP_QUIC_MAX_CIDLEN 20
/* The length of every connection ID a qpool endpoint issues (the worker's
 * ngtcp2 connections), and so of the destination ID of every 1-RTT packet
 * qpoold's listener and the worker receive: the listener reads and routes
 * by it, and answers a dead worker's peers with stateless resets keyed by
 * it. One value for both processes. */
#define QP_CID_LEN 18
#define QP_QUIC_MIN_INITIAL 1200

enum qp_pkt_class {
  QP_PKT_DROP = 0, /* malformed, too short, or not worth an answer */
  QP_PKT_SHORT,    /* 1-RTT packet: route by dcid (dcidlen = given) */
  QP_PKT_INITIAL,  /* v1 client Initial >= 1200 bytes: may open a conn */
  QP_PKT_LONG,     /* other v1 long header (Handshake, 0-RTT, ...) */
  QP_PKT_NEED_VN,  /* unknown version, >= 1200 bytes: send VN */
};

enum qp_drop_reason {
  QP_DROP_NONE = 0,
  QP_DROP_EMPTY,
  QP_DROP_TRUNCATED,     /* header runs past the datagram */
  QP_DROP_CIDLEN,        /* a connection ID longer than 20 bytes in v1 */
  QP_DROP_FIXED_BIT,     /* v1 Initial with the fixed bit clear (other
                            packets may be greased: RFC 9287) */
  QP_DROP_SMALL_INITIAL, /* v1 Initial shorter than 1200 bytes */
  QP_DROP_SMALL_UNKNOWN, /* unknown version in < 1200 bytes: no VN */
  QP_DROP_VN,            /* a Version Negotiation packet (server never gets) */
};

struct qp_quic_hdr {
  int is_long;
  uint32_t version; /* 0 for short headers */
  uint8_t type;     /* v1 long packet type bits (0 Initial .. 3 Retry) */
  size_t dcidlen, scidlen;
  uint8_t dcid[255], scid[255]; /* unknown versions may use up to 255 */
};

/* Fills *h (always fully initialised) and returns the class; *why is set to a
 * drop reason when the class is QP_PKT_DROP (may be NULL).
 * short_dcidlen: the connection-ID length this endpoint issues, used to read
 * short headers. */
enum qp_pkt_class qp_quic_classify(const uint8_t *pkt, size_t len,
                                   size_t short_dcidlen, struct qp_quic_hdr *h,
                                   enum qp_drop_reason *why);
const char *qp_drop_reason_str(enum qp_drop_reason why);

#endif
