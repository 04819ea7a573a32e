/* Client-IP filter: a set of exact addresses and CIDR prefixes, IPv4 and
 * IPv6. An empty filter allows everyone. IPv4-mapped IPv6 peers
 * (::ffff:a.b.c.d) are matched as the IPv4 address. */
#ifndef QP_SHARED_IPFILTER_H
#define QP_SHARED_IPFILTER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define QP_IPFILTER_MAX 256

struct qp_ipfilter_entry {
  int family;       /* AF_INET or AF_INET6 */
  uint8_t addr[16]; /* network byte order, masked to prefix */
  unsigned prefix;  /* 0..32 or 0..128; exact addresses use 32/128 */
};

struct qp_ipfilter {
  size_t n;
  struct qp_ipfilter_entry e[QP_IPFILTER_MAX];
};

void qp_ipfilter_init(struct qp_ipfilter *f);
/* Adds "1.2.3.4", "10.0.0.0/8", "::1", "fd00::/8". Host bits set in a CIDR
 * are an error (say what you mean). Returns 0, -EINVAL (syntax / host bits),
 * or -ENOSPC (full). */
int qp_ipfilter_add(struct qp_ipfilter *f, const char *spec);
/* Adds each comma-separated item of list (spaces around items ignored). Same
 * returns; stops at the first bad item. */
int qp_ipfilter_add_list(struct qp_ipfilter *f, const char *list);
/* 1 if sa's address is allowed (or the filter is empty), else 0. */
int qp_ipfilter_allows(const struct qp_ipfilter *f, const struct sockaddr *sa);

#endif
