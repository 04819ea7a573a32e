/* Socket addresses in the forms users type: "host:port", "[v6]:port",
 * ":port" (wildcard). */
#ifndef QP_SHARED_ADDR_H
#define QP_SHARED_ADDR_H

#include <stddef.h>
#include <sys/socket.h>

#define QP_ADDR_STRLEN 64 /* enough for "[ipv6%scope]:65535" */

/* Splits "host:port" / "[v6]:port" / ":port" into host (without brackets;
 * empty for ":port") and numeric port 1..65535 (0 allowed only if allow_zero).
 * Returns 0, or -EINVAL with nothing guaranteed in the outputs. */
int qp_addr_split(const char *s, char *host, size_t hostlen, unsigned *port,
                  int allow_zero);

/* Parses a numeric address (no DNS): "1.2.3.4:5", "[::1]:5", ":5" (IPv6
 * wildcard that also accepts IPv4 when the socket allows it is NOT implied:
 * ":5" yields 0.0.0.0:5). Port 0 is accepted (binding to an ephemeral port);
 * a caller that dials checks the port itself. "[fe80::1%eth0]:5" sets the
 * scope. Returns 0 and fills *ss / *sslen, or -EINVAL. */
int qp_addr_parse_numeric(const char *s, struct sockaddr_storage *ss,
                          socklen_t *sslen);

/* Like qp_addr_parse_numeric but resolves host names with getaddrinfo
 * (UDP, first IPv4 or IPv6 result; brackets only hold IPv6 literals). Returns
 * 0, -EINVAL for bad syntax, or -EHOSTUNREACH when the name does not resolve.
 * Blocking. */
int qp_addr_resolve(const char *s, struct sockaddr_storage *ss,
                    socklen_t *sslen);

/* "1.2.3.4:5" or "[::1]:5" into buf (NUL-terminated, truncated if short).
 * Returns buf. */
char *qp_addr_format(const struct sockaddr *sa, char *buf, size_t len);

/* 1 if both are the same family, address and port, else 0. */
int qp_addr_equal(const struct sockaddr *a, const struct sockaddr *b);

#endif
