/* Open-addressing hash map from 32-bit stream IDs to pointers. */
#ifndef QP_WORKER_IDMAP_H
#define QP_WORKER_IDMAP_H

#include <stddef.h>
#include <stdint.h>

struct wrk_idmap_slot {
  uint32_t key;
  uint32_t state; /* 0 empty, 1 used, 2 deleted */
  void *val;
};

struct wrk_idmap {
  struct wrk_idmap_slot *s;
  size_t cap, used, tomb; /* cap is a power of two or 0 */
};

void wrk_idmap_init(struct wrk_idmap *m);
void wrk_idmap_free(struct wrk_idmap *m);
void *wrk_idmap_get(const struct wrk_idmap *m, uint32_t key);
/* Returns 0, -EEXIST (key present, unchanged) or -ENOMEM. */
int wrk_idmap_put(struct wrk_idmap *m, uint32_t key, void *val);
/* Returns the removed value or NULL. */
void *wrk_idmap_del(struct wrk_idmap *m, uint32_t key);
static inline size_t wrk_idmap_size(const struct wrk_idmap *m) {
  return m->used;
}

#endif
