/* Hash map for stream IDs (linear probing, tombstones, rehash at 70%). */
#include "worker/idmap.h"

#include <errno.h>
#include <stdlib.h>

static size_t slot_of(uint32_t key, size_t cap) {
  uint32_t h = key * 0x9E3779B1u; /* IDs are random, but 0 and peers' */
  h ^= h >> 16;
  return h & (cap - 1);
}

void wrk_idmap_init(struct wrk_idmap *m) {
  m->s = NULL;
  m->cap = m->used = m->tomb = 0;
}

void wrk_idmap_free(struct wrk_idmap *m) {
  free(m->s);
  wrk_idmap_init(m);
}

static struct wrk_idmap_slot *find(const struct wrk_idmap *m, uint32_t key) {
  if (m->cap == 0)
    return NULL;
  for (size_t i = slot_of(key, m->cap), n = 0; n < m->cap;
       i = (i + 1) & (m->cap - 1), n++) {
    struct wrk_idmap_slot *s = &m->s[i];
    if (s->state == 0)
      return NULL;
    if (s->state == 1 && s->key == key)
      return s;
  }
  return NULL;
}

void *wrk_idmap_get(const struct wrk_idmap *m, uint32_t key) {
  struct wrk_idmap_slot *s = find(m, key);
  return s ? s->val : NULL;
}

static int rehash(struct wrk_idmap *m, size_t cap) {
  struct wrk_idmap_slot *ns = calloc(cap, sizeof(*ns));
  if (!ns)
    return -ENOMEM;
  for (size_t i = 0; i < m->cap; i++) {
    if (m->s[i].state != 1)
      continue;
    size_t j = slot_of(m->s[i].key, cap);
    while (ns[j].state)
      j = (j + 1) & (cap - 1);
    ns[j] = m->s[i];
  }
  free(m->s);
  m->s = ns;
  m->cap = cap;
  m->tomb = 0;
  return 0;
}

int wrk_idmap_put(struct wrk_idmap *m, uint32_t key, void *val) {
  if (find(m, key))
    return -EEXIST;
  if ((m->used + m->tomb + 1) * 10 > m->cap * 7) {
    size_t cap = m->cap ? m->cap : 16;
    while ((m->used + 1) * 10 > cap * 5)
      cap *= 2;
    int rc = rehash(m, cap);
    if (rc)
      return rc;
  }
  size_t i = slot_of(key, m->cap);
  while (m->s[i].state == 1)
    i = (i + 1) & (m->cap - 1);
  if (m->s[i].state == 2)
    m->tomb--;
  m->s[i].key = key;
  m->s[i].state = 1;
  m->s[i].val = val;
  m->used++;
  return 0;
}

void *wrk_idmap_del(struct wrk_idmap *m, uint32_t key) {
  struct wrk_idmap_slot *s = find(m, key);
  if (!s)
    return NULL;
  void *v = s->val;
  s->state = 2;
  s->val = NULL;
  m->used--;
  m->tomb++;
  return v;
}
