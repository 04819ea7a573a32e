/* Unit tests for shared/quic_hdr.c: every packet class and drop reason on
 * hand-built datagrams, and every truncation of valid headers. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "shared/quic_hdr.h"

#define V1 UINT32_C(0x00000001)
#define V2 UINT32_C(0x6b3343cf) /* RFC 9369: unknown to this classifier */

/* Long header: flags, version, DCID (bytes 0xd0..), SCID (bytes 0x50..),
 * padded with 0xee up to total bytes. Returns the header length. */
static size_t build_long(uint8_t *buf, size_t total, uint8_t flags,
                         uint32_t version, size_t dcidlen, size_t scidlen) {
  size_t off = 0;
  buf[off++] = flags;
  buf[off++] = (uint8_t)(version >> 24);
  buf[off++] = (uint8_t)(version >> 16);
  buf[off++] = (uint8_t)(version >> 8);
  buf[off++] = (uint8_t)version;
  buf[off++] = (uint8_t)dcidlen;
  for (size_t i = 0; i < dcidlen; i++)
    buf[off++] = (uint8_t)(0xd0 + i);
  buf[off++] = (uint8_t)scidlen;
  for (size_t i = 0; i < scidlen; i++)
    buf[off++] = (uint8_t)(0x50 + i);
  if (total > off)
    memset(buf + off, 0xee, total - off);
  return off;
}

/* Classifies a copy of pkt in a heap block of exactly len bytes, so that
 * AddressSanitizer reports any read past the datagram. */
static enum qp_pkt_class classify_exact(const uint8_t *pkt, size_t len,
                                        size_t short_dcidlen,
                                        struct qp_quic_hdr *h,
                                        enum qp_drop_reason *why) {
  uint8_t *copy = malloc(len ? len : 1);
  assert_non_null(copy);
  memcpy(copy, pkt, len);
  enum qp_pkt_class c = qp_quic_classify(copy, len, short_dcidlen, h, why);
  free(copy);
  return c;
}

static uint8_t pkt[1500];
static struct qp_quic_hdr hdr;

static void expect_drop(size_t len, size_t short_dcidlen,
                        enum qp_drop_reason want) {
  enum qp_drop_reason why = QP_DROP_NONE;
  enum qp_pkt_class c = classify_exact(pkt, len, short_dcidlen, &hdr, &why);
  if (c != QP_PKT_DROP || why != want)
    fail_msg("len %zu: class %d why %s, want drop %s", len, (int)c,
             qp_drop_reason_str(why), qp_drop_reason_str(want));
}

static void expect_class(size_t len, size_t short_dcidlen,
                         enum qp_pkt_class want) {
  enum qp_drop_reason why = QP_DROP_EMPTY;
  enum qp_pkt_class c = classify_exact(pkt, len, short_dcidlen, &hdr, &why);
  if (c != want || why != QP_DROP_NONE)
    fail_msg("len %zu: class %d why %s, want class %d", len, (int)c,
             qp_drop_reason_str(why), (int)want);
}

static void test_empty(void **state) {
  enum qp_drop_reason why = QP_DROP_NONE;
  memset(&hdr, 0xaa, sizeof(hdr));
  assert_int_equal(qp_quic_classify(NULL, 0, 8, &hdr, &why), QP_PKT_DROP);
  assert_int_equal(why, QP_DROP_EMPTY);
  /* *h is fully initialised even on a drop. */
  struct qp_quic_hdr zero;
  memset(&zero, 0, sizeof(zero));
  assert_memory_equal(&hdr, &zero, sizeof(zero));
  expect_drop(0, 8, QP_DROP_EMPTY);
}

static void test_initial(void **state) {
  build_long(pkt, 1200, 0xc3, V1, 8, 5);
  expect_class(1200, 8, QP_PKT_INITIAL);
  assert_int_equal(hdr.is_long, 1);
  assert_int_equal(hdr.version, V1);
  assert_int_equal(hdr.type, 0);
  assert_int_equal(hdr.dcidlen, 8);
  assert_int_equal(hdr.scidlen, 5);
  static const uint8_t dcid[8] = {0xd0, 0xd1, 0xd2, 0xd3,
                                  0xd4, 0xd5, 0xd6, 0xd7};
  static const uint8_t scid[5] = {0x50, 0x51, 0x52, 0x53, 0x54};
  assert_memory_equal(hdr.dcid, dcid, 8);
  assert_memory_equal(hdr.scid, scid, 5);
  expect_class(1500, 8, QP_PKT_INITIAL);
  /* Empty connection IDs are legal, and 20 is the v1 maximum. */
  build_long(pkt, 1200, 0xc0, V1, 0, 0);
  expect_class(1200, 8, QP_PKT_INITIAL);
  assert_int_equal(hdr.dcidlen, 0);
  build_long(pkt, 1200, 0xc0, V1, 20, 20);
  expect_class(1200, 8, QP_PKT_INITIAL);
  assert_int_equal(hdr.dcidlen, 20);
  assert_int_equal(hdr.scidlen, 20);
}

