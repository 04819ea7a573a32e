/* Unit tests for worker/bufq.c: the chunked byte queue of the stream relay.
 * Queued bytes are a known function of their position in the stream, so any
 * window of the queue can be checked without keeping a copy. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "worker/bufq.h"

#define CS WRK_CHUNK_SIZE

/* The byte at stream position pos (not periodic in the chunk size). */
static uint8_t pat(uint64_t pos) {
  return (uint8_t)(pos * 131 + (pos >> 8) * 7 + (pos >> 16));
}

static void fill(uint8_t *dst, uint64_t pos, size_t len) {
  for (size_t i = 0; i < len; i++)
    dst[i] = pat(pos + i);
}

/* Appends len pattern bytes for positions *end.. */
static void append_pat(struct wrk_bufq *q, uint64_t *end, size_t len) {
  uint8_t *buf = malloc(len ? len : 1);
  assert_non_null(buf);
  fill(buf, *end, len);
  assert_int_equal(wrk_bufq_append(q, buf, len), 0);
  free(buf);
  *end += len;
}

/* Checks wrk_bufq_iov(q, skip, max, .., n) against the queue holding the
 * pattern's positions [start, end): the iovecs are the window in order, no
 * empty ones, none crossing a chunk, at most n, and they stop early only
 * because n ran out. Returns the bytes covered. */
static size_t check_iov(const struct wrk_bufq *q, uint64_t start, uint64_t end,
                        size_t skip, size_t max, size_t n) {
  struct iovec iov[64];
  assert_true(n <= 64);
  size_t cnt = wrk_bufq_iov(q, skip, max, iov, n);
  assert_true(cnt <= n);
  uint64_t queued = end - start;
  size_t want = skip >= queued ? 0 : (size_t)(queued - skip);
  if (want > max)
    want = max;
  uint64_t pos = start + skip;
  size_t got = 0;
  for (size_t i = 0; i < cnt; i++) {
    const uint8_t *b = iov[i].iov_base;
    assert_true(iov[i].iov_len > 0);
    assert_true(iov[i].iov_len <= CS);
    for (size_t j = 0; j < iov[i].iov_len; j++)
      if (b[j] != pat(pos + j))
        fail_msg("iov %zu byte %zu (pos %llu): got %u want %u", i, j,
                 (unsigned long long)(pos + j), b[j], pat(pos + j));
    pos += iov[i].iov_len;
    got += iov[i].iov_len;
  }
  assert_true(got <= want);
  if (cnt < n)
    assert_int_equal(got, want);
  return got;
}

static void test_empty(void **state) {
  struct wrk_bufq q = {0};
  struct iovec iov[4];
  assert_int_equal(wrk_bufq_iov(&q, 0, SIZE_MAX, iov, 4), 0);
  wrk_bufq_drop(&q, 0);
  assert_int_equal(q.bytes, 0);
  wrk_bufq_free(&q);
  assert_null(q.head);
  assert_int_equal(q.bytes, 0);
  assert_int_equal(wrk_bufq_append(&q, NULL, 0), 0); /* nothing at all */
  assert_int_equal(q.bytes, 0);
  wrk_bufq_free(&q);
}

static void test_append_small(void **state) {
  struct wrk_bufq q = {0};
  uint64_t end = 0;
  append_pat(&q, &end, 10);
  append_pat(&q, &end, 5);
  assert_int_equal(q.bytes, 15);
  assert_ptr_equal(q.head, q.tail);
  assert_int_equal(check_iov(&q, 0, end, 0, SIZE_MAX, 4), 15);
  assert_int_equal(check_iov(&q, 0, end, 3, 4, 4), 4);
  assert_int_equal(check_iov(&q, 0, end, 14, SIZE_MAX, 4), 1);
  assert_int_equal(check_iov(&q, 0, end, 15, SIZE_MAX, 4), 0);
  assert_int_equal(check_iov(&q, 0, end, 100, SIZE_MAX, 4), 0);
  assert_int_equal(check_iov(&q, 0, end, 0, 0, 4), 0);
  assert_int_equal(check_iov(&q, 0, end, 0, SIZE_MAX, 0), 0);
  wrk_bufq_free(&q);
}

