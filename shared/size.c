/* Byte sizes with binary units: the parser of size settings and the form
 * messages and tools print them in. */
#include "shared/size.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static const struct {
  const char *name;
  unsigned shift;
} units[] = {{"GiB", 30}, {"MiB", 20}, {"KiB", 10}}; /* largest first */

int qp_size_parse(const char *s, uint64_t *bytes) {
  if (!s || !bytes || *s < '0' || *s > '9')
    return -EINVAL;
  uint64_t v = 0;
  int overflow = 0; /* the syntax is checked to the end first */
  for (; *s >= '0' && *s <= '9'; s++) {
    unsigned d = (unsigned)(*s - '0');
    if (v > (UINT64_MAX - d) / 10)
      overflow = 1;
    else
      v = v * 10 + d;
  }
  unsigned shift = 0;
  if (*s) {
    size_t i = 0, n = sizeof(units) / sizeof(units[0]);
    while (i < n && strcmp(s, units[i].name) != 0)
      i++;
    if (i == n)
      return -EINVAL;
    shift = units[i].shift;
  }
  if (overflow || v > UINT64_MAX >> shift)
    return -ERANGE;
  *bytes = v << shift;
  return 0;
}

size_t qp_size_format(uint64_t bytes, char *buf, size_t len) {
  const char *unit = "";
  uint64_t v = bytes;
  for (size_t i = 0; bytes && i < sizeof(units) / sizeof(units[0]); i++) {
    uint64_t one = UINT64_C(1) << units[i].shift;
    if (bytes % one == 0) {
      v = bytes / one;
      unit = units[i].name;
      break;
    }
  }
  char tmp[32]; /* UINT64_MAX has 20 digits */
  int n = snprintf(tmp, sizeof(tmp), "%" PRIu64 "%s", v, unit);
  if (len > 0)
    snprintf(buf, len, "%s", tmp);
  return n > 0 ? (size_t)n : 0;
}