static void test_small_initial(void **state) {
  build_long(pkt, 1199, 0xc0, V1, 8, 8);
  expect_drop(1199, 8, QP_DROP_SMALL_INITIAL);
  /* The fields are still reported. */
  assert_int_equal(hdr.dcidlen, 8);
  assert_int_equal(hdr.version, V1);
  size_t hl = build_long(pkt, 0, 0xc0, V1, 8, 8);
  expect_drop(hl, 8, QP_DROP_SMALL_INITIAL);
}

static void test_other_long(void **state) {
  static const struct {
    uint8_t flags;
    uint8_t type;
  } cases[] = {{0xd0, 1}, {0xe0, 2}, {0xf0, 3}, {0xef, 2}};
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    size_t hl = build_long(pkt, 50, cases[i].flags, V1, 8, 8);
    expect_class(50, 8, QP_PKT_LONG);
    assert_int_equal(hdr.type, cases[i].type);
    assert_int_equal(hdr.version, V1);
    /* No size rule for these: the header alone is enough. */
    expect_class(hl, 8, QP_PKT_LONG);
  }
}

static void test_fixed_bit(void **state) {
  build_long(pkt, 1200, 0x80, V1, 8, 8); /* Initial without fixed bit */
  expect_drop(1200, 8, QP_DROP_FIXED_BIT);
  /* Greased packets (RFC 9287; ngtcp2 always allows its peer to grease):
   * a Handshake or a short header with the fixed bit clear is QUIC. */
  build_long(pkt, 100, 0xa0, V1, 8, 8);
  expect_class(100, 8, QP_PKT_LONG);
  memset(pkt, 0x11, 30);
  pkt[0] = 0x00;
  expect_class(30, 8, QP_PKT_SHORT);
  pkt[0] = 0x3f;
  expect_class(30, 8, QP_PKT_SHORT);
  /* Unknown versions: the fixed bit is theirs to define. */
  build_long(pkt, 1200, 0x80, V2, 8, 8);
  expect_class(1200, 8, QP_PKT_NEED_VN);
}

static void test_cidlen(void **state) {
  build_long(pkt, 1200, 0xc0, V1, 21, 8);
  expect_drop(1200, 8, QP_DROP_CIDLEN);
  build_long(pkt, 1200, 0xc0, V1, 8, 21);
  expect_drop(1200, 8, QP_DROP_CIDLEN);
  build_long(pkt, 100, 0xe0, V1, 255, 0);
  expect_drop(300, 8, QP_DROP_CIDLEN);
  /* A caller asking for an impossible short DCID length. */
  memset(pkt, 0x42, 100);
  expect_drop(100, 21, QP_DROP_CIDLEN);
}

static void test_version_negotiation(void **state) {
  build_long(pkt, 60, 0x80, 0, 8, 8);
  expect_drop(60, 8, QP_DROP_VN);
  build_long(pkt, 1300, 0xff, 0, 8, 8);
  expect_drop(1300, 8, QP_DROP_VN);
}

static void test_unknown_version(void **state) {
  build_long(pkt, 1200, 0xc0, V2, 255, 255);
  assert_true(1 + 4 + 1 + 255 + 1 + 255 <= 1200);
  expect_class(1200, 8, QP_PKT_NEED_VN);
  assert_int_equal(hdr.version, V2);
  assert_int_equal(hdr.dcidlen, 255);
  assert_int_equal(hdr.scidlen, 255);
  assert_int_equal(hdr.dcid[254], (uint8_t)(0xd0 + 254));
  assert_int_equal(hdr.scid[254], (uint8_t)(0x50 + 254));
  build_long(pkt, 1199, 0xc0, V2, 8, 8);
  expect_drop(1199, 8, QP_DROP_SMALL_UNKNOWN);
  build_long(pkt, 1200, 0xca, UINT32_C(0x0a0a0a0a), 0, 0); /* grease */
  expect_class(1200, 8, QP_PKT_NEED_VN);
  build_long(pkt, 1200, 0xc0, UINT32_C(0xff00001d), 8, 8); /* draft-29 */
  expect_class(1200, 8, QP_PKT_NEED_VN);
}

