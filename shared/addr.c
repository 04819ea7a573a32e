/* Parsing and printing of "host:port" socket addresses (numeric, or resolved
 * with getaddrinfo). */
#include "shared/addr.h"

#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

static int parse_port(const char *p, unsigned *port, int allow_zero) {
  unsigned v = 0;
  size_t n = 0;
  for (; p[n]; n++) {
    if (p[n] < '0' || p[n] > '9' || n >= 5)
      return -EINVAL;
    v = v * 10 + (unsigned)(p[n] - '0');
  }
  if (n == 0 || v > 65535 || (v == 0 && !allow_zero))
    return -EINVAL;
  *port = v;
  return 0;
}

int qp_addr_split(const char *s, char *host, size_t hostlen, unsigned *port,
                  int allow_zero) {
  if (!s || !host || !port || hostlen == 0)
    return -EINVAL;
  const char *h, *colon;
  size_t hn;
  if (s[0] == '[') {
    const char *close = strchr(s, ']');
    if (!close || close[1] != ':')
      return -EINVAL;
    h = s + 1;
    hn = (size_t)(close - h);
    colon = close + 1;
    if (hn == 0 || memchr(h, '[', hn))
      return -EINVAL;
  } else {
    colon = strrchr(s, ':');
    if (!colon)
      return -EINVAL;
    h = s;
    hn = (size_t)(colon - s);
    /* A bare IPv6 address needs brackets: "::1:80" is ambiguous. */
    if (memchr(h, ':', hn) || memchr(h, '[', hn) || memchr(h, ']', hn))
      return -EINVAL;
  }
  if (hn >= hostlen)
    return -EINVAL;
  if (parse_port(colon + 1, port, allow_zero) < 0)
    return -EINVAL;
  memcpy(host, h, hn);
  host[hn] = '\0';
  return 0;
}

/* Numeric IPv6 with an optional "%scope" (interface name or number). */
static int parse_v6(const char *host, struct sockaddr_in6 *sin6) {
  char buf[INET6_ADDRSTRLEN];
  const char *pct = strchr(host, '%');
  size_t n = pct ? (size_t)(pct - host) : strlen(host);
  if (n >= sizeof(buf))
    return -EINVAL;
  memcpy(buf, host, n);
  buf[n] = '\0';
  if (inet_pton(AF_INET6, buf, &sin6->sin6_addr) != 1)
    return -EINVAL;
  if (pct) {
    const char *scope = pct + 1;
    unsigned long idx = 0;
    size_t i = 0;
    for (; scope[i] >= '0' && scope[i] <= '9' && i < 10; i++)
      idx = idx * 10 + (unsigned long)(scope[i] - '0');
    if (i == 0 || scope[i] != '\0')
      idx = if_nametoindex(scope);
    if (idx == 0 || idx > UINT32_MAX)
      return -EINVAL;
    sin6->sin6_scope_id = (uint32_t)idx;
  }
  return 0;
}

/* Fills ss from an already split host (brackets removed) and port. Returns 0,
 * -EINVAL for a non-numeric host. */
static int fill_numeric(const char *s, const char *host, unsigned port,
                        struct sockaddr_storage *ss, socklen_t *sslen) {
  memset(ss, 0, sizeof(*ss));
  if (host[0] == '\0') {
    struct sockaddr_in *sin = (struct sockaddr_in *)ss;
    sin->sin_family = AF_INET;
    sin->sin_port = htons((uint16_t)port);
    sin->sin_addr.s_addr = htonl(INADDR_ANY);
    *sslen = sizeof(*sin);
    return 0;
  }
  if (s[0] == '[') {
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
    if (parse_v6(host, sin6) < 0)
      return -EINVAL;
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons((uint16_t)port);
    *sslen = sizeof(*sin6);
    return 0;
  }
  struct sockaddr_in *sin = (struct sockaddr_in *)ss;
  if (inet_pton(AF_INET, host, &sin->sin_addr) != 1)
    return -EINVAL;
  sin->sin_family = AF_INET;
  sin->sin_port = htons((uint16_t)port);
  *sslen = sizeof(*sin);
  return 0;
}

