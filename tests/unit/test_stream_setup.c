/* Unit tests for worker/stream_setup.c: the server's one 0x00 byte and the
 * client's 4-byte ID, fed in every split the network may produce. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "worker/stream_setup.h"

static const uint8_t zero[1] = {0x00};

/* Feeds one chunk; consumed starts at a value the call must overwrite. */
static enum wrk_setup_result feed(struct wrk_setup *s, const uint8_t *data,
                                  size_t len, int fin, size_t *consumed) {
  *consumed = 0xdead;
  return wrk_setup_feed(s, data, len, fin, consumed);
}

/* ---- server: waits for exactly one 0x00 ---------------------------------- */

static void test_server_one_zero(void **state) {
  struct wrk_setup s;
  size_t used;
  wrk_setup_init(&s, 1);
  assert_int_equal(s.is_server, 1);
  assert_int_equal(feed(&s, zero, 1, 0, &used), WRK_SETUP_DONE);
  assert_int_equal(used, 1);
  assert_int_equal(s.done, 1);
  assert_null(s.reason);
}

static void test_server_empty_chunks(void **state) {
  struct wrk_setup s;
  size_t used;
  wrk_setup_init(&s, 1);
  assert_int_equal(feed(&s, zero, 0, 0, &used), WRK_SETUP_MORE);
  assert_int_equal(used, 0);
  assert_int_equal(feed(&s, NULL, 0, 0, &used), WRK_SETUP_MORE);
  assert_int_equal(used, 0);
  assert_int_equal(feed(&s, zero, 1, 0, &used), WRK_SETUP_DONE);
  assert_int_equal(used, 1);
}

static void test_server_wrong_byte(void **state) {
  static const uint8_t one[1] = {0x01};
  struct wrk_setup s;
  size_t used;
  wrk_setup_init(&s, 1);
  assert_int_equal(feed(&s, one, 1, 0, &used), WRK_SETUP_VIOLATION);
  assert_int_equal(used, 0);
  assert_non_null(s.reason);
  assert_int_equal(s.done, 0);
}

static void test_server_two_bytes(void **state) {
  static const uint8_t two[2] = {0x00, 0x00};
  struct wrk_setup s;
  size_t used;
  wrk_setup_init(&s, 1);
  assert_int_equal(feed(&s, two, 2, 0, &used), WRK_SETUP_VIOLATION);
  assert_int_equal(used, 0);
  assert_non_null(s.reason);
  /* with FIN too: still the extra byte that is reported */
  wrk_setup_init(&s, 1);
  assert_int_equal(feed(&s, two, 2, 1, &used), WRK_SETUP_VIOLATION);
  assert_non_null(s.reason);
}

static void test_server_fin_without_byte(void **state) {
  struct wrk_setup s;
  size_t used;
  wrk_setup_init(&s, 1);
  assert_int_equal(feed(&s, NULL, 0, 1, &used), WRK_SETUP_EOF);
  assert_int_equal(used, 0);
  assert_non_null(s.reason);
  assert_int_equal(s.done, 0);
}

static void test_server_byte_with_fin(void **state) {
  struct wrk_setup s;
  size_t used;
  wrk_setup_init(&s, 1);
  assert_int_equal(feed(&s, zero, 1, 1, &used), WRK_SETUP_EOF);
  assert_int_equal(used, 0);
  assert_non_null(s.reason);
  assert_int_equal(s.done, 0);
}

static void test_server_after_done(void **state) {
  static const uint8_t more[3] = {0x00, 'a', 'b'};
  struct wrk_setup s;
  size_t used;
  wrk_setup_init(&s, 1);
  assert_int_equal(feed(&s, zero, 1, 0, &used), WRK_SETUP_DONE);
  /* anything after DONE is not setup: DONE, nothing consumed */
  assert_int_equal(feed(&s, more, 3, 0, &used), WRK_SETUP_DONE);
  assert_int_equal(used, 0);
  assert_int_equal(feed(&s, more, 1, 1, &used), WRK_SETUP_DONE);
  assert_int_equal(used, 0);
  assert_int_equal(feed(&s, NULL, 0, 1, &used), WRK_SETUP_DONE);
  assert_int_equal(used, 0);
  assert_null(s.reason);
}