static void test_chunk_boundaries(void **state) {
  struct wrk_bufq q = {0};
  uint64_t end = 0;
  /* odd pieces that straddle the boundaries, then one larger than a chunk */
  for (int i = 0; i < 20; i++)
    append_pat(&q, &end, 7777);
  append_pat(&q, &end, CS + 123);
  assert_int_equal(q.bytes, end);
  size_t chunks = 0;
  for (struct wrk_chunk *c = q.head; c; c = c->next) {
    chunks++;
    if (c != q.tail)
      assert_int_equal(c->len, CS); /* only the tail is partly filled */
  }
  assert_int_equal(chunks, (end + CS - 1) / CS);

  struct iovec iov[8];
  assert_int_equal(wrk_bufq_iov(&q, 0, SIZE_MAX, iov, 8), chunks);
  assert_int_equal(iov[0].iov_len, CS);
  assert_int_equal(check_iov(&q, 0, end, 0, SIZE_MAX, 8), end);

  /* windows starting and ending at, before and after boundaries */
  const size_t skips[] = {0,          1,          CS - 1, CS,
                          CS + 1,     2 * CS - 5, 2 * CS, (size_t)end - 1,
                          (size_t)end};
  const size_t maxes[] = {1, 2, CS - 1, CS, CS + 1, 3 * CS, SIZE_MAX};
  for (size_t i = 0; i < sizeof(skips) / sizeof(skips[0]); i++)
    for (size_t j = 0; j < sizeof(maxes) / sizeof(maxes[0]); j++)
      for (size_t n = 1; n <= 4; n++)
        check_iov(&q, 0, end, skips[i], maxes[j], n);

  /* n limits the iovecs: one iovec ends at the first boundary */
  assert_int_equal(wrk_bufq_iov(&q, CS - 10, SIZE_MAX, iov, 1), 1);
  assert_int_equal(iov[0].iov_len, 10);
  wrk_bufq_free(&q);
}

static void test_drop(void **state) {
  struct wrk_bufq q = {0};
  uint64_t start = 0, end = 0;
  append_pat(&q, &end, 3 * CS + 500);

  wrk_bufq_drop(&q, 10); /* inside the head */
  start += 10;
  assert_int_equal(q.bytes, end - start);
  assert_int_equal(q.head_off, 10);
  check_iov(&q, start, end, 0, SIZE_MAX, 8);
  check_iov(&q, start, end, CS - 10, 20, 8);

  wrk_bufq_drop(&q, CS - 10); /* exactly the rest of the head */
  start += CS - 10;
  assert_int_equal(q.head_off, 0);
  check_iov(&q, start, end, 0, SIZE_MAX, 8);

  wrk_bufq_drop(&q, CS + 1); /* across a boundary */
  start += CS + 1;
  assert_int_equal(q.head_off, 1);
  assert_int_equal(q.bytes, end - start);
  check_iov(&q, start, end, 0, SIZE_MAX, 8);
  check_iov(&q, start, end, CS - 2, 3, 8);

  wrk_bufq_drop(&q, 0);
  assert_int_equal(q.bytes, end - start);

  /* append after partial drops continues the stream */
  append_pat(&q, &end, 2 * CS);
  check_iov(&q, start, end, 0, SIZE_MAX, 8);
  check_iov(&q, start, end, 12345, 3 * CS, 8);
  wrk_bufq_free(&q);
}

static void test_drop_everything(void **state) {
  struct wrk_bufq q = {0};
  uint64_t start = 0, end = 0;
  struct iovec iov[4];

  /* last chunk partly filled: it is kept for reuse */
  append_pat(&q, &end, CS + 100);
  wrk_bufq_drop(&q, (size_t)(end - start));
  start = end;
  assert_int_equal(q.bytes, 0);
  assert_int_equal(q.head_off, 0);
  assert_int_equal(wrk_bufq_iov(&q, 0, SIZE_MAX, iov, 4), 0);
  append_pat(&q, &end, 50);
  check_iov(&q, start, end, 0, SIZE_MAX, 4);
  assert_int_equal(q.bytes, 50);

  /* everything in full chunks: the queue ends up without chunks */
  wrk_bufq_free(&q);
  start = end = 0;
  append_pat(&q, &end, 2 * CS);
  wrk_bufq_drop(&q, 2 * CS);
  assert_int_equal(q.bytes, 0);
  assert_null(q.head);
  assert_null(q.tail);
  assert_int_equal(wrk_bufq_iov(&q, 0, SIZE_MAX, iov, 4), 0);
  start = end;
  append_pat(&q, &end, CS + 1);
  check_iov(&q, start, end, 0, SIZE_MAX, 4);

  /* after a partial drop: the rest of it */
  wrk_bufq_drop(&q, 7);
  start += 7;
  wrk_bufq_drop(&q, (size_t)(end - start));
  start = end;
  assert_int_equal(q.bytes, 0);
  assert_int_equal(wrk_bufq_iov(&q, 0, SIZE_MAX, iov, 4), 0);
  append_pat(&q, &end, 3);
  check_iov(&q, start, end, 0, SIZE_MAX, 4);
  wrk_bufq_free(&q);
}

