/* Go-compatible duration parsing (time.ParseDuration, non-negative values
 * only) and formatting (time.Duration.String). */
#include "shared/duration.h"

#include <errno.h>
#include <string.h>

/* Go durations are int64 nanoseconds: nothing larger is accepted. */
#define DUR_MAX UINT64_C(9223372036854775807)
#define DUR_LIMIT (DUR_MAX + 1) /* 1<<63: intermediate bound, as Go uses */

struct dur_unit {
  const char *name;
  uint64_t ns;
};

static const struct dur_unit dur_units[] = {
    {"ns", 1},
    {"us", 1000},
    {"\xc2\xb5s", 1000}, /* U+00B5 MICRO SIGN */
    {"\xce\xbcs", 1000}, /* U+03BC GREEK SMALL LETTER MU */
    {"ms", 1000000},
    {"s", 1000000000},
    {"m", UINT64_C(60) * 1000000000},
    {"h", UINT64_C(3600) * 1000000000},
};

static int is_digit(char c) {
  return c >= '0' && c <= '9';
}

static int lookup_unit(const char *u, size_t n, uint64_t *ns) {
  for (size_t i = 0; i < sizeof(dur_units) / sizeof(dur_units[0]); i++) {
    if (strlen(dur_units[i].name) == n &&
        memcmp(dur_units[i].name, u, n) == 0) {
      *ns = dur_units[i].ns;
      return 0;
    }
  }
  return -EINVAL;
}

int qp_duration_parse(const char *s, uint64_t *ns) {
  if (!s || !ns)
    return -EINVAL;
  if (*s == '+')
    s++; /* Go accepts an explicit plus sign; minus means negative: refused */
  if (*s == '\0' || *s == '-')
    return -EINVAL;
  if (strcmp(s, "0") == 0) {
    *ns = 0;
    return 0;
  }

  uint64_t total = 0;
  int overflow = 0; /* keep checking syntax, report -ERANGE at the end */
  while (*s) {
    if (!is_digit(*s) && *s != '.')
      return -EINVAL;

    /* Integer part. */
    uint64_t v = 0;
    const char *start = s;
    for (; is_digit(*s); s++) {
      if (v > DUR_LIMIT / 10)
        overflow = 1;
      else {
        v = v * 10 + (uint64_t)(*s - '0');
        if (v > DUR_LIMIT)
          overflow = 1;
      }
    }
    int pre = s != start;

    /* Fraction: digits past what fits are ignored, as Go does. */
    uint64_t f = 0;
    double scale = 1;
    int post = 0;
    if (*s == '.') {
      s++;
      start = s;
      int full = 0;
      for (; is_digit(*s); s++) {
        if (full)
          continue;
        if (f > DUR_MAX / 10) {
          full = 1;
          continue;
        }
        uint64_t y = f * 10 + (uint64_t)(*s - '0');
        if (y > DUR_LIMIT) {
          full = 1;
          continue;
        }
        f = y;
        scale *= 10;
      }
      post = s != start;
    }
    if (!pre && !post)
      return -EINVAL;

    /* Unit: everything up to the next digit or '.'. */
    start = s;
    while (*s && *s != '.' && !is_digit(*s))
      s++;
    if (s == start)
      return -EINVAL; /* missing unit */
    uint64_t unit;
    if (lookup_unit(start, (size_t)(s - start), &unit) < 0)
      return -EINVAL;

    if (overflow)
      continue;
    if (v > DUR_LIMIT / unit) {
      overflow = 1;
      continue;
    }
    v *= unit;
    if (f > 0) {
      v += (uint64_t)((double)f * ((double)unit / scale));
      if (v > DUR_LIMIT) {
        overflow = 1;
        continue;
      }
    }
    if (v > DUR_LIMIT - total) {
      overflow = 1;
      continue;
    }
    total += v;
  }
  if (overflow || total > DUR_MAX)
    return -ERANGE;
  *ns = total;
  return 0;
}

/* Writes v's decimal digits ending just before buf[w]; returns new w. */
static size_t put_int(char *buf, size_t w, uint64_t v) {
  do {
    buf[--w] = (char)('0' + v % 10);
    v /= 10;
  } while (v > 0);
  return w;
}

/* Writes v / 10^prec with the fraction's trailing zeros (and a bare '.')
 * dropped, ending before buf[w]. Returns new w and sets *rest = v / 10^prec. */
static size_t put_frac(char *buf, size_t w, uint64_t v, int prec,
                       uint64_t *rest) {
  int print = 0;
  for (int i = 0; i < prec; i++) {
    unsigned digit = (unsigned)(v % 10);
    print = print || digit != 0;
    if (print)
      buf[--w] = (char)('0' + digit);
    v /= 10;
  }
  if (print)
    buf[--w] = '.';
  *rest = v;
  return w;
}

size_t qp_duration_format(uint64_t ns, char *buf, size_t len) {
  char tmp[40]; /* UINT64_MAX is "5124095h34m33.709551615s" */
  size_t w = sizeof(tmp);

  if (ns < QP_NS_PER_S) {
    /* Below one second: a smaller unit, so "1.5ms" not "0.0015s". */
    int prec;
    w -= 1;
    tmp[w] = 's';
    if (ns == 0) {
      tmp[--w] = '0';
      goto out;
    } else if (ns < 1000) {
      prec = 0;
      tmp[--w] = 'n';
    } else if (ns < 1000000) {
      prec = 3;
      w -= 2;
      memcpy(tmp + w, "\xc2\xb5", 2); /* µ, as Go prints it */
    } else {
      prec = 6;
      tmp[--w] = 'm';
    }
    uint64_t rest;
    w = put_frac(tmp, w, ns, prec, &rest);
    w = put_int(tmp, w, rest);
    goto out;
  }

  tmp[--w] = 's';
  uint64_t rest;
  w = put_frac(tmp, w, ns, 9, &rest);
  /* rest is whole seconds now. */
  w = put_int(tmp, w, rest % 60);
  rest /= 60;
  if (rest > 0) {
    tmp[--w] = 'm';
    w = put_int(tmp, w, rest % 60);
    rest /= 60;
    if (rest > 0) {
      tmp[--w] = 'h';
      w = put_int(tmp, w, rest);
    }
  }

out:;
  size_t n = sizeof(tmp) - w;
  if (len > 0) {
    size_t c = n < len - 1 ? n : len - 1;
    memcpy(buf, tmp + w, c);
    buf[c] = '\0';
  }
  return n;
}
