/* libFuzzer target: the config and flag parsers (durations, sizes, every
 * pool setting's parser of shared/settings.c, addresses, IP filters) on
 * arbitrary NUL-terminated text, with round-trip checks. */
#include <errno.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "shared/addr.h"
#include "shared/duration.h"
#include "shared/ipfilter.h"
#include "shared/settings.h"
#include "shared/size.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x)                                                               \
  do {                                                                         \
    if (!(x))                                                                  \
      __builtin_trap();                                                        \
  } while (0)

static void fuzz_duration(const char *s) {
  uint64_t ns = 0;
  if (qp_duration_parse(s, &ns) != 0)
    return;
  CHECK(ns <= (uint64_t)INT64_MAX);
  char buf[64];
  size_t n = qp_duration_format(ns, buf, sizeof(buf));
  CHECK(n < sizeof(buf) && strlen(buf) == n);
  uint64_t back = 0;
  CHECK(qp_duration_parse(buf, &back) == 0 && back == ns);
  /* A short buffer truncates but stays terminated. */
  char tiny[3];
  CHECK(qp_duration_format(ns, tiny, sizeof(tiny)) == n);
  CHECK(strlen(tiny) == (n < 2 ? n : 2));
}

/* Every pool setting's parser (shared/settings.c): a value is taken and
 * survives format -> parse and the range check, or it is refused with a
 * sentence and the settings are untouched. */
static void fuzz_settings(const char *s) {
  for (int i = 0; i < QP_SET_N; i++) {
    struct qp_pool_settings a, b, before;
    char why[256], v[300], err[256];
    qp_pool_settings_defaults(&a);
    before = a;
    int rc = qp_setting_parse((enum qp_setting_id)i, s, &a, why, sizeof(why));
    if (rc < 0) {
      CHECK(rc == -EINVAL && why[0] && !memcmp(&a, &before, sizeof(a)));
      continue;
    }
    CHECK(rc == 0);
    qp_setting_format((enum qp_setting_id)i, &a, v, sizeof(v));
    b = before;
    if (v[0] || qp_settings[i].type != QP_ST_HOSTNAME)
      CHECK(qp_setting_parse((enum qp_setting_id)i, v, &b, why, sizeof(why)) ==
                0 &&
            qp_setting_equal((enum qp_setting_id)i, &a, &b));
    CHECK(qp_pool_settings_check(&a, err, sizeof(err)) == 0);
  }
}

static void fuzz_size(const char *s) {
  uint64_t bytes = 7;
  int rc = qp_size_parse(s, &bytes);
  CHECK(rc == 0 || rc == -EINVAL || rc == -ERANGE);
  if (rc != 0)
    CHECK(bytes == 7);
  if (rc != 0)
    return;
  char buf[32];
  size_t n = qp_size_format(bytes, buf, sizeof(buf));
  CHECK(n < sizeof(buf) && strlen(buf) == n);
  uint64_t back = 0;
  CHECK(qp_size_parse(buf, &back) == 0 && back == bytes);
  char tiny[3];
  CHECK(qp_size_format(bytes, tiny, sizeof(tiny)) == n);
  CHECK(strlen(tiny) == (n < 2 ? n : 2));
}

static void fuzz_addr(const char *s) {
  char host[8];
  unsigned port = 0;
  if (qp_addr_split(s, host, sizeof(host), &port, 0) == 0)
    CHECK(strlen(host) < sizeof(host) && port >= 1 && port <= 65535);

  struct sockaddr_storage ss, again;
  socklen_t len = 0, len2 = 0;
  if (qp_addr_parse_numeric(s, &ss, &len) != 0)
    return;
  CHECK(len > 0 && len <= sizeof(ss));
  char buf[QP_ADDR_STRLEN];
  qp_addr_format((struct sockaddr *)&ss, buf, sizeof(buf));
  CHECK(strlen(buf) < sizeof(buf));
  CHECK(qp_addr_parse_numeric(buf, &again, &len2) == 0 && len2 == len);
  CHECK(qp_addr_equal((struct sockaddr *)&ss, (struct sockaddr *)&again));
}

static void fuzz_ipfilter(const char *s) {
  struct qp_ipfilter *f = malloc(sizeof(*f));
  CHECK(f != NULL);
  qp_ipfilter_init(f);
  if (qp_ipfilter_add(f, s) == 0) {
    CHECK(f->n == 1);
    const struct qp_ipfilter_entry *e = &f->e[0];
    CHECK((e->family == AF_INET && e->prefix <= 32) ||
          (e->family == AF_INET6 && e->prefix <= 128));
    /* The entry's own (masked) address is inside it. */
    struct sockaddr_storage peer;
    memset(&peer, 0, sizeof(peer));
    if (e->family == AF_INET) {
      struct sockaddr_in *sin = (struct sockaddr_in *)&peer;
      sin->sin_family = AF_INET;
      memcpy(&sin->sin_addr, e->addr, 4);
    } else {
      struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&peer;
      sin6->sin6_family = AF_INET6;
      memcpy(&sin6->sin6_addr, e->addr, 16);
    }
    CHECK(qp_ipfilter_allows(f, (struct sockaddr *)&peer));
  }
  qp_ipfilter_init(f);
  int rc = qp_ipfilter_add_list(f, s);
  CHECK(rc == 0 || rc == -EINVAL || rc == -ENOSPC);
  CHECK(f->n <= QP_IPFILTER_MAX);
  free(f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *s = malloc(size + 1);
  if (!s)
    return 0;
  memcpy(s, data, size);
  s[size] = '\0';
  fuzz_duration(s);
  fuzz_size(s);
  fuzz_settings(s);
  fuzz_addr(s);
  fuzz_ipfilter(s);
  free(s);
  return 0;
}
