/* The table of pool settings and the code that every user of it shares. */
#include "shared/settings.h"

#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "ipc.pb-c.h"
#include "shared/duration.h"
#include "shared/size.h"

#define SEC UINT64_C(1000000000)
/* The field's offset, when its C type is T (a compile error otherwise: an
 * entry's type and its field cannot disagree). */
#define SOT(f, T)                                                              \
  _Generic(((struct qp_pool_settings *)0)->f, T                                \
           : offsetof(struct qp_pool_settings, f))
/* An entry's type and its field, together: the kind fixes the C type. */
#define COUNT(f) .type = QP_ST_COUNT, .off = SOT(f, int32_t)
#define CC(f) .type = QP_ST_CC, .off = SOT(f, int32_t)
#define DURATION(f) .type = QP_ST_DURATION, .off = SOT(f, uint64_t)
#define SIZE(f) .type = QP_ST_SIZE, .off = SOT(f, uint64_t)
#define TLS_MODE(f) .type = QP_ST_TLS_MODE, .off = SOT(f, char)
#define HOSTNAME(f)                                                            \
  .type = QP_ST_HOSTNAME,                                                      \
  .off = _Generic(&((struct qp_pool_settings *)0)->f,                          \
                  char(*)[QP_HOSTNAME_MAX + 1]                                 \
                  : offsetof(struct qp_pool_settings, f))
#define PB(f) offsetof(Qpool__PoolAdd, f)
#define BOTH (QP_SCOPE_SERVER | QP_SCOPE_CLIENT)
#define QP_IDLE_TIMEOUT_MIN_NS SEC /* shorter: lost at the first delay */