/* ---- client: collects the 4-byte ID -------------------------------------- */

static const uint8_t idbytes[] = {0x0a, 0x1b, 0x2c, 0x3d, 'h',
                                  'e',  'l',  'l',  'o'};
#define WANT_ID UINT32_C(0x0a1b2c3d)

static void test_client_split_1_3(void **state) {
  struct wrk_setup s;
  size_t used;
  wrk_setup_init(&s, 0);
  assert_int_equal(s.is_server, 0);
  assert_int_equal(feed(&s, idbytes, 1, 0, &used), WRK_SETUP_MORE);
  assert_int_equal(used, 1);
  /* the rest of the ID and application data in one chunk */
  assert_int_equal(feed(&s, idbytes + 1, 8, 0, &used), WRK_SETUP_DONE);
  assert_int_equal(used, 3);
  assert_int_equal(s.id, WANT_ID);
  assert_int_equal(s.done, 1);
  assert_null(s.reason);
}

static void test_client_split_2_2(void **state) {
  struct wrk_setup s;
  size_t used;
  wrk_setup_init(&s, 0);
  assert_int_equal(feed(&s, idbytes, 2, 0, &used), WRK_SETUP_MORE);
  assert_int_equal(used, 2);
  assert_int_equal(feed(&s, idbytes + 2, 2, 0, &used), WRK_SETUP_DONE);
  assert_int_equal(used, 2);
  assert_int_equal(s.id, WANT_ID);
}

static void test_client_bytewise(void **state) {
  struct wrk_setup s;
  size_t used;
  wrk_setup_init(&s, 0);
  for (int i = 0; i < 3; i++) {
    assert_int_equal(feed(&s, idbytes + i, 1, 0, &used), WRK_SETUP_MORE);
    assert_int_equal(used, 1);
    assert_int_equal(feed(&s, idbytes + i + 1, 0, 0, &used), WRK_SETUP_MORE);
    assert_int_equal(used, 0);
  }
  assert_int_equal(feed(&s, idbytes + 3, 1, 0, &used), WRK_SETUP_DONE);
  assert_int_equal(used, 1);
  assert_int_equal(s.id, WANT_ID);
}

static void test_client_all_at_once_with_data(void **state) {
  struct wrk_setup s;
  size_t used;
  wrk_setup_init(&s, 0);
  /* the app data behind the ID stays unconsumed, even with FIN */
  assert_int_equal(feed(&s, idbytes, sizeof(idbytes), 1, &used),
                   WRK_SETUP_DONE);
  assert_int_equal(used, 4);
  assert_int_equal(s.id, WANT_ID);
  assert_memory_equal(idbytes + used, "hello", 5);
}

static void test_client_exactly_four_with_fin(void **state) {
  struct wrk_setup s;
  size_t used;
  wrk_setup_init(&s, 0);
  assert_int_equal(feed(&s, idbytes, 4, 1, &used), WRK_SETUP_DONE);
  assert_int_equal(used, 4);
  assert_int_equal(s.id, WANT_ID);
}

static void test_client_id_extremes(void **state) {
  static const uint8_t zeros[4] = {0, 0, 0, 0};
  static const uint8_t ones[4] = {0xff, 0xff, 0xff, 0xff};
  struct wrk_setup s;
  size_t used;
  wrk_setup_init(&s, 0);
  assert_int_equal(feed(&s, zeros, 4, 0, &used), WRK_SETUP_DONE);
  assert_int_equal(s.id, 0);
  wrk_setup_init(&s, 0);
  assert_int_equal(feed(&s, ones, 4, 0, &used), WRK_SETUP_DONE);
  assert_int_equal(s.id, UINT32_MAX);
}