int qp_addr_parse_numeric(const char *s, struct sockaddr_storage *ss,
                          socklen_t *sslen) {
  char host[QP_ADDR_STRLEN];
  unsigned port;
  if (!ss || !sslen || qp_addr_split(s, host, sizeof(host), &port, 1) < 0)
    return -EINVAL;
  struct sockaddr_storage tmp;
  socklen_t tmplen;
  if (fill_numeric(s, host, port, &tmp, &tmplen) < 0)
    return -EINVAL;
  *ss = tmp;
  *sslen = tmplen;
  return 0;
}

/* A host name worth asking the resolver about: letters, digits, '-', '.',
 * '_' only (anything else is a typo or an unbracketed address). */
static int plausible_name(const char *h) {
  if (!*h)
    return 0;
  for (; *h; h++) {
    char c = *h;
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
          (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_'))
      return 0;
  }
  return 1;
}

int qp_addr_resolve(const char *s, struct sockaddr_storage *ss,
                    socklen_t *sslen) {
  char host[256]; /* a DNS name has at most 253 characters */
  unsigned port;
  if (!ss || !sslen || qp_addr_split(s, host, sizeof(host), &port, 1) < 0)
    return -EINVAL;
  struct sockaddr_storage tmp;
  socklen_t tmplen;
  if (fill_numeric(s, host, port, &tmp, &tmplen) == 0) {
    *ss = tmp;
    *sslen = tmplen;
    return 0;
  }
  if (s[0] == '[' || !plausible_name(host))
    return -EINVAL;

  struct addrinfo hints, *res = NULL;
  memset(&hints, 0, sizeof(hints));
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_DGRAM;
  hints.ai_protocol = IPPROTO_UDP;
  if (getaddrinfo(host, NULL, &hints, &res) != 0 || !res)
    return -EHOSTUNREACH;
  int rc = -EHOSTUNREACH;
  for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
    if ((ai->ai_family != AF_INET && ai->ai_family != AF_INET6) ||
        ai->ai_addrlen > sizeof(*ss))
      continue;
    memset(ss, 0, sizeof(*ss));
    memcpy(ss, ai->ai_addr, ai->ai_addrlen);
    *sslen = (socklen_t)ai->ai_addrlen;
    if (ai->ai_family == AF_INET)
      ((struct sockaddr_in *)ss)->sin_port = htons((uint16_t)port);
    else
      ((struct sockaddr_in6 *)ss)->sin6_port = htons((uint16_t)port);
    rc = 0;
    break;
  }
  freeaddrinfo(res);
  return rc;
}

char *qp_addr_format(const struct sockaddr *sa, char *buf, size_t len) {
  if (!buf || len == 0)
    return buf;
  char ip[INET6_ADDRSTRLEN];
  if (sa && sa->sa_family == AF_INET) {
    const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;
    inet_ntop(AF_INET, &sin->sin_addr, ip, sizeof(ip));
    snprintf(buf, len, "%s:%u", ip, (unsigned)ntohs(sin->sin_port));
  } else if (sa && sa->sa_family == AF_INET6) {
    const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)sa;
    inet_ntop(AF_INET6, &sin6->sin6_addr, ip, sizeof(ip));
    if (sin6->sin6_scope_id)
      snprintf(buf, len, "[%s%%%u]:%u", ip, (unsigned)sin6->sin6_scope_id,
               (unsigned)ntohs(sin6->sin6_port));
    else
      snprintf(buf, len, "[%s]:%u", ip, (unsigned)ntohs(sin6->sin6_port));
  } else {
    snprintf(buf, len, "(unknown address family)");
  }
  return buf;
}

int qp_addr_equal(const struct sockaddr *a, const struct sockaddr *b) {
  if (!a || !b || a->sa_family != b->sa_family)
    return 0;
  if (a->sa_family == AF_INET) {
    const struct sockaddr_in *x = (const struct sockaddr_in *)a;
    const struct sockaddr_in *y = (const struct sockaddr_in *)b;
    return x->sin_port == y->sin_port &&
           x->sin_addr.s_addr == y->sin_addr.s_addr;
  }
  if (a->sa_family == AF_INET6) {
    const struct sockaddr_in6 *x = (const struct sockaddr_in6 *)a;
    const struct sockaddr_in6 *y = (const struct sockaddr_in6 *)b;
    return x->sin6_port == y->sin6_port &&
           x->sin6_scope_id == y->sin6_scope_id &&
           memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr)) == 0;
  }
  return 0;
}