/* Each entry names its fields: .min_nonzero and .def_text are rare. */
const struct qp_setting qp_settings[QP_SET_N] = {
    [QP_SET_MIN_CAP] = {.key = "min_cap",
                        .flag = "--min-cap",
                        .metavar = "N",
                        .scope = QP_SCOPE_CLIENT,
                        COUNT(min_cap),
                        .pb_off = PB(min_cap),
                        .def = 1,
                        .min = 1,
                        .max = QP_CAP_MAX,
                        .help = "lowest capacity: streams the pool keeps "
                                "ready"},
    [QP_SET_MAX_CAP] = {.key = "max_cap",
                        .flag = "--max-cap",
                        .metavar = "N",
                        .scope = BOTH,
                        COUNT(max_cap),
                        .pb_off = PB(max_cap),
                        .def = 1,
                        .min = 1,
                        .max = QP_CAP_MAX,
                        .help = "idle streams held at most: a server pool's "
                                "limit, a client pool's highest capacity "
                                "(which follows --min-cap when only that is "
                                "given)"},
    [QP_SET_MIN_INTERVAL] = {.key = "min_interval",
                             .flag = "--min-interval",
                             .metavar = "DUR",
                             .scope = QP_SCOPE_CLIENT,
                             DURATION(min_ivl_ns),
                             .pb_off = PB(min_interval),
                             .def = QP_INTERVAL_DEFAULT_NS,
                             .min = 1,
                             .max = QP_DURATION_MAX_NS,
                             .help = "shortest wait between fill rounds"},
    [QP_SET_MAX_INTERVAL] = {.key = "max_interval",
                             .flag = "--max-interval",
                             .metavar = "DUR",
                             .scope = QP_SCOPE_CLIENT,
                             DURATION(max_ivl_ns),
                             .pb_off = PB(max_interval),
                             .def = QP_INTERVAL_DEFAULT_NS,
                             .min = 1,
                             .max = QP_DURATION_MAX_NS,
                             .help = "longest wait between fill rounds; "
                                     "follows --min-interval when only that "
                                     "is given"},
    [QP_SET_KEEP_ALIVE] = {.key = "keep_alive",
                           .flag = "--keep-alive",
                           .metavar = "DUR",
                           .scope = BOTH,
                           DURATION(keep_alive_ns),
                           .pb_off = PB(keep_alive),
                           .def = 30 * SEC,
                           .min = 0,
                           .max = QP_DURATION_MAX_NS,
                           .help = "QUIC PING period; 0: no PINGs"},
    [QP_SET_IDLE_TIMEOUT] = {.key = "idle_timeout",
                             .flag = "--idle-timeout",
                             .metavar = "DUR",
                             .scope = BOTH,
                             DURATION(idle_timeout_ns),
                             .pb_off = PB(idle_timeout),
                             .def = 0,
                             .min = 0,
                             .max = QP_DURATION_MAX_NS,
                             .min_nonzero = QP_IDLE_TIMEOUT_MIN_NS,
                             .def_text = "0: 3x --keep-alive, or 30s when "
                                         "that is 0, as quic-go",
                             .help = "a connection that hears nothing this "
                                     "long is closed (QUIC max_idle_timeout: "
                                     "the shorter of both ends' applies); 1s "
                                     "or more, and longer than "
                                     "--keep-alive"},
    [QP_SET_SETUP_TIMEOUT] = {.key = "setup_timeout",
                              .flag = "--setup-timeout",
                              .metavar = "DUR",
                              .scope = BOTH,
                              DURATION(setup_timeout_ns),
                              .pb_off = PB(setup_timeout),
                              .def = 60 * SEC,
                              .min = 1,
                              .max = QP_DURATION_MAX_NS,
                              .help = "deadline of a new stream's ID "
                                      "exchange"},
    [QP_SET_CONGESTION_CONTROL] = {.key = "congestion_control",
                                   .flag = "--congestion-control",
                                   .metavar = "NAME",
                                   .scope = BOTH,
                                   CC(cc_algo),
                                   .pb_off = PB(congestion_control),
                                   .def = QP_CC_DEFAULT,
                                   .help = "congestion controller of every "
                                           "QUIC connection of the pool"},
    [QP_SET_MAX_STREAM_WINDOW] = {.key = "max_stream_window",
                                  .flag = "--max-stream-window",
                                  .metavar = "SIZE",
                                  .scope = BOTH,
                                  SIZE(max_stream_window),
                                  .pb_off = PB(max_stream_window),
                                  .def = QP_STREAM_WINDOW_MAX_DEFAULT,
                                  .min = QP_STREAM_WINDOW_MIN,
                                  .max = QP_STREAM_WINDOW_MAX,
                                  .help = "how far a stream's receive window "
                                          "and read-ahead may grow (the "
                                          "connection's window grows to a "
                                          "multiple of it)"},
    [QP_SET_TLS_MODE] = {.key = "tls_mode",
                         .flag = "--tls-mode",
                         .metavar = "0|1|2",
                         .scope = QP_SCOPE_CLIENT,
                         TLS_MODE(tls_mode),
                         .pb_off = PB(tls_mode),
                         .def = '1',
                         .min = '0',
                         .max = '2',
                         .help = "0: no verification, 1: self-signed server, "
                                 "not verified, 2: verified against the CA "
                                 "store and --hostname"},
    [QP_SET_HOSTNAME] = {.key = "hostname",
                         .flag = "--hostname",
                         .metavar = "NAME",
                         .scope = QP_SCOPE_CLIENT,
                         HOSTNAME(hostname),
                         .pb_off = PB(hostname),
                         .max = QP_HOSTNAME_MAX,
                         .def_text = "",
                         .help = "TLS server name (SNI); required by "
                                 "--tls-mode 2"},
};

#define VAL(s, e) ((char *)(s) + (e)->off)
#define CVAL(s, e) ((const char *)(s) + (e)->off)

const struct qp_setting *qp_setting_find(const char *key) {
  for (size_t i = 0; key && i < QP_SET_N; i++)
    if (!strcmp(key, qp_settings[i].key) || !strcmp(key, qp_settings[i].flag))
      return &qp_settings[i];
  return NULL;
}

