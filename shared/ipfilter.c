/* Client-IP allow list: exact addresses and CIDR prefixes, matched against
 * peer socket addresses (IPv4-mapped IPv6 peers match IPv4 entries). */
#include "shared/ipfilter.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>

#define SPEC_MAX 64 /* INET6_ADDRSTRLEN (46) + "/128" with room to spare */

static const uint8_t v4mapped_prefix[12] = {0, 0, 0, 0, 0,    0,
                                            0, 0, 0, 0, 0xff, 0xff};

void qp_ipfilter_init(struct qp_ipfilter *f) {
  f->n = 0;
}

/* 1 if the first `prefix` bits of a and b are equal. */
static int prefix_equal(const uint8_t *a, const uint8_t *b, unsigned prefix) {
  unsigned bytes = prefix / 8, bits = prefix % 8;
  if (memcmp(a, b, bytes) != 0)
    return 0;
  if (bits == 0)
    return 1;
  uint8_t mask = (uint8_t)(0xff << (8 - bits));
  return (a[bytes] & mask) == (b[bytes] & mask);
}

/* 1 if any bit after the first `prefix` of the alen-byte address is set. */
static int host_bits_set(const uint8_t *a, size_t alen, unsigned prefix) {
  for (size_t i = 0; i < alen; i++) {
    unsigned first = (unsigned)i * 8; /* bit index of this byte's MSB */
    uint8_t mask;
    if (prefix >= first + 8)
      continue;
    mask = prefix <= first ? 0xff : (uint8_t)(0xff >> (prefix - first));
    if (a[i] & mask)
      return 1;
  }
  return 0;
}

static int parse_prefix(const char *p, unsigned max, unsigned *out) {
  unsigned v = 0;
  size_t n = 0;
  for (; p[n]; n++) {
    if (p[n] < '0' || p[n] > '9' || n >= 3)
      return -EINVAL;
    v = v * 10 + (unsigned)(p[n] - '0');
  }
  if (n == 0 || v > max)
    return -EINVAL;
  *out = v;
  return 0;
}

static int parse_entry(const char *spec, struct qp_ipfilter_entry *e) {
  char buf[SPEC_MAX];
  size_t len = strlen(spec);
  if (len == 0 || len >= sizeof(buf))
    return -EINVAL;
  memcpy(buf, spec, len + 1);
  char *slash = strchr(buf, '/');
  if (slash)
    *slash = '\0';

  memset(e, 0, sizeof(*e));
  size_t alen;
  if (strchr(buf, ':')) {
    if (inet_pton(AF_INET6, buf, e->addr) != 1)
      return -EINVAL;
    e->family = AF_INET6;
    alen = 16;
  } else {
    if (inet_pton(AF_INET, buf, e->addr) != 1)
      return -EINVAL;
    e->family = AF_INET;
    alen = 4;
  }
  e->prefix = (unsigned)alen * 8;
  if (slash && parse_prefix(slash + 1, (unsigned)alen * 8, &e->prefix) < 0)
    return -EINVAL;
  if (host_bits_set(e->addr, alen, e->prefix))
    return -EINVAL;

  /* "::ffff:10.0.0.0/104" is 10.0.0.0/8: store it as IPv4 so that both IPv4
   * peers and mapped IPv6 peers match it. */
  if (e->family == AF_INET6 && e->prefix >= 96 &&
      memcmp(e->addr, v4mapped_prefix, 12) == 0) {
    memmove(e->addr, e->addr + 12, 4);
    memset(e->addr + 4, 0, 12);
    e->family = AF_INET;
    e->prefix -= 96;
  }
  return 0;
}

int qp_ipfilter_add(struct qp_ipfilter *f, const char *spec) {
  struct qp_ipfilter_entry e;
  if (!f || !spec || parse_entry(spec, &e) < 0)
    return -EINVAL;
  for (size_t i = 0; i < f->n; i++) {
    const struct qp_ipfilter_entry *o = &f->e[i];
    if (o->family == e.family && o->prefix == e.prefix &&
        memcmp(o->addr, e.addr, sizeof(e.addr)) == 0)
      return 0; /* already there */
  }
  if (f->n >= QP_IPFILTER_MAX)
    return -ENOSPC;
  f->e[f->n++] = e;
  return 0;
}

static int is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

int qp_ipfilter_add_list(struct qp_ipfilter *f, const char *list) {
  if (!f || !list)
    return -EINVAL;
  const char *p = list;
  while (is_space(*p))
    p++;
  if (*p == '\0')
    return 0; /* nothing listed */
  for (;;) {
    const char *end = strchr(p, ',');
    const char *stop = end ? end : p + strlen(p);
    const char *a = p, *b = stop;
    while (a < b && is_space(*a))
      a++;
    while (b > a && is_space(b[-1]))
      b--;
    char item[SPEC_MAX];
    size_t n = (size_t)(b - a);
    if (n == 0 || n >= sizeof(item))
      return -EINVAL;
    memcpy(item, a, n);
    item[n] = '\0';
    int rc = qp_ipfilter_add(f, item);
    if (rc < 0)
      return rc;
    if (!end)
      return 0;
    p = end + 1;
  }
}

static int match(const struct qp_ipfilter *f, int family, const uint8_t *a) {
  for (size_t i = 0; i < f->n; i++)
    if (f->e[i].family == family &&
        prefix_equal(f->e[i].addr, a, f->e[i].prefix))
      return 1;
  return 0;
}

int qp_ipfilter_allows(const struct qp_ipfilter *f, const struct sockaddr *sa) {
  if (!f || f->n == 0)
    return 1;
  if (!sa)
    return 0;
  if (sa->sa_family == AF_INET) {
    const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;
    return match(f, AF_INET, (const uint8_t *)&sin->sin_addr);
  }
  if (sa->sa_family == AF_INET6) {
    const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)sa;
    const uint8_t *a = sin6->sin6_addr.s6_addr;
    if (match(f, AF_INET6, a))
      return 1;
    return memcmp(a, v4mapped_prefix, 12) == 0 && match(f, AF_INET, a + 12);
  }
  return 0;
}