static void test_client_fin_before_id(void **state) {
  struct wrk_setup s;
  size_t used;
  /* FIN with the last bytes of a short ID */
  wrk_setup_init(&s, 0);
  assert_int_equal(feed(&s, idbytes, 1, 0, &used), WRK_SETUP_MORE);
  assert_int_equal(feed(&s, idbytes + 1, 2, 1, &used), WRK_SETUP_EOF);
  assert_int_equal(used, 2);
  assert_non_null(s.reason);
  assert_int_equal(s.done, 0);
  /* FIN on an empty chunk after part of the ID */
  wrk_setup_init(&s, 0);
  assert_int_equal(feed(&s, idbytes, 3, 0, &used), WRK_SETUP_MORE);
  assert_int_equal(feed(&s, idbytes + 3, 0, 1, &used), WRK_SETUP_EOF);
  assert_int_equal(used, 0);
  assert_non_null(s.reason);
  /* FIN before any byte */
  wrk_setup_init(&s, 0);
  assert_int_equal(feed(&s, idbytes, 0, 1, &used), WRK_SETUP_EOF);
  assert_non_null(s.reason);
}

/* ngtcp2 reports a FIN-only STREAM frame as data NULL, length 0. */
static void test_client_fin_null_data(void **state) {
  struct wrk_setup s;
  size_t used;
  wrk_setup_init(&s, 0);
  assert_int_equal(feed(&s, idbytes, 2, 0, &used), WRK_SETUP_MORE);
  assert_int_equal(feed(&s, NULL, 0, 1, &used), WRK_SETUP_EOF);
  assert_int_equal(used, 0);
  assert_non_null(s.reason);
}

static void test_client_after_done(void **state) {
  struct wrk_setup s;
  size_t used;
  wrk_setup_init(&s, 0);
  assert_int_equal(feed(&s, idbytes, 4, 0, &used), WRK_SETUP_DONE);
  assert_int_equal(feed(&s, idbytes + 4, 5, 0, &used), WRK_SETUP_DONE);
  assert_int_equal(used, 0);
  assert_int_equal(feed(&s, idbytes, 4, 1, &used), WRK_SETUP_DONE);
  assert_int_equal(used, 0);
  assert_int_equal(s.id, WANT_ID); /* unchanged */
  assert_null(s.reason);
}

static void test_init_resets(void **state) {
  static const uint8_t one[1] = {0x01};
  struct wrk_setup s;
  size_t used;
  wrk_setup_init(&s, 1);
  assert_int_equal(feed(&s, one, 1, 0, &used), WRK_SETUP_VIOLATION);
  wrk_setup_init(&s, 0);
  assert_null(s.reason);
  assert_int_equal(s.done, 0);
  assert_int_equal(s.have, 0);
  assert_int_equal(feed(&s, idbytes, 4, 0, &used), WRK_SETUP_DONE);
  assert_int_equal(s.id, WANT_ID);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_server_one_zero),
      cmocka_unit_test(test_server_empty_chunks),
      cmocka_unit_test(test_server_wrong_byte),
      cmocka_unit_test(test_server_two_bytes),
      cmocka_unit_test(test_server_fin_without_byte),
      cmocka_unit_test(test_server_byte_with_fin),
      cmocka_unit_test(test_server_after_done),
      cmocka_unit_test(test_client_split_1_3),
      cmocka_unit_test(test_client_split_2_2),
      cmocka_unit_test(test_client_bytewise),
      cmocka_unit_test(test_client_all_at_once_with_data),
      cmocka_unit_test(test_client_exactly_four_with_fin),
      cmocka_unit_test(test_client_id_extremes),
      cmocka_unit_test(test_client_fin_before_id),
      cmocka_unit_test(test_client_fin_null_data),
      cmocka_unit_test(test_client_after_done),
      cmocka_unit_test(test_init_resets),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