void qp_pool_settings_defaults(struct qp_pool_settings *s) {
  memset(s, 0, sizeof(*s));
  for (size_t i = 0; i < QP_SET_N; i++) {
    const struct qp_setting *e = &qp_settings[i];
    switch (e->type) {
    case QP_ST_COUNT:
    case QP_ST_CC:
      *(int32_t *)VAL(s, e) = (int32_t)e->def;
      break;
    case QP_ST_DURATION:
    case QP_ST_SIZE:
      *(uint64_t *)VAL(s, e) = e->def;
      break;
    case QP_ST_TLS_MODE:
      *VAL(s, e) = (char)e->def;
      break;
    case QP_ST_HOSTNAME:
      *VAL(s, e) = '\0';
      break;
    }
  }
}

const char *qp_quote(char *buf, size_t len, const char *s, int quote) {
  size_t n = 0, shown = 0;
  if (quote)
    buf[n++] = '"';
  for (; *s && n + 8 < len; s++, shown++) {
    unsigned char ch = (unsigned char)*s;
    if (shown == 60) {
      memcpy(buf + n, "...", 3);
      n += 3;
      break;
    }
    if (ch == '"' || ch == '\\') {
      buf[n++] = '\\';
      buf[n++] = (char)ch;
    } else if (ch < 0x20 || ch >= 0x7f) {
      n += (size_t)snprintf(buf + n, len - n, "\\x%02x", ch);
    } else {
      buf[n++] = (char)ch;
    }
  }
  if (quote)
    buf[n++] = '"';
  buf[n] = '\0';
  return buf;
}

int qp_host_chars_ok(const char *h, int allow_colon) {
  if (!*h)
    return 0;
  for (; *h; h++) {
    char ch = *h;
    if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
          (ch >= '0' && ch <= '9') || ch == '-' || ch == '.' || ch == '_' ||
          (allow_colon && ch == ':')))
      return 0;
  }
  return 1;
}

int qp_is_digits(const char *s) {
  if (!*s)
    return 0;
  for (; *s; s++)
    if (*s < '0' || *s > '9')
      return 0;
  return 1;
}

int qp_parse_count(const char *v, int64_t min, int64_t max, int64_t *out,
                   char *why, size_t whylen) {
  char qv[QP_QUOTE_MAX], tmp[8];
  if (!why || whylen == 0) {
    why = tmp;
    whylen = sizeof(tmp);
  }
  qp_quote(qv, sizeof(qv), v ? v : "", 1);
  const char *d = v && v[0] == '+' ? v + 1 : v;
  int neg = v && v[0] == '-' && qp_is_digits(v + 1);
  uint64_t n = 0;
  if (!v || (!neg && !qp_is_digits(d))) {
    snprintf(why, whylen, "%s is not a number", qv);
    return -EINVAL;
  }
  for (; !neg && *d; d++) {
    unsigned digit = (unsigned)(*d - '0');
    if (n > ((uint64_t)max - digit) / 10) { /* n * 10 + digit > max */
      snprintf(why, whylen, "%s is too large (max %" PRId64 ")", qv, max);
      return -EINVAL;
    }
    n = n * 10 + digit;
    if (n > (uint64_t)max) {
      snprintf(why, whylen, "%s is too large (max %" PRId64 ")", qv, max);
      return -EINVAL;
    }
  }
  if (neg || (int64_t)n < min) {
    if (min >= 1)
      snprintf(why, whylen, "%s must be a positive number", qv);
    else
      snprintf(why, whylen, "%s must be a number from %" PRId64 " to %" PRId64,
               qv, min, max);
    return -EINVAL;
  }
  *out = (int64_t)n;
  return 0;
}

/* ns as Go writes it, without zero trailing units: "24h", "1m", "1m30s". */
static void duration_short(uint64_t ns, char *buf, size_t len) {
  qp_duration_format(ns, buf, len);
  size_t n = strlen(buf);
  if (n > 4 && !strcmp(buf + n - 4, "0m0s") && buf[n - 5] == 'h')
    buf[n -= 4] = '\0';
  if (n > 2 && !strcmp(buf + n - 2, "0s") && buf[n - 3] == 'm')
    buf[n - 2] = '\0';
}

