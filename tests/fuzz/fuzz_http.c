/* libFuzzer target: the metrics endpoint's HTTP request-head parser on
 * arbitrary bytes, fed whole and in two pieces; checks its promises. */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "shared/http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x)                                                               \
  do {                                                                         \
    if (!(x))                                                                  \
      __builtin_trap();                                                        \
  } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  struct qp_http_req r;
  int rc = qp_http_parse(data, size, &r);
  CHECK(rc == 0 || rc == -EINVAL || rc == -EMSGSIZE ||
        (rc > 0 && (size_t)rc <= size && rc <= QP_HTTP_HEAD_MAX));
  if (rc > 0) {
    CHECK(r.path[0] == '/');
    CHECK(strlen(r.path) < sizeof(r.path));
    CHECK(!strchr(r.path, '?') && !strchr(r.path, ' '));
  }
  if (rc == -EMSGSIZE)
    CHECK(size >= QP_HTTP_HEAD_MAX);
  /* a prefix never claims a longer head than the whole */
  if (size > 1) {
    int p = qp_http_parse(data, size / 2, &r);
    CHECK(p <= 0 || p == rc);
  }
  return 0;
}
