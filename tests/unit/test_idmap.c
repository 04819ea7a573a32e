/* Unit tests for worker/idmap.c: the stream-ID hash map (linear probing,
 * tombstones, growth), checked against a plain array model. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "worker/idmap.h"

/* Distinct non-NULL values: addresses inside this array. */
static char vals[1 << 16];
#define VAL(i) ((void *)&vals[(size_t)(i) % sizeof(vals)])

static uint64_t rng_state;
static uint32_t rnd(void) { /* xorshift64*: reproducible */
  rng_state ^= rng_state >> 12;
  rng_state ^= rng_state << 25;
  rng_state ^= rng_state >> 27;
  return (uint32_t)((rng_state * UINT64_C(0x2545F4914F6CDD1D)) >> 32);
}

static void test_empty(void **state) {
  struct wrk_idmap m;
  wrk_idmap_init(&m);
  assert_int_equal(wrk_idmap_size(&m), 0);
  assert_null(wrk_idmap_get(&m, 0));
  assert_null(wrk_idmap_get(&m, 12345));
  assert_null(wrk_idmap_del(&m, 12345));
  wrk_idmap_free(&m);
  wrk_idmap_free(&m); /* twice: it re-initialises */
  assert_int_equal(wrk_idmap_size(&m), 0);
}

static void test_put_get_del(void **state) {
  struct wrk_idmap m;
  wrk_idmap_init(&m);
  assert_int_equal(wrk_idmap_put(&m, 7, VAL(1)), 0);
  assert_int_equal(wrk_idmap_put(&m, 0x0a1b2c3d, VAL(2)), 0);
  assert_int_equal(wrk_idmap_put(&m, UINT32_MAX, VAL(3)), 0);
  assert_int_equal(wrk_idmap_size(&m), 3);
  assert_ptr_equal(wrk_idmap_get(&m, 7), VAL(1));
  assert_ptr_equal(wrk_idmap_get(&m, 0x0a1b2c3d), VAL(2));
  assert_ptr_equal(wrk_idmap_get(&m, UINT32_MAX), VAL(3));
  assert_null(wrk_idmap_get(&m, 8));

  assert_ptr_equal(wrk_idmap_del(&m, 0x0a1b2c3d), VAL(2));
  assert_int_equal(wrk_idmap_size(&m), 2);
  assert_null(wrk_idmap_get(&m, 0x0a1b2c3d));
  assert_null(wrk_idmap_del(&m, 0x0a1b2c3d)); /* already gone */
  assert_ptr_equal(wrk_idmap_get(&m, 7), VAL(1));
  assert_ptr_equal(wrk_idmap_get(&m, UINT32_MAX), VAL(3));
  wrk_idmap_free(&m);
  assert_int_equal(wrk_idmap_size(&m), 0);
  assert_null(wrk_idmap_get(&m, 7));
}

static void test_exists(void **state) {
  struct wrk_idmap m;
  wrk_idmap_init(&m);
  assert_int_equal(wrk_idmap_put(&m, 42, VAL(1)), 0);
  assert_int_equal(wrk_idmap_put(&m, 42, VAL(2)), -EEXIST);
  assert_ptr_equal(wrk_idmap_get(&m, 42), VAL(1)); /* unchanged */
  assert_int_equal(wrk_idmap_size(&m), 1);
  /* after a delete the key may come back */
  assert_ptr_equal(wrk_idmap_del(&m, 42), VAL(1));
  assert_int_equal(wrk_idmap_put(&m, 42, VAL(2)), 0);
  assert_ptr_equal(wrk_idmap_get(&m, 42), VAL(2));
  wrk_idmap_free(&m);
}

/* 0 is the server's first ID ("00000000"): an ordinary key. */
static void test_key_zero(void **state) {
  struct wrk_idmap m;
  wrk_idmap_init(&m);
  assert_null(wrk_idmap_get(&m, 0));
  assert_int_equal(wrk_idmap_put(&m, 0, VAL(5)), 0);
  assert_ptr_equal(wrk_idmap_get(&m, 0), VAL(5));
  assert_int_equal(wrk_idmap_put(&m, 0, VAL(6)), -EEXIST);
  for (uint32_t k = 1; k < 100; k++)
    assert_int_equal(wrk_idmap_put(&m, k, VAL(k)), 0);
  assert_ptr_equal(wrk_idmap_get(&m, 0), VAL(5)); /* survived growth */
  assert_ptr_equal(wrk_idmap_del(&m, 0), VAL(5));
  assert_null(wrk_idmap_get(&m, 0));
  assert_int_equal(wrk_idmap_size(&m), 99);
  wrk_idmap_free(&m);
}