static int parse_duration(const struct qp_setting *e, const char *v,
                          const char *qv, uint64_t *out, char *why, size_t wl) {
  uint64_t ns = 0;
  char max[32];
  int rc = qp_duration_parse(v, &ns);
  if (rc == -ERANGE || (rc == 0 && ns > e->max)) {
    duration_short(e->max, max, sizeof(max));
    snprintf(why, wl, "%s is too long (max %s)", qv, max);
    return -EINVAL;
  }
  if (rc < 0) {
    snprintf(why, wl, "%s is not a duration (e.g. 500ms, 5s, 1m30s)", qv);
    return -EINVAL;
  }
  if (ns < e->min) {
    snprintf(why, wl, "%s must be longer than 0", qv);
    return -EINVAL;
  }
  if (ns && ns < e->min_nonzero) {
    char lo[32];
    duration_short(e->min_nonzero, lo, sizeof(lo));
    snprintf(why, wl, "%s is too short: 0, or %s or more", qv, lo);
    return -EINVAL;
  }
  *out = ns;
  return 0;
}

static int parse_size(const struct qp_setting *e, const char *v, const char *qv,
                      uint64_t *out, char *why, size_t wl) {
  uint64_t n;
  char lo[32], hi[32];
  qp_size_format(e->min, lo, sizeof(lo));
  qp_size_format(e->max, hi, sizeof(hi));
  int rc = qp_size_parse(v, &n);
  if (rc == 0 && (n < e->min || n > e->max))
    rc = -ERANGE;
  if (rc == -ERANGE) {
    snprintf(why, wl, "%s is out of range: use %s to %s", qv, lo, hi);
    return -EINVAL;
  }
  if (rc < 0) {
    snprintf(why, wl,
             "%s is not a size: use %s to %s, in bytes or with KiB, MiB or "
             "GiB (e.g. 512KiB, 16MiB)",
             qv, lo, hi);
    return -EINVAL;
  }
  *out = n;
  return 0;
}

int qp_setting_parse(enum qp_setting_id id, const char *v,
                     struct qp_pool_settings *s, char *why, size_t whylen) {
  char qv[QP_QUOTE_MAX], tmp[8];
  if ((unsigned)id >= QP_SET_N || !v || !s)
    return -EINVAL;
  if (!why || whylen == 0) {
    why = tmp;
    whylen = sizeof(tmp);
  }
  why[0] = '\0';
  const struct qp_setting *e = &qp_settings[id];
  qp_quote(qv, sizeof(qv), v, 1);
  switch (e->type) {
  case QP_ST_COUNT: {
    int64_t n;
    int rc =
        qp_parse_count(v, (int64_t)e->min, (int64_t)e->max, &n, why, whylen);
    if (rc == 0)
      *(int32_t *)VAL(s, e) = (int32_t)n;
    return rc;
  }
  case QP_ST_DURATION:
    return parse_duration(e, v, qv, (uint64_t *)VAL(s, e), why, whylen);
  case QP_ST_SIZE:
    return parse_size(e, v, qv, (uint64_t *)VAL(s, e), why, whylen);
  case QP_ST_CC: {
    int algo;
    char names[64];
    if (qp_cc_parse(v, &algo) < 0) {
      snprintf(why, whylen, "%s is not a congestion controller: use %s", qv,
               qp_cc_names(names, sizeof(names)));
      return -EINVAL;
    }
    *(int32_t *)VAL(s, e) = algo;
    return 0;
  }
  case QP_ST_TLS_MODE:
    if (v[0] < (char)e->min || v[0] > (char)e->max || v[1] != '\0') {
      snprintf(why, whylen, "must be 0, 1 or 2");
      return -EINVAL;
    }
    *VAL(s, e) = v[0];
    return 0;
  case QP_ST_HOSTNAME:
    if (strlen(v) > e->max || v[0] == '-' || !qp_host_chars_ok(v, 1)) {
      snprintf(why, whylen, "%s is not a valid host name", qv);
      return -EINVAL;
    }
    memcpy(VAL(s, e), v, strlen(v) + 1);
    return 0;
  }
  return -EINVAL;
}

