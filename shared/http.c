/* Minimal HTTP/1.x request-head parser for the metrics endpoint. */
#include <errno.h>
#include <string.h>

#include "shared/http.h"

/* The end of the head: the byte after the blank line, or 0. */
static size_t head_end(const uint8_t *b, size_t len) {
  for (size_t i = 0; i < len; i++) {
    if (b[i] != '\n')
      continue;
    if (i + 1 < len && b[i + 1] == '\n')
      return i + 2;
    if (i + 2 < len && b[i + 1] == '\r' && b[i + 2] == '\n')
      return i + 3;
  }
  return 0;
}

int qp_http_parse(const uint8_t *buf, size_t len, struct qp_http_req *r) {
  size_t scan = len < QP_HTTP_HEAD_MAX ? len : QP_HTTP_HEAD_MAX;
  size_t end = head_end(buf, scan);
  if (!end)
    return len >= QP_HTTP_HEAD_MAX ? -EMSGSIZE : 0;
  /* request line: METHOD SP TARGET SP HTTP/1.x (CR) LF */
  size_t eol = 0;
  while (buf[eol] != '\n')
    eol++;
  size_t ll = eol > 0 && buf[eol - 1] == '\r' ? eol - 1 : eol;
  size_t m = 0;
  while (m < ll && buf[m] >= 'A' && buf[m] <= 'Z')
    m++;
  if (m == 0 || m > 16 || m >= ll || buf[m] != ' ')
    return -EINVAL;
  size_t t0 = m + 1, t = t0;
  while (t < ll && buf[t] > ' ' && buf[t] < 0x7f)
    t++;
  if (t == t0 || t >= ll || buf[t] != ' ' || buf[t0] != '/')
    return -EINVAL;
  static const char ver[] = "HTTP/1.";
  size_t v = t + 1;
  if (ll - v != sizeof(ver) || memcmp(buf + v, ver, sizeof(ver) - 1) != 0 ||
      (buf[ll - 1] != '0' && buf[ll - 1] != '1'))
    return -EINVAL;
  size_t plen = t - t0;
  for (size_t i = t0; i < t; i++)
    if (buf[i] == '?') {
      plen = i - t0;
      break;
    }
  if (plen >= sizeof(r->path))
    return -EINVAL;
  memcpy(r->path, buf + t0, plen);
  r->path[plen] = '\0';
  r->method = m == 3 && !memcmp(buf, "GET", 3)    ? QP_HTTP_GET
              : m == 4 && !memcmp(buf, "HEAD", 4) ? QP_HTTP_HEAD
                                                  : QP_HTTP_OTHER;
  return (int)end;
}