static void test_short(void **state) {
  memset(pkt, 0, sizeof(pkt));
  pkt[0] = 0x41;
  for (int i = 0; i < 20; i++)
    pkt[1 + i] = (uint8_t)(0x70 + i);
  expect_class(40, 8, QP_PKT_SHORT);
  assert_int_equal(hdr.is_long, 0);
  assert_int_equal(hdr.version, 0);
  assert_int_equal(hdr.dcidlen, 8);
  assert_int_equal(hdr.scidlen, 0);
  static const uint8_t dcid[8] = {0x70, 0x71, 0x72, 0x73,
                                  0x74, 0x75, 0x76, 0x77};
  assert_memory_equal(hdr.dcid, dcid, 8);
  expect_class(9, 8, QP_PKT_SHORT);
  expect_drop(8, 8, QP_DROP_TRUNCATED);
  expect_drop(1, 8, QP_DROP_TRUNCATED);
  expect_class(1, 0, QP_PKT_SHORT);
  expect_class(21, 20, QP_PKT_SHORT);
  assert_int_equal(hdr.dcid[19], 0x70 + 19);
  expect_drop(20, 20, QP_DROP_TRUNCATED);
}

static void test_truncated_long(void **state) {
  /* Every prefix of a valid Initial's header (up to its full length). */
  size_t hl = build_long(pkt, 1200, 0xc1, V1, 20, 20);
  for (size_t len = 1; len < hl; len++)
    expect_drop(len, 8, QP_DROP_TRUNCATED);
  expect_drop(hl, 8, QP_DROP_SMALL_INITIAL);
  for (size_t len = hl; len < 1200; len++)
    expect_drop(len, 8, QP_DROP_SMALL_INITIAL);
  expect_class(1200, 8, QP_PKT_INITIAL);

  /* Same for the longest header an unknown version can have. */
  hl = build_long(pkt, 1200, 0xc0, V2, 255, 255);
  for (size_t len = 1; len < hl; len++)
    expect_drop(len, 8, QP_DROP_TRUNCATED);
  expect_drop(hl, 8, QP_DROP_SMALL_UNKNOWN);

  /* A length byte that points past the end, with nothing after it. */
  build_long(pkt, 0, 0xc0, V1, 0, 0);
  pkt[5] = 1;
  expect_drop(6, 8, QP_DROP_TRUNCATED);
  pkt[5] = 0;
  pkt[6] = 1;
  expect_drop(7, 8, QP_DROP_TRUNCATED);
  expect_drop(6, 8, QP_DROP_TRUNCATED); /* SCID length byte missing */
}

static void test_null_outputs(void **state) {
  build_long(pkt, 1200, 0xc0, V1, 8, 8);
  assert_int_equal(qp_quic_classify(pkt, 1200, 8, NULL, NULL), QP_PKT_INITIAL);
  assert_int_equal(qp_quic_classify(pkt, 100, 8, NULL, NULL), QP_PKT_DROP);
  struct qp_quic_hdr h;
  assert_int_equal(qp_quic_classify(pkt, 1200, 8, &h, NULL), QP_PKT_INITIAL);
  assert_int_equal(h.dcidlen, 8);
}

static void test_reason_names(void **state) {
  assert_string_equal(qp_drop_reason_str(QP_DROP_EMPTY), "empty");
  assert_string_equal(qp_drop_reason_str(QP_DROP_TRUNCATED), "truncated");
  assert_string_equal(qp_drop_reason_str(QP_DROP_CIDLEN), "cid-too-long");
  assert_string_equal(qp_drop_reason_str(QP_DROP_FIXED_BIT), "fixed-bit");
  assert_string_equal(qp_drop_reason_str(QP_DROP_SMALL_INITIAL),
                      "small-initial");
  assert_string_equal(qp_drop_reason_str(QP_DROP_SMALL_UNKNOWN),
                      "small-unknown-version");
  assert_string_equal(qp_drop_reason_str(QP_DROP_VN), "version-negotiation");
  assert_string_equal(qp_drop_reason_str(QP_DROP_NONE), "none");
  assert_string_equal(qp_drop_reason_str((enum qp_drop_reason)99), "unknown");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_empty),
      cmocka_unit_test(test_initial),
      cmocka_unit_test(test_small_initial),
      cmocka_unit_test(test_other_long),
      cmocka_unit_test(test_fixed_bit),
      cmocka_unit_test(test_cidlen),
      cmocka_unit_test(test_version_negotiation),
      cmocka_unit_test(test_unknown_version),
      cmocka_unit_test(test_short),
      cmocka_unit_test(test_truncated_long),
      cmocka_unit_test(test_null_outputs),
      cmocka_unit_test(test_reason_names),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