char *qp_setting_format(enum qp_setting_id id, const struct qp_pool_settings *s,
                        char *buf, size_t len) {
  if (len == 0)
    return buf;
  buf[0] = '\0';
  if ((unsigned)id >= QP_SET_N)
    return buf;
  const struct qp_setting *e = &qp_settings[id];
  switch (e->type) {
  case QP_ST_COUNT:
    snprintf(buf, len, "%" PRId32, *(const int32_t *)CVAL(s, e));
    break;
  case QP_ST_DURATION:
    duration_short(*(const uint64_t *)CVAL(s, e), buf, len);
    break;
  case QP_ST_SIZE:
    qp_size_format(*(const uint64_t *)CVAL(s, e), buf, len);
    break;
  case QP_ST_CC: {
    const char *n = qp_cc_name(*(const int32_t *)CVAL(s, e));
    snprintf(buf, len, "%s", n ? n : "?");
    break;
  }
  case QP_ST_TLS_MODE:
    snprintf(buf, len, "%c", *CVAL(s, e));
    break;
  case QP_ST_HOSTNAME:
    snprintf(buf, len, "%s", CVAL(s, e));
    break;
  }
  return buf;
}

int qp_setting_equal(enum qp_setting_id id, const struct qp_pool_settings *a,
                     const struct qp_pool_settings *b) {
  const struct qp_setting *e = &qp_settings[id];
  switch (e->type) {
  case QP_ST_COUNT:
  case QP_ST_CC:
    return *(const int32_t *)CVAL(a, e) == *(const int32_t *)CVAL(b, e);
  case QP_ST_DURATION:
  case QP_ST_SIZE:
    return *(const uint64_t *)CVAL(a, e) == *(const uint64_t *)CVAL(b, e);
  case QP_ST_TLS_MODE:
    return *CVAL(a, e) == *CVAL(b, e);
  case QP_ST_HOSTNAME:
    return strcmp(CVAL(a, e), CVAL(b, e)) == 0;
  }
  return 0;
}

int qp_pool_settings_check(const struct qp_pool_settings *s, char *err,
                           size_t errlen) {
  char v[300], why[256];
  for (size_t i = 0; i < QP_SET_N; i++) {
    const struct qp_setting *e = &qp_settings[i];
    struct qp_pool_settings t = *s;
    /* a value passes when it survives its own format and parse */
    qp_setting_format((enum qp_setting_id)i, s, v, sizeof(v));
    if (e->type == QP_ST_HOSTNAME && !v[0])
      continue;
    if (e->type == QP_ST_CC && !qp_cc_name(*(const int32_t *)CVAL(s, e))) {
      snprintf(err, errlen, "%s: %" PRId32 " is not a congestion controller",
               e->key, *(const int32_t *)CVAL(s, e));
      return -EINVAL;
    }
    if (qp_setting_parse((enum qp_setting_id)i, v, &t, why, sizeof(why)) < 0 ||
        !qp_setting_equal((enum qp_setting_id)i, s, &t)) {
      snprintf(err, errlen, "%s: %s", e->key, why[0] ? why : "out of range");
      return -EINVAL;
    }
  }
  return 0;
}

void qp_pool_settings_to_pb(const struct qp_pool_settings *s, void *msg,
                            struct qp_settings_pb_scratch *scratch) {
  char *m = msg;
  for (size_t i = 0; i < QP_SET_N; i++) {
    const struct qp_setting *e = &qp_settings[i];
    switch (e->type) {
    case QP_ST_COUNT:
      *(int32_t *)(m + e->pb_off) = *(const int32_t *)CVAL(s, e);
      break;
    case QP_ST_DURATION:
    case QP_ST_SIZE:
      *(uint64_t *)(m + e->pb_off) = *(const uint64_t *)CVAL(s, e);
      break;
    case QP_ST_CC:
      *(const char **)(m + e->pb_off) =
          qp_cc_name(*(const int32_t *)CVAL(s, e));
      break;
    case QP_ST_TLS_MODE:
      scratch->tls_mode[0] = *CVAL(s, e);
      scratch->tls_mode[1] = '\0';
      *(char **)(m + e->pb_off) = scratch->tls_mode;
      break;
    case QP_ST_HOSTNAME:
      *(const char **)(m + e->pb_off) = *CVAL(s, e) ? CVAL(s, e) : NULL;
      break;
    }
  }
}

