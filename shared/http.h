/* The request head of qpoold's metrics endpoint: a minimal HTTP/1.x parser
 * (pure; fuzzed). Only the request line matters; headers are skipped. */
#ifndef QP_SHARED_HTTP_H
#define QP_SHARED_HTTP_H

#include <stddef.h>
#include <stdint.h>

#define QP_HTTP_HEAD_MAX 4096 /* longer request heads are refused */

enum qp_http_method { QP_HTTP_GET, QP_HTTP_HEAD, QP_HTTP_OTHER };

struct qp_http_req {
  enum qp_http_method method;
  char path[256]; /* the target without its query string */
};

/* Looks for a whole request head (request line, headers, blank line; CRLF
 * or bare LF) in buf[0..len). Returns its length when complete (r filled),
 * 0 when more bytes are needed, -EINVAL for a malformed request line (not
 * "METHOD /path HTTP/1.x", control bytes, a path over 255 bytes), or
 * -EMSGSIZE when QP_HTTP_HEAD_MAX bytes hold no complete head. */
int qp_http_parse(const uint8_t *buf, size_t len, struct qp_http_req *r);

#endif