static void test_reserve_commit(void **state) {
  struct wrk_bufq q = {0};
  uint64_t end = 0;
  size_t avail = 0;

  uint8_t *p = wrk_bufq_reserve(&q, &avail);
  assert_non_null(p);
  assert_int_equal(avail, CS);
  assert_int_equal(q.bytes, 0); /* reserving queues nothing */
  fill(p, end, 1000);
  wrk_bufq_commit(&q, 1000);
  end += 1000;
  assert_int_equal(q.bytes, 1000);

  p = wrk_bufq_reserve(&q, &avail); /* the rest of the same chunk */
  assert_int_equal(avail, CS - 1000);
  assert_ptr_equal(p, q.tail->data + 1000);
  fill(p, end, avail);
  wrk_bufq_commit(&q, avail);
  end += avail;
  assert_ptr_equal(q.head, q.tail);

  p = wrk_bufq_reserve(&q, &avail); /* full: a new chunk */
  assert_int_equal(avail, CS);
  assert_ptr_not_equal(q.head, q.tail);
  assert_ptr_equal(p, q.tail->data);
  wrk_bufq_commit(&q, 0); /* read nothing */
  assert_int_equal(q.bytes, end);

  append_pat(&q, &end, 10); /* mixes with append */
  p = wrk_bufq_reserve(&q, &avail);
  assert_int_equal(avail, CS - 10);
  fill(p, end, 5);
  wrk_bufq_commit(&q, 5);
  end += 5;
  assert_int_equal(q.bytes, end);
  check_iov(&q, 0, end, 0, SIZE_MAX, 8);
  check_iov(&q, 0, end, CS - 3, 10, 8);
  wrk_bufq_free(&q);
}

static void test_free_all(void **state) {
  struct wrk_bufq q = {0};
  uint64_t start = 0, end = 0;
  append_pat(&q, &end, 5 * CS + 17);
  wrk_bufq_drop(&q, 3);
  wrk_bufq_free(&q); /* LeakSanitizer checks the chunks went */
  assert_null(q.head);
  assert_null(q.tail);
  assert_int_equal(q.bytes, 0);
  assert_int_equal(q.head_off, 0);
  end = 0;
  append_pat(&q, &end, 10); /* usable again */
  check_iov(&q, start, end, 0, SIZE_MAX, 4);
  wrk_bufq_free(&q);
}

/* Random appends, reserve/commits, drops and windows against the model. */
static void test_random(void **state) {
  static uint8_t buf[3 * CS];
  struct wrk_bufq q = {0};
  uint64_t start = 0, end = 0;
  uint64_t rs = UINT64_C(0x243F6A8885A308D3);
  for (int op = 0; op < 20000; op++) {
    rs = rs * UINT64_C(6364136223846793005) + UINT64_C(1442695040888963407);
    uint32_t r = (uint32_t)(rs >> 33);
    size_t queued = (size_t)(end - start);
    switch (r % 5) {
    case 0: { /* append, small or large, while under ~1 MiB */
      if (queued > (1u << 20))
        break;
      size_t len = (r >> 8) % 4 ? (r >> 8) % 3000 : (r >> 8) % sizeof(buf);
      fill(buf, end, len);
      assert_int_equal(wrk_bufq_append(&q, buf, len), 0);
      end += len;
      break;
    }
    case 1: { /* reserve, use part of it */
      if (queued > (1u << 20))
        break;
      size_t avail = 0;
      uint8_t *p = wrk_bufq_reserve(&q, &avail);
      assert_non_null(p);
      assert_true(avail > 0 && avail <= CS);
      size_t n = (r >> 8) % (avail + 1);
      fill(p, end, n);
      wrk_bufq_commit(&q, n);
      end += n;
      break;
    }
    case 2: { /* drop a part, sometimes all */
      size_t n = (r >> 8) % 8 == 0 ? queued : (r >> 8) % (queued / 2 + 1);
      wrk_bufq_drop(&q, n);
      start += n;
      break;
    }
    default: { /* a window */
      size_t skip = (r >> 8) % (queued + 2);
      size_t max = (r >> 4) % 3 ? (r >> 12) % (2 * CS) : SIZE_MAX;
      check_iov(&q, start, end, skip, max, 1 + (r >> 20) % 5);
      break;
    }
    }
    assert_int_equal(q.bytes, end - start);
    assert_true(q.head == NULL || q.head_off < q.head->len ||
                (q.head_off == 0 && q.bytes == 0));
  }
  check_iov(&q, start, end, 0, SIZE_MAX, 64);
  wrk_bufq_free(&q);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_empty),
      cmocka_unit_test(test_append_small),
      cmocka_unit_test(test_chunk_boundaries),
      cmocka_unit_test(test_drop),
      cmocka_unit_test(test_drop_everything),
      cmocka_unit_test(test_reserve_commit),
      cmocka_unit_test(test_free_all),
      cmocka_unit_test(test_random),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