int qp_pool_settings_from_pb(const void *msg, struct qp_pool_settings *s,
                             char *err, size_t errlen) {
  const char *m = msg;
  char why[256], q[QP_QUOTE_MAX];
  qp_pool_settings_defaults(s);
  for (size_t i = 0; i < QP_SET_N; i++) {
    const struct qp_setting *e = &qp_settings[i];
    const char *str;
    switch (e->type) {
    case QP_ST_COUNT:
      *(int32_t *)VAL(s, e) = *(const int32_t *)(m + e->pb_off);
      break;
    case QP_ST_DURATION:
    case QP_ST_SIZE:
      *(uint64_t *)VAL(s, e) = *(const uint64_t *)(m + e->pb_off);
      break;
    case QP_ST_CC:
    case QP_ST_TLS_MODE:
    case QP_ST_HOSTNAME:
      str = *(const char *const *)(m + e->pb_off);
      if (!str && e->type == QP_ST_HOSTNAME)
        break;
      if (!str || qp_setting_parse((enum qp_setting_id)i, str, s, why,
                                   sizeof(why)) < 0) {
        snprintf(err, errlen, "the settings hold a bad %s %s", e->key,
                 qp_quote(q, sizeof(q), str ? str : "", 1));
        return -EINVAL;
      }
      break;
    }
  }
  if (qp_pool_settings_check(s, why, sizeof(why)) < 0) {
    snprintf(err, errlen, "the settings are out of range: %s", why);
    return -EINVAL;
  }
  return 0;
}

/* The rule for two bounds of a client pool (caps or intervals): an unset
 * one follows the set one when they cross; both set and crossing is an
 * error blamed on lo. */
static int bounds(struct qp_pool_settings *s, enum qp_setting_id lo,
                  enum qp_setting_id hi, const unsigned char *given,
                  const char *(*name)(int, void *), void *arg,
                  enum qp_setting_id *bad, char *why, size_t whylen) {
  const struct qp_setting *el = &qp_settings[lo], *eh = &qp_settings[hi];
  int is_count = el->type == QP_ST_COUNT;
  uint64_t a =
      is_count ? (uint64_t) * (int32_t *)VAL(s, el) : *(uint64_t *)VAL(s, el);
  uint64_t b =
      is_count ? (uint64_t) * (int32_t *)VAL(s, eh) : *(uint64_t *)VAL(s, eh);
  if (a <= b)
    return 0;
  if (given[lo] && given[hi]) {
    char va[32], vb[32];
    qp_setting_format(lo, s, va, sizeof(va));
    qp_setting_format(hi, s, vb, sizeof(vb));
    *bad = lo;
    snprintf(why, whylen, "%s is %s than %s %s", va,
             is_count ? "greater" : "longer", name(hi, arg), vb);
    return -EINVAL;
  }
  if (given[lo])
    memcpy(VAL(s, eh), VAL(s, el), is_count ? sizeof(int32_t) : 8);
  else
    memcpy(VAL(s, el), VAL(s, eh), is_count ? sizeof(int32_t) : 8);
  return 0;
}