static void test_grow(void **state) {
  enum { N = 50000 };
  struct wrk_idmap m;
  wrk_idmap_init(&m);
  /* sequential IDs (a server's) and spread ones */
  for (uint32_t i = 0; i < N; i++) {
    assert_int_equal(wrk_idmap_put(&m, i, VAL(i)), 0);
    assert_int_equal(wrk_idmap_put(&m, 0x80000000u + i * 40000u, VAL(i)), 0);
  }
  assert_int_equal(wrk_idmap_size(&m), 2 * N);
  assert_true(m.cap >= 2 * N);
  assert_int_equal(m.cap & (m.cap - 1), 0); /* a power of two */
  for (uint32_t i = 0; i < N; i++) {
    assert_ptr_equal(wrk_idmap_get(&m, i), VAL(i));
    assert_ptr_equal(wrk_idmap_get(&m, 0x80000000u + i * 40000u), VAL(i));
  }
  assert_null(wrk_idmap_get(&m, N));
  /* remove every other key, the rest stay reachable past the tombstones */
  for (uint32_t i = 0; i < N; i += 2)
    assert_ptr_equal(wrk_idmap_del(&m, i), VAL(i));
  assert_int_equal(wrk_idmap_size(&m), 2 * N - N / 2);
  for (uint32_t i = 0; i < N; i++) {
    if (i % 2)
      assert_ptr_equal(wrk_idmap_get(&m, i), VAL(i));
    else
      assert_null(wrk_idmap_get(&m, i));
  }
  wrk_idmap_free(&m);
}

static void test_tombstone_reuse(void **state) {
  struct wrk_idmap m;
  wrk_idmap_init(&m);
  assert_int_equal(wrk_idmap_put(&m, 1000, VAL(1)), 0);
  assert_ptr_equal(wrk_idmap_del(&m, 1000), VAL(1));
  assert_int_equal(m.tomb, 1);
  assert_int_equal(wrk_idmap_put(&m, 1000, VAL(2)), 0); /* takes the slot */
  assert_int_equal(m.tomb, 0);
  assert_int_equal(m.used, 1);
  assert_ptr_equal(wrk_idmap_get(&m, 1000), VAL(2));
  wrk_idmap_free(&m);

  /* Endless churn of fresh keys over a steady population: tombstones are
   * reclaimed by rehashing at the same size, the table does not grow. */
  wrk_idmap_init(&m);
  for (uint32_t k = 0; k < 100; k++)
    assert_int_equal(wrk_idmap_put(&m, k, VAL(k)), 0);
  size_t cap = m.cap;
  for (uint32_t k = 100; k < 200000; k++) {
    assert_int_equal(wrk_idmap_put(&m, k, VAL(k)), 0);
    assert_ptr_equal(wrk_idmap_del(&m, k), VAL(k));
    assert_true(m.used + m.tomb < m.cap); /* an empty slot always remains */
  }
  assert_int_equal(m.cap, cap);
  assert_int_equal(wrk_idmap_size(&m), 100);
  for (uint32_t k = 0; k < 100; k++)
    assert_ptr_equal(wrk_idmap_get(&m, k), VAL(k));
  wrk_idmap_free(&m);
}

/* Random puts, gets and deletes over a small key space (many collisions,
 * many tombstones) compared with a plain array. */
static void test_random_churn(void **state) {
  enum { KEYS = 4096, OPS = 400000 };
  static void *model[KEYS];
  static uint32_t keyof[KEYS];
  struct wrk_idmap m;
  size_t live = 0;
  wrk_idmap_init(&m);
  rng_state = UINT64_C(0x9E3779B97F4A7C15);
  for (size_t i = 0; i < KEYS; i++) {
    model[i] = NULL;
    /* key i: sometimes a neighbour, sometimes a random-looking ID (the
     * low bits keep them distinct) */
    keyof[i] =
        (i % 3) ? (uint32_t)i : (rnd() & ~0xfffu) | 1u << 31 | (uint32_t)i;
  }
  keyof[0] = 0;
  for (size_t op = 0; op < OPS; op++) {
    uint32_t r = rnd();
    size_t i = r % KEYS;
    uint32_t k = keyof[i];
    switch ((r >> 16) % 4) {
    case 0:
    case 1: {
      void *v = VAL(op);
      int rc = wrk_idmap_put(&m, k, v);
      if (model[i]) {
        assert_int_equal(rc, -EEXIST);
      } else {
        assert_int_equal(rc, 0);
        model[i] = v;
        live++;
      }
      break;
    }
    case 2:
      assert_ptr_equal(wrk_idmap_del(&m, k), model[i]);
      if (model[i])
        live--;
      model[i] = NULL;
      break;
    default:
      assert_ptr_equal(wrk_idmap_get(&m, k), model[i]);
      break;
    }
    assert_int_equal(wrk_idmap_size(&m), live);
    if (op % 50000 == 0)
      for (size_t j = 0; j < KEYS; j++)
        assert_ptr_equal(wrk_idmap_get(&m, keyof[j]), model[j]);
  }
  for (size_t j = 0; j < KEYS; j++)
    assert_ptr_equal(wrk_idmap_get(&m, keyof[j]), model[j]);
  /* empty it completely; it stays usable */
  for (size_t j = 0; j < KEYS; j++)
    assert_ptr_equal(wrk_idmap_del(&m, keyof[j]), model[j]);
  assert_int_equal(wrk_idmap_size(&m), 0);
  assert_int_equal(wrk_idmap_put(&m, 99, VAL(99)), 0);
  assert_ptr_equal(wrk_idmap_get(&m, 99), VAL(99));
  wrk_idmap_free(&m);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_empty),
      cmocka_unit_test(test_put_get_del),
      cmocka_unit_test(test_exists),
      cmocka_unit_test(test_key_zero),
      cmocka_unit_test(test_grow),
      cmocka_unit_test(test_tombstone_reuse),
      cmocka_unit_test(test_random_churn),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