int qp_pool_settings_reconcile(struct qp_pool_settings *s, unsigned scope,
                               const unsigned char given[QP_SET_N],
                               const char *(*name)(int id, void *arg),
                               void *arg, enum qp_setting_id *bad, char *why,
                               size_t whylen) {
  char a[32], b[32];
  if (s->tls_mode == '2' && !s->hostname[0] && (scope & QP_SCOPE_CLIENT)) {
    *bad = QP_SET_TLS_MODE;
    snprintf(why, whylen,
             "2 needs %s (the name the server certificate is checked "
             "against)",
             name(QP_SET_HOSTNAME, arg));
    return -EINVAL;
  }
  /* PINGs are what keep a quiet connection alive: the idle timeout must
   * leave room for one */
  if (s->idle_timeout_ns && s->keep_alive_ns &&
      s->idle_timeout_ns <= s->keep_alive_ns) {
    qp_setting_format(QP_SET_IDLE_TIMEOUT, s, a, sizeof(a));
    qp_setting_format(QP_SET_KEEP_ALIVE, s, b, sizeof(b));
    *bad = QP_SET_IDLE_TIMEOUT;
    snprintf(why, whylen, "%s must be longer than %s %s (or %s 0 for no PINGs)",
             a, name(QP_SET_KEEP_ALIVE, arg), b, name(QP_SET_KEEP_ALIVE, arg));
    return -EINVAL;
  }
  if (!(scope & QP_SCOPE_CLIENT))
    return 0;
  if (bounds(s, QP_SET_MIN_CAP, QP_SET_MAX_CAP, given, name, arg, bad, why,
             whylen) < 0)
    return -EINVAL;
  return bounds(s, QP_SET_MIN_INTERVAL, QP_SET_MAX_INTERVAL, given, name, arg,
                bad, why, whylen);
}

uint64_t qp_pool_idle_timeout_ns(const struct qp_pool_settings *s) {
  return s->idle_timeout_ns ? s->idle_timeout_ns
                            : qp_idle_timeout_ns(s->keep_alive_ns);
}

void qp_usage_wrap(FILE *f, const char *lead, const char *text) {
  enum { COL = 23, WIDTH = 78 };
  int col = fprintf(f, "%s", lead);
  if (col < COL - 1)
    col += fprintf(f, "%*s", COL - 1 - col, "");
  else
    col += fprintf(f, " "); /* a long lead: two spaces before the text */
  const char *p = text;
  while (*p) {
    size_t w = strcspn(p, " ");
    if (col + 1 + (int)w > WIDTH && col > COL) {
      fprintf(f, "\n%*s", COL - 1, "");
      col = COL - 1;
    }
    col += fprintf(f, " ");
    for (size_t i = 0; i < w; i++) /* \x01: a space that does not break */
      fputc(p[i] == '\x01' ? ' ' : p[i], f), col++;
    p += w;
    while (*p == ' ')
      p++;
  }
  fputc('\n', f);
}

void qp_setting_usage(FILE *f, enum qp_setting_id id,
                      const struct qp_pool_settings *def_override) {
  const struct qp_setting *e = &qp_settings[id];
  char lead[64], text[512], def[64], lo[32], hi[32];
  struct qp_pool_settings d, t;
  qp_pool_settings_defaults(&t);
  d = def_override ? *def_override : t;
  snprintf(lead, sizeof(lead), "  %s %s", e->flag, e->metavar);
  if (e->def_text && qp_setting_equal(id, &d, &t))
    snprintf(def, sizeof(def), "%s", e->def_text);
  else
    qp_setting_format(id, &d, def, sizeof(def));
  size_t n = (size_t)snprintf(text, sizeof(text), "%s", e->help);
  if (e->type == QP_ST_SIZE && n < sizeof(text)) {
    qp_size_format(e->min, lo, sizeof(lo));
    qp_size_format(e->max, hi, sizeof(hi));
    n += (size_t)snprintf(text + n, sizeof(text) - n, ", %s to %s", lo, hi);
  }
  /* "(default 1)" is never split (\x01: a space that does not break); a
   * longer def_text is wrapped like any text */
  if (def[0] && n < sizeof(text))
    snprintf(text + n, sizeof(text) - n, " (default%c%s)",
             strchr(def, ' ') ? ' ' : '\x01', def);
  qp_usage_wrap(f, lead, text);
  if (e->type == QP_ST_CC)
    for (size_t i = 0; i < qp_cc_count; i++)
      fprintf(f, "%25s%-6s %s\n", "", qp_cc_table[i].name, qp_cc_table[i].what);
}
