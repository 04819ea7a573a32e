/* qpoold's configuration from flags (getopt_long) or an INI file (libinih).
 *
 * Everything is built in a scratch context and copied to the caller's struct
 * only when every check passed. Values are checked where they are read (so a
 * message can name the flag, or file:line and the key); what depends on
 * several values (mode, required keys, cert+key, min <= max, worker index,
 * duplicate listeners) is checked once at the end by finish(), in the same
 * words for both sources. Host names are never resolved here: qpoold
 * resolves a client's target at every dial (supervisor/dial.c).
 *
 * libinih does the INI syntax. It is driven through ini_parse_stream with our
 * own line reader, which gives us what the library's handler does not: the
 * line number of every key, section headers that have no keys, section names
 * longer than its 50-byte buffer, and a clean error for over-long lines
 * instead of a silent split. */
#include "supervisor/config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <fcntl.h>
#include <getopt.h>
#include <ini.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "shared/addr.h"
#include "shared/duration.h"
#include "shared/log.h"
#include "shared/settings.h"
#include "shared/size.h"

#ifndef QP_VERSION
#define QP_VERSION "unknown"
#endif

/* ---- keys ---------------------------------------------------------------- */

/* Pool keys 0..QP_SET_N-1 are the pool settings of shared/settings.h (by
 * their qp_setting_id); these are qpoold's own keys. */
enum key {
  /* pool keys */
  K_MODE = QP_SET_N,
  K_LISTEN,
  K_TARGET,
  K_CA,
  K_CERT,
  K_KEY,
  K_CLIENT_IP,
  K_ALLOW_USERS,
  K_ALLOW_GROUPS,
  K_WORKER,
  K_POOL_END,
  /* [global] keys */
  K_WORKERS = K_POOL_END,
  K_CONTROL,
  K_USER,
  K_CHROOT,
  K_LOG_LEVEL,
  K_METRICS_LISTEN,
  K_COUNT
};

#define S_SERVER QP_SCOPE_SERVER
#define S_CLIENT QP_SCOPE_CLIENT
#define S_GLOBAL 4u

/* qpoold's own keys, described as the settings are (ini, flag, metavar,
 * scope, help; the help of K_WORKER and K_MODE is in the file part of
 * --help). */
static const struct keydef {
  const char *ini;  /* key in the file */
  const char *flag; /* "--flag"; NULL: file only */
  const char *metavar;
  unsigned scope;
  const char *help;
} own_keys[K_COUNT - QP_SET_N] = {
#define OWN(k) [(k)-QP_SET_N]
    OWN(K_MODE) = {"mode", NULL, NULL, S_SERVER | S_CLIENT, NULL},
    OWN(K_LISTEN) = {"listen", "--listen", "ADDR", S_SERVER,
                     "UDP address to listen on, numeric (required); one "
                     "server per address: if it (or an overlapping one) is "
                     "in use, the start fails naming the holder"},
    OWN(K_TARGET) = {"target", "--target", "ADDR", S_CLIENT,
                     "server address (required); a host name is resolved at "
                     "each connection attempt"},
    OWN(K_CA) = {"ca", "--ca", "FILE", S_CLIENT,
                 "PEM CA bundle for --tls-mode 2 (default: the system "
                 "bundle: $SSL_CERT_FILE, else "
                 "/etc/ssl/certs/ca-certificates.crt)"},
    OWN(K_CERT) = {"cert", "--cert", "FILE", S_SERVER,
                   "PEM certificate chain, with --key (default: a "
                   "self-signed one made at start); read and matched at "
                   "start and by --check: a bad file is an error"},
    OWN(K_KEY) = {"key", "--key", "FILE", S_SERVER,
                  "PEM private key of --cert (give both or neither)"},
    OWN(K_CLIENT_IP) = {"client_ip", "--client-ip", "IP|CIDR", S_SERVER,
                        "allow only these peers; repeatable, and each may be "
                        "a comma list (default: everyone)"},
    OWN(K_ALLOW_USERS) = {"allow_users", "--allow-users", "LIST",
                          S_SERVER | S_CLIENT,
                          "users (names or uids) that may take streams or "
                          "change the pool over the control socket (default: "
                          "root and qpoold's own user only)"},
    OWN(K_ALLOW_GROUPS) = {"allow_groups", "--allow-groups", "LIST",
                           S_SERVER | S_CLIENT,
                           "... and members of these groups"},
    OWN(K_WORKER) = {"worker", NULL, NULL, S_SERVER | S_CLIENT, NULL},
    OWN(K_WORKERS) = {"workers", "--workers", "N", S_GLOBAL,
                      "worker processes; 0: one per pool, for tenant "
                      "isolation (default 0)"},
    OWN(K_CONTROL) = {"control", "--control", "PATH", S_GLOBAL,
                      "control socket (default " SUP_DEFAULT_CONTROL ")"},
    OWN(K_USER) = {"user", "--user", "NAME", S_GLOBAL,
                   "user the workers run as when started as root "
                   "(default " SUP_DEFAULT_USER ")"},
    OWN(K_CHROOT) = {"chroot", "--chroot", "DIR", S_GLOBAL,
                     "empty directory the workers are locked in "
                     "(default " SUP_DEFAULT_CHROOT ")"},
    OWN(K_LOG_LEVEL) = {"log_level", "--log-level", "LEVEL", S_GLOBAL,
                        "error, warn, info or debug (default info)"},
    OWN(K_METRICS_LISTEN) = {"metrics_listen", "--metrics-listen", "ADDR",
                             S_GLOBAL,
                             "serve Prometheus metrics over HTTP on this TCP "
                             "address, e.g. 127.0.0.1:9464 (GET /metrics; "
                             "default off; keep it on loopback)"},
#undef OWN
};

/* Every key as one description: a pool setting's, or one of own_keys. */
static struct keydef key_def(enum key k) {
  if ((unsigned)k < QP_SET_N) {
    const struct qp_setting *e = &qp_settings[k];
    return (struct keydef){e->key, e->flag, e->metavar, e->scope, e->help};
  }
  return own_keys[k - QP_SET_N];
}
#define KD(k) key_def((enum key)(k))

/* getopt_long values: keys are OPT_KEY + key, then the flag-only options. */
enum {
  OPT_KEY = 256,
  OPT_NAME = OPT_KEY + K_COUNT,
  OPT_FOREGROUND,
  OPT_CONFIG,
  OPT_LIFELINE,
  OPT_CHECK,
};

/* getopt_long's table: the flag-only options, then every key's flag. */
static const struct option fixed_opts[] = {
    {"name", required_argument, NULL, OPT_NAME},
    {"foreground", no_argument, NULL, OPT_FOREGROUND},
    {"config", required_argument, NULL, OPT_CONFIG},
    {"lifeline", required_argument, NULL, OPT_LIFELINE},
    {"check", no_argument, NULL, OPT_CHECK},
};
#define N_FIXED (sizeof(fixed_opts) / sizeof(fixed_opts[0]))
static struct option longopts[N_FIXED + K_COUNT + 1];

static void longopts_init(void) {
  size_t n = 0;
  for (; n < N_FIXED; n++)
    longopts[n] = fixed_opts[n];
  for (int k = 0; k < K_COUNT; k++) {
    struct keydef d = key_def((enum key)k);
    if (d.flag)
      longopts[n++] =
          (struct option){d.flag + 2, required_argument, NULL, OPT_KEY + k};
  }
  longopts[n] = (struct option){NULL, 0, NULL, 0};
}

/* ---- parse context ------------------------------------------------------- */

#define SECT_TEXT_MAX 128

struct pool_meta {
  int hdr_line;         /* line of [pool NAME]; 0 for flags */
  int line[K_POOL_END]; /* where each key was set; 0 = unset */
};

/* What becomes the caller's sup_config on success: the same fields, but the
 * pools grow as they come (a sup_config is 5 MB, mostly unused). */
struct scratch {
  struct sup_pool_cfg *pools;
  size_t npools, cap;
  int workers;
  char control[sizeof(((struct sup_config *)0)->control)];
  char metrics_text[sizeof(((struct sup_config *)0)->metrics_text)];
  struct sockaddr_storage metrics_addr;
  socklen_t metrics_len;
  char user[sizeof(((struct sup_config *)0)->user)];
  char chroot[sizeof(((struct sup_config *)0)->chroot)];
  char config_file[sizeof(((struct sup_config *)0)->config_file)];
  int foreground, log_level, lifeline, check;
};

/* The global defaults, for a sup_config or a scratch. */
#define SET_DEFAULTS(c)                                                        \
  do {                                                                         \
    (c)->npools = 0;                                                           \
    (c)->workers = 0;                                                          \
    snprintf((c)->control, sizeof((c)->control), "%s", SUP_DEFAULT_CONTROL);   \
    snprintf((c)->user, sizeof((c)->user), "%s", SUP_DEFAULT_USER);            \
    snprintf((c)->chroot, sizeof((c)->chroot), "%s", SUP_DEFAULT_CHROOT);      \
    (c)->config_file[0] = '\0';                                                \
    (c)->metrics_text[0] = '\0';                                               \
    (c)->metrics_len = 0;                                                      \
    (c)->foreground = 0;                                                       \
    (c)->lifeline = -1;                                                        \
    (c)->check = 0;                                                            \
    (c)->log_level = QP_LOG_INFO;                                              \
  } while (0)

struct ctx {
  struct scratch *c; /* goes to the caller on success */
  struct pool_meta meta[SUP_POOLS_MAX];
  int gfile[K_COUNT]; /* [global] key: line in the file, 0 = unset */
  int gflag[K_COUNT]; /* [global] key given as a flag (it wins) */
  int global_line;    /* line of [global], 0 = none */
  int flags;          /* 1: messages name flags, without file:line */
  const char *fname;
  char *err;
  size_t errlen;
  int failed;

  /* line reader state */
  const char *pos;
  int lineno;
  int sect_seq;  /* section headers seen */
  int sect_line; /* line of the latest one */
  char sect_text[SECT_TEXT_MAX];
  int sect_toolong;
  char line_text[80]; /* the start of the latest line, for messages */
  int begun_seq;      /* the section header we have acted on */
  int in_global;
  struct sup_pool_cfg *cur; /* the [pool NAME] being read, or NULL */
  struct pool_meta *cur_meta;
};

/* Records the first error: "[file:line: ][what: ]message". */
static int fail(struct ctx *x, int line, const char *what, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int fail(struct ctx *x, int line, const char *what, const char *fmt,
                ...) {
  if (x->failed)
    return -EINVAL;
  x->failed = 1;
  if (!x->err || x->errlen == 0)
    return -EINVAL;
  size_t n = 0;
  int w = 0;
  if (!x->flags && line > 0)
    w = snprintf(x->err, x->errlen, "%s:%d: ", x->fname, line);
  else if (!x->flags)
    w = snprintf(x->err, x->errlen, "%s: ", x->fname);
  if (w > 0)
    n = (size_t)w < x->errlen ? (size_t)w : x->errlen - 1;
  if (what && n < x->errlen) {
    w = snprintf(x->err + n, x->errlen - n, "%s: ", what);
    if (w > 0)
      n += (size_t)w < x->errlen - n ? (size_t)w : x->errlen - n - 1;
  }
  if (n < x->errlen) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(x->err + n, x->errlen - n, fmt, ap);
    va_end(ap);
  }
  return -EINVAL;
}

/* The name of key k as the user wrote it: "--max-cap" or "max_cap". */
static const char *kname(const struct ctx *x, int k) {
  return x->flags && KD(k).flag ? KD(k).flag : KD(k).ini;
}

#define QBUF QP_QUOTE_MAX

static const char *q(char buf[QBUF], const char *s) {
  return qp_quote(buf, QBUF, s, 1);
}

/* ---- value parsers (shared by flags and file) ---------------------------- */

/* A decimal integer in [min, max]: the settings' parser. */
static int parse_int(struct ctx *x, int line, enum key k, const char *v,
                     int min, int max, int *out) {
  char why[256];
  int64_t n;
  if (qp_parse_count(v, min, max, &n, why, sizeof(why)) < 0)
    return fail(x, line, kname(x, k), "%s", why);
  *out = (int)n;
  return 0;
}

/* Why qp_addr_split refused v, in the user's terms. */
static int addr_syntax_error(struct ctx *x, int line, enum key k,
                             const char *v) {
  char b[QBUF];
  const char *name = kname(x, k);
  const char *port;
  if (v[0] == '[') {
    const char *close = strchr(v, ']');
    if (!close || close == v + 1)
      goto generic;
    if (close[1] == '\0')
      return fail(x, line, name, "%s needs a port ([v6]:port)", q(b, v));
    if (close[1] != ':')
      goto generic;
    port = close + 2;
  } else {
    const char *colon = strchr(v, ':');
    if (!colon)
      return fail(x, line, name, "%s needs a port (host:port)", q(b, v));
    if (strchr(colon + 1, ':'))
      return fail(x, line, name,
                  "%s: an IPv6 address needs brackets ([v6]:port)", q(b, v));
    port = colon + 1;
  }
  if (*port == '\0')
    return fail(x, line, name, "%s needs a port (host:port)", q(b, v));
  if (qp_is_digits(port))
    return fail(x, line, name, "%s has a bad port (1-65535)", q(b, v));
generic:
  return fail(x, line, name, "%s is not an address (host:port or [v6]:port)",
              q(b, v));
}

/* listen (numeric) or target (numeric, stored parsed; or a host name, kept
 * as written: qpoold resolves it on every dial, never here). */
static unsigned addr_port(const struct sockaddr_storage *ss) {
  if (ss->ss_family == AF_INET)
    return ntohs(((const struct sockaddr_in *)ss)->sin_port);
  if (ss->ss_family == AF_INET6)
    return ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
  return 0;
}

static int parse_addr(struct ctx *x, int line, enum key k, const char *v,
                      struct sup_pool_cfg *p) {
  char b[QBUF], host[256];
  unsigned port;
  if (strlen(v) >= sizeof(p->addr_text))
    return fail(x, line, kname(x, k), "%s is too long (max %zu bytes)", q(b, v),
                sizeof(p->addr_text) - 1);
  if (qp_addr_split(v, host, sizeof(host), &port, 0) < 0)
    return addr_syntax_error(x, line, k, v);
  struct sockaddr_storage ss;
  socklen_t len = 0;
  int numeric = qp_addr_parse_numeric(v, &ss, &len) == 0;
  if (k == K_LISTEN) {
    if (!numeric)
      return fail(x, line, kname(x, k),
                  "%s must be a numeric address (IPv4:port, [IPv6]:port or "
                  ":port for every IPv4 address)",
                  q(b, v));
    p->addr = ss;
    p->addr_len = len;
  } else {
    if (host[0] == '\0')
      return fail(x, line, kname(x, k), "%s needs a host (host:port)", q(b, v));
    if (!numeric && v[0] == '[')
      return fail(x, line, kname(x, k),
                  "%s: brackets hold an IPv6 address only", q(b, v));
    if (!numeric && !qp_host_chars_ok(host, 0))
      return fail(x, line, kname(x, k),
                  "%s is not an address (host:port or [v6]:port)", q(b, v));
    memset(&p->addr, 0, sizeof(p->addr));
    p->addr_len = 0;
    if (numeric) {
      p->addr = ss;
      p->addr_len = len;
    }
  }
  strcpy(p->addr_text, v);
  return 0;
}

static int parse_path(struct ctx *x, int line, enum key k, const char *v,
                      char *out, size_t outlen) {
  char b[QBUF];
  if (!*v)
    return fail(x, line, kname(x, k), "must not be empty");
  if (strlen(v) >= outlen)
    return fail(x, line, kname(x, k), "%s is too long (max %zu bytes)", q(b, v),
                outlen - 1);
  strcpy(out, v);
  return 0;
}

static int valid_name(const char *s, size_t max) {
  size_t n = 0;
  for (; s[n]; n++) {
    char ch = s[n];
    if (n >= max ||
        !((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
          (ch >= '0' && ch <= '9') || ch == '_' || ch == '.' || ch == '-'))
      return 0;
  }
  return n > 0;
}

/* "10.0.0.1/8" -> "10.0.0.0/8" when the spec is an address with a valid
 * prefix whose host bits are set; 0 if it is not that case. */
static int masked_suggestion(const char *spec, char *out, size_t outlen) {
  char a[INET6_ADDRSTRLEN + 1];
  const char *slash = strchr(spec, '/');
  if (!slash || (size_t)(slash - spec) >= sizeof(a) ||
      !qp_is_digits(slash + 1) || strlen(slash + 1) > 3)
    return 0;
  memcpy(a, spec, (size_t)(slash - spec));
  a[slash - spec] = '\0';
  uint8_t bytes[16];
  int fam = strchr(a, ':') ? AF_INET6 : AF_INET;
  unsigned bits = fam == AF_INET6 ? 128 : 32;
  unsigned prefix = (unsigned)atoi(slash + 1);
  if (inet_pton(fam, a, bytes) != 1 || prefix > bits)
    return 0;
  for (unsigned i = 0; i < bits / 8; i++) {
    unsigned first = i * 8;
    if (prefix >= first + 8)
      continue;
    bytes[i] &= prefix <= first ? 0 : (uint8_t)(0xff << (8 - (prefix - first)));
  }
  if (!inet_ntop(fam, bytes, a, sizeof(a)))
    return 0;
  snprintf(out, outlen, "%s/%u", a, prefix);
  return strcmp(out, spec) != 0;
}

/* A comma list of addresses and CIDR prefixes, added to f item by item so
 * that a bad item can be named. */
/* One item of a comma-separated list, blanks trimmed: its start in *a and
 * length in *len. Returns where the next item starts, or NULL after the
 * last one. */
static const char *list_item(const char *p, const char **a, size_t *len) {
  const char *end = strchr(p, ',');
  const char *e = end ? end : p + strlen(p);
  while (p < e && (*p == ' ' || *p == '\t'))
    p++;
  while (e > p && (e[-1] == ' ' || e[-1] == '\t'))
    e--;
  *a = p;
  *len = (size_t)(e - p);
  return end ? end + 1 : NULL;
}

/* "alice, 1000" -> uids (users=1) or "tunnel, 1001" -> gids (users=0). */
static int parse_ids(struct ctx *x, int line, enum key k, const char *v,
                     int users, uint32_t *ids, size_t *n) {
  char b[QBUF], item[64];
  const char *name = kname(x, k);
  size_t count = 0;
  for (const char *p = v; p;) {
    const char *a;
    size_t len;
    p = list_item(p, &a, &len);
    if (len == 0 || len >= sizeof(item))
      return fail(x, line, name, "%s has an empty or overlong item", q(b, v));
    memcpy(item, a, len);
    item[len] = '\0';
    if (count == SUP_ACL_MAX)
      return fail(x, line, name, "more than %d entries", SUP_ACL_MAX);
    char *num_end;
    unsigned long id = strtoul(item, &num_end, 10);
    if (*num_end == '\0' && item[0] >= '0' && item[0] <= '9' &&
        id <= 0xfffffffeUL) {
      ids[count++] = (uint32_t)id;
    } else if (users) {
      struct passwd *pw = getpwnam(item);
      if (!pw)
        return fail(x, line, name, "no user named %s", q(b, item));
      ids[count++] = (uint32_t)pw->pw_uid;
    } else {
      struct group *gr = getgrnam(item);
      if (!gr)
        return fail(x, line, name, "no group named %s", q(b, item));
      ids[count++] = (uint32_t)gr->gr_gid;
    }
  }
  *n = count;
  return 0;
}

static int parse_client_ip(struct ctx *x, int line, const char *v,
                           struct qp_ipfilter *f) {
  char b[QBUF], item[128], hint[128];
  const char *name = kname(x, K_CLIENT_IP);
  const char *p = v;
  while (*p == ' ' || *p == '\t')
    p++;
  if (!*p)
    return fail(x, line, name,
                "must not be empty (leave it out to allow "
                "every address)");
  while (p) {
    const char *a;
    size_t n;
    p = list_item(p, &a, &n);
    if (n == 0)
      return fail(x, line, name, "%s has an empty item", q(b, v));
    if (n >= sizeof(item)) {
      memcpy(item, a, sizeof(item) - 1);
      item[sizeof(item) - 1] = '\0';
      return fail(x, line, name, "%s is not an IP address or CIDR prefix",
                  q(b, item));
    }
    memcpy(item, a, n);
    item[n] = '\0';
    int rc = qp_ipfilter_add(f, item);
    if (rc == -ENOSPC)
      return fail(x, line, name, "too many addresses (max %d per pool)",
                  QP_IPFILTER_MAX);
    if (rc < 0 && masked_suggestion(item, hint, sizeof(hint)))
      return fail(x, line, name, "%s has host bits set (did you mean %s?)",
                  q(b, item), hint);
    if (rc < 0)
      return fail(x, line, name, "%s is not an IP address or CIDR prefix",
                  q(b, item));
  }
  return 0;
}

static void pool_defaults(struct sup_pool_cfg *p) {
  memset(p, 0, sizeof(*p));
  qp_pool_settings_defaults(&p->set);
  qp_ipfilter_init(&p->client_ip);
  p->worker = -1;
}

/* A pool key: value checks only; what depends on the mode or on other keys
 * waits for finish(). line is 0 for flags. */
static int set_pool_key(struct ctx *x, struct sup_pool_cfg *p,
                        struct pool_meta *m, enum key k, const char *v,
                        int line) {
  const char *name = kname(x, k);
  if (m->line[k] && k != K_CLIENT_IP) {
    if (x->flags)
      return fail(x, line, name, "given twice");
    return fail(x, line, name, "set twice in [pool %s] (first on line %d)",
                p->name, m->line[k]);
  }
  int rc = 0;
  if ((unsigned)k < QP_SET_N) { /* a setting: the table parses it */
    char why[256];
    if (qp_setting_parse((enum qp_setting_id)k, v, &p->set, why, sizeof(why)) <
        0)
      return fail(x, line, name, "%s", why);
    if (!m->line[k])
      m->line[k] = line > 0 ? line : 1;
    return 0;
  }
  switch (k) {
  case K_MODE:
    if (strcmp(v, "server") == 0)
      p->server = 1;
    else if (strcmp(v, "client") == 0)
      p->server = 0;
    else
      rc = fail(x, line, name, "must be server or client");
    break;
  case K_LISTEN:
  case K_TARGET:
    rc = parse_addr(x, line, k, v, p);
    break;
  case K_CA:
    rc = parse_path(x, line, k, v, p->ca_file, sizeof(p->ca_file));
    break;
  case K_CERT:
    rc = parse_path(x, line, k, v, p->cert_file, sizeof(p->cert_file));
    break;
  case K_KEY:
    rc = parse_path(x, line, k, v, p->key_file, sizeof(p->key_file));
    break;
  case K_CLIENT_IP:
    rc = parse_client_ip(x, line, v, &p->client_ip);
    break;
  case K_ALLOW_USERS:
    rc = parse_ids(x, line, k, v, 1, p->allow_uid, &p->n_allow_uid);
    break;
  case K_ALLOW_GROUPS:
    rc = parse_ids(x, line, k, v, 0, p->allow_gid, &p->n_allow_gid);
    break;
  case K_WORKER:
    if (strcmp(v, "auto") == 0)
      p->worker = -1;
    else
      rc = parse_int(x, line, k, v, 0, SUP_WORKERS_MAX - 1, &p->worker);
    break;
  default:
    rc = fail(x, line, name, "not a pool key");
    break;
  }
  if (rc < 0)
    return rc;
  if (!m->line[k])
    m->line[k] = line > 0 ? line : 1;
  return 0;
}

/* A [global] key or global flag. A key in the file that a flag already set
 * is checked but does not apply. */
static int set_global(struct ctx *x, enum key k, const char *v, int line) {
  char b[QBUF];
  const char *name = kname(x, k);
  struct scratch *c = x->c;
  if (x->flags && x->gflag[k])
    return fail(x, line, name, "given twice");
  if (!x->flags && x->gfile[k])
    return fail(x, line, name, "set twice in [global] (first on line %d)",
                x->gfile[k]);
  int apply = x->flags || !x->gflag[k];
  int rc = 0, n = 0;
  switch (k) {
  case K_WORKERS:
    rc = parse_int(x, line, k, v, 0, SUP_WORKERS_MAX, &n);
    if (rc == 0 && apply)
      c->workers = n;
    break;
  case K_CONTROL: {
    struct sockaddr_un sun;
    if (!*v)
      rc = fail(x, line, name, "must not be empty");
    else if (strlen(v) >= sizeof(sun.sun_path))
      rc = fail(x, line, name,
                "%s is too long for a Unix socket path (max %zu bytes)",
                q(b, v), sizeof(sun.sun_path) - 1);
    else if (apply)
      strcpy(c->control, v);
    break;
  }
  case K_METRICS_LISTEN: {
    struct sockaddr_storage ss;
    socklen_t len = 0;
    if (!*v || !strcmp(v, "off")) { /* the default: no HTTP endpoint */
      if (apply) {
        c->metrics_text[0] = '\0';
        c->metrics_len = 0;
      }
    } else if (strlen(v) >= sizeof(c->metrics_text) ||
               qp_addr_parse_numeric(v, &ss, &len) < 0 || addr_port(&ss) == 0)
      rc = fail(x, line, name,
                "%s is not a numeric address with a port (e.g. "
                "127.0.0.1:9464 or [::1]:9464; \"off\" to disable)",
                q(b, v));
    else if (apply) {
      strcpy(c->metrics_text, v);
      c->metrics_addr = ss;
      c->metrics_len = len;
    }
    break;
  }
  case K_USER:
    if (!valid_name(v, 32) || v[0] == '-')
      rc = fail(x, line, name, "%s is not a valid user name", q(b, v));
    else if (apply)
      strcpy(c->user, v);
    break;
  case K_CHROOT:
    if (v[0] != '/')
      rc = fail(x, line, name, "%s must be an absolute path", q(b, v));
    else if (v[strspn(v, "/")] == '\0')
      rc = fail(x, line, name,
                "%s is no sandbox (the worker would see every file)", q(b, v));
    else if (strlen(v) >= sizeof(c->chroot))
      rc = fail(x, line, name, "%s is too long (max %zu bytes)", q(b, v),
                sizeof(c->chroot) - 1);
    else if (apply)
      strcpy(c->chroot, v);
    break;
  case K_LOG_LEVEL: {
    static const char *const levels[] = {"error", "warn", "info", "debug"};
    int found = -1;
    for (int i = 0; i < 4; i++)
      if (strcmp(v, levels[i]) == 0)
        found = i;
    if (found < 0)
      rc = fail(x, line, name, "must be error, warn, info or debug");
    else if (apply)
      c->log_level = found;
    break;
  }
  default:
    rc = fail(x, line, name, "not a [global] key");
    break;
  }
  if (rc < 0)
    return rc;
  if (x->flags)
    x->gflag[k] = 1;
  else
    x->gfile[k] = line > 0 ? line : 1;
  return 0;
}

/* ---- final checks (shared) ----------------------------------------------- */

/* kname for qp_pool_settings_reconcile's messages */
static const char *key_name(int k, void *x) {
  return kname(x, k);
}

static int finish_pool(struct ctx *x, struct sup_pool_cfg *p,
                       struct pool_meta *m) {
  char sect[SUP_NAME_MAX + 8], qb[QBUF];
  unsigned mode = p->server ? S_SERVER : S_CLIENT;
  const char *mname = p->server ? "server" : "client";
  snprintf(sect, sizeof(sect), "[pool %s]", p->name);

  if (!x->flags && !m->line[K_MODE])
    return fail(x, m->hdr_line, sect,
                "mode is required (mode = server or mode = client)");
  for (int k = 0; k < K_POOL_END; k++)
    if (m->line[k] && !(KD(k).scope & mode))
      return fail(x, m->line[k], kname(x, (enum key)k),
                  "only for %s pools (this pool has mode = %s)",
                  p->server ? "client" : "server", mname);

  enum key ak = p->server ? K_LISTEN : K_TARGET;
  if (!m->line[ak]) {
    if (x->flags)
      return fail(x, 0, NULL, "%s is required for qpoold %s", KD(ak).flag,
                  mname);
    return fail(x, m->hdr_line, sect, "%s is required for a %s pool",
                KD(ak).ini, mname);
  }
  if (m->line[K_CERT] && !m->line[K_KEY])
    return fail(x, m->line[K_CERT], kname(x, K_CERT), "%s needs %s too",
                q(qb, p->cert_file), kname(x, K_KEY));
  if (m->line[K_KEY] && !m->line[K_CERT])
    return fail(x, m->line[K_KEY], kname(x, K_KEY), "%s needs %s too",
                q(qb, p->key_file), kname(x, K_CERT));
  if (m->line[K_CA] && p->set.tls_mode != '2')
    return fail(x, m->line[K_CA], kname(x, K_CA), "only used with %s%s2",
                kname(x, QP_SET_TLS_MODE), x->flags ? " " : " = ");
  /* the rules that span settings (shared/settings.c): caps and intervals
   * follow each other or cross, idle timeout vs keep-alive, tls mode 2 */
  unsigned char given[QP_SET_N];
  for (int k = 0; k < QP_SET_N; k++)
    given[k] = m->line[k] != 0;
  enum qp_setting_id bad;
  char why[256];
  if (qp_pool_settings_reconcile(&p->set, mode, given, key_name, x, &bad, why,
                                 sizeof(why)) < 0)
    return fail(x, m->line[bad], kname(x, bad), "%s", why);
  if (p->worker >= 0 && x->c->workers == 0)
    return fail(x, m->line[K_WORKER], kname(x, K_WORKER),
                "needs workers = N in [global] (workers = 0 gives every pool "
                "a worker of its own)");
  if (p->worker >= x->c->workers && x->c->workers > 0)
    return fail(x, m->line[K_WORKER], kname(x, K_WORKER),
                "%d is out of range (workers = %d: 0 to %d)", p->worker,
                x->c->workers, x->c->workers - 1);
  return 0;
}

static int finish(struct ctx *x) {
  struct scratch *c = x->c;
  if (!x->flags && c->npools == 0)
    return fail(x, 0, NULL, "no pools (add a [pool NAME] section)");
  for (size_t i = 0; i < c->npools; i++)
    if (finish_pool(x, &c->pools[i], &x->meta[i]) < 0)
      return -EINVAL;
  for (size_t i = 0; i < c->npools; i++) {
    const struct sup_pool_cfg *p = &c->pools[i];
    if (!p->server)
      continue;
    for (size_t j = 0; j < i; j++) {
      const struct sup_pool_cfg *o = &c->pools[j];
      if (o->server && qp_addr_equal((const struct sockaddr *)&p->addr,
                                     (const struct sockaddr *)&o->addr)) {
        char b[QP_ADDR_STRLEN];
        qp_addr_format((const struct sockaddr *)&p->addr, b, sizeof(b));
        return fail(x, x->meta[i].line[K_LISTEN], kname(x, K_LISTEN),
                    "%s is already the address of pool %s", b, o->name);
      }
    }
  }
  return 0;
}

/* ---- INI file ------------------------------------------------------------ */

static void trim(const char **s, size_t *n) {
  while (*n && (**s == ' ' || **s == '\t')) {
    (*s)++;
    (*n)--;
  }
  while (*n && ((*s)[*n - 1] == ' ' || (*s)[*n - 1] == '\t'))
    (*n)--;
}

/* A new pool with the defaults, or NULL (out of memory). */
static struct sup_pool_cfg *add_pool(struct ctx *x, int hdr_line) {
  struct scratch *c = x->c;
  if (c->npools == c->cap) {
    size_t cap = c->cap ? c->cap * 2 : 4;
    if (cap > SUP_POOLS_MAX)
      cap = SUP_POOLS_MAX;
    struct sup_pool_cfg *np = realloc(c->pools, cap * sizeof(*np));
    if (!np) {
      fail(x, hdr_line, NULL, "out of memory");
      return NULL;
    }
    c->pools = np;
    c->cap = cap;
  }
  struct sup_pool_cfg *p = &c->pools[c->npools];
  pool_defaults(p);
  memset(&x->meta[c->npools], 0, sizeof(x->meta[0]));
  x->meta[c->npools].hdr_line = hdr_line;
  c->npools++;
  return p;
}

/* Acts on the latest section header: [global] or [pool NAME]. */
static int begin_section(struct ctx *x) {
  char b[QBUF];
  struct scratch *c = x->c;
  int line = x->sect_line;
  x->begun_seq = x->sect_seq;
  x->in_global = 0;
  x->cur = NULL;
  x->cur_meta = NULL;
  if (x->sect_toolong)
    return fail(x, line, NULL, "section name is too long");
  const char *s = x->sect_text;
  size_t n = strlen(s);
  trim(&s, &n);
  if (n == 6 && memcmp(s, "global", 6) == 0) {
    if (x->global_line)
      return fail(x, line, "[global]", "appears twice (first on line %d)",
                  x->global_line);
    x->global_line = line;
    x->in_global = 1;
    return 0;
  }
  if (n < 4 || memcmp(s, "pool", 4) != 0 ||
      (n > 4 && s[4] != ' ' && s[4] != '\t')) {
    char t[SECT_TEXT_MAX];
    memcpy(t, s, n);
    t[n] = '\0';
    qp_quote(b, sizeof(b), t, 0);
    return fail(x, line, NULL,
                "[%s]: unknown section (expected [global] or [pool NAME])", b);
  }
  const char *nm = s + 4;
  size_t nn = n - 4;
  trim(&nm, &nn);
  char name[SECT_TEXT_MAX];
  memcpy(name, nm, nn);
  name[nn] = '\0';
  if (nn == 0)
    return fail(x, line, "[pool]", "needs a name: [pool NAME]");
  if (!valid_name(name, SUP_NAME_MAX - 1))
    return fail(x, line, NULL,
                "[pool %s]: not a valid pool name (1-63 characters of A-Z "
                "a-z 0-9 _ . -)",
                qp_quote(b, sizeof(b), name, 0));
  for (size_t i = 0; i < c->npools; i++)
    if (strcmp(c->pools[i].name, name) == 0)
      return fail(x, line, NULL,
                  "[pool %s]: duplicate pool name (first on line %d)", name,
                  x->meta[i].hdr_line);
  if (c->npools >= SUP_POOLS_MAX)
    return fail(x, line, NULL, "[pool %s]: too many pools (max %d)", name,
                SUP_POOLS_MAX);
  struct sup_pool_cfg *p = add_pool(x, line);
  if (!p)
    return -ENOMEM;
  strcpy(p->name, name);
  x->cur = p;
  x->cur_meta = &x->meta[c->npools - 1];
  return 0;
}

/* fgets for ini_parse_stream over the text, one line per call (so our line
 * numbers are inih's), noting section headers as they go by. */
static char *read_line(char *str, int num, void *stream) {
  struct ctx *x = stream;
  if (x->failed || *x->pos == '\0' || num < 3)
    return NULL;
  const char *nl = strchr(x->pos, '\n');
  size_t len = nl ? (size_t)(nl - x->pos) + 1 : strlen(x->pos);
  x->lineno++;
  if (len > (size_t)num - 1) {
    fail(x, x->lineno, NULL, "line is too long (max %d bytes)", num - 2);
    return NULL;
  }
  memcpy(str, x->pos, len);
  str[len] = '\0';
  x->pos += len;
  size_t keep = strcspn(str, "\r\n");
  if (keep >= sizeof(x->line_text))
    keep = sizeof(x->line_text) - 1;
  memcpy(x->line_text, str, keep);
  x->line_text[keep] = '\0';

  const char *s = str;
  if (x->lineno == 1 && strncmp(s, "\xEF\xBB\xBF", 3) == 0)
    s += 3; /* inih skips a UTF-8 BOM */
  while (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\f' || *s == '\v')
    s++;
  if (*s == '[') {
    /* The previous section had no keys: act on it now (so an empty
     * [pool NAME] is still a pool, refused for its missing mode). */
    if (x->sect_seq != x->begun_seq && begin_section(x) < 0)
      return NULL;
    const char *close = strchr(s + 1, ']');
    if (!close) {
      fail(x, x->lineno, NULL, "section header without a closing ]");
      return NULL;
    }
    size_t n = (size_t)(close - s - 1);
    x->sect_seq++;
    x->sect_line = x->lineno;
    x->sect_toolong = n >= sizeof(x->sect_text);
    if (x->sect_toolong)
      n = 0;
    memcpy(x->sect_text, s + 1, n);
    x->sect_text[n] = '\0';
  }
  return str;
}

static int on_key(void *user, const char *section, const char *name,
                  const char *value) {
  struct ctx *x = user;
  if (x->failed)
    return 0;
  int line = x->lineno;
  char b[QBUF];
  if (x->sect_seq != x->begun_seq) {
    /* inih truncates section names to 49 bytes; ours is the whole one. */
    if (!x->sect_toolong &&
        strncmp(x->sect_text, section, strlen(section)) != 0) {
      fail(x, x->sect_line, NULL, "cannot read this section header");
      return 0;
    }
    if (begin_section(x) < 0)
      return 0;
  }
  if (!*name) {
    fail(x, line, NULL, "a key is missing before '='");
    return 0;
  }
  int k = -1;
  for (int i = 0; i < K_COUNT; i++)
    if (strcmp(name, KD(i).ini) == 0)
      k = i;
  if (k < 0) {
    /* "max-cap" for "max_cap", "Max_Cap" for "max_cap" */
    char alt[32];
    size_t n = strlen(name);
    if (n < sizeof(alt)) {
      for (size_t i = 0; i <= n; i++)
        alt[i] = name[i] == '-'                       ? '_'
                 : (name[i] >= 'A' && name[i] <= 'Z') ? (char)(name[i] + 32)
                                                      : name[i];
      for (int i = 0; i < K_COUNT; i++)
        if (strcmp(alt, KD(i).ini) == 0) {
          fail(x, line, qp_quote(b, sizeof(b), name, 0),
               "unknown key (did you mean %s?)", KD(i).ini);
          return 0;
        }
    }
    fail(x, line, qp_quote(b, sizeof(b), name, 0), "unknown key");
    return 0;
  }
  if (!x->in_global && !x->cur) {
    fail(x, line, KD(k).ini,
         "outside any section (put it under [global] or [pool NAME])");
    return 0;
  }
  if (x->in_global) {
    if (!(KD(k).scope & S_GLOBAL)) {
      fail(x, line, KD(k).ini,
           "not a [global] key (it belongs in a [pool NAME] section)");
      return 0;
    }
    return set_global(x, (enum key)k, value, line) == 0;
  }
  if (KD(k).scope & S_GLOBAL) {
    fail(x, line, KD(k).ini, "not a pool key (it belongs in [global])");
    return 0;
  }
  return set_pool_key(x, x->cur, x->cur_meta, (enum key)k, value, line) == 0;
}

/* Runs libinih over text with the settings this format is documented with,
 * and puts the library's process-wide settings back afterwards. */
static int parse_ini(struct ctx *x, const char *text) {
  bool multi = ini_allow_multiline, stop = ini_stop_on_first_error;
  bool stack = ini_use_stack, inl = ini_allow_inline_comments;
  bool bom = ini_allow_bom, novalue = ini_allow_no_value;
  int maxline = ini_max_line;
  char *inl_prefixes = ini_inline_comment_prefixes;
  char *start_prefixes = ini_start_comment_prefixes;

  static char comment_chars[] = ";#";
  ini_allow_multiline = false; /* indented keys are keys, not continuations */
  ini_stop_on_first_error = true;
  ini_use_stack = true;
  ini_allow_inline_comments = true; /* " ; ..." and " # ..." after a value */
  ini_allow_bom = true;
  ini_allow_no_value = false;
  ini_max_line = SUP_LINE_MAX + 2; /* the line, '\n' and NUL */
  ini_inline_comment_prefixes = comment_chars;
  ini_start_comment_prefixes = comment_chars;

  x->pos = text;
  int rc = ini_parse_stream(read_line, x, on_key, x);

  ini_allow_multiline = multi;
  ini_stop_on_first_error = stop;
  ini_use_stack = stack;
  ini_allow_inline_comments = inl;
  ini_allow_bom = bom;
  ini_allow_no_value = novalue;
  ini_max_line = maxline;
  ini_inline_comment_prefixes = inl_prefixes;
  ini_start_comment_prefixes = start_prefixes;

  if (x->failed)
    return -EINVAL;
  if (rc > 0) {
    char b[QBUF];
    return fail(x, rc, NULL, "%s is not [section], key = value or a comment",
                q(b, rc == x->lineno ? x->line_text : "this line"));
  }
  if (rc < 0)
    return fail(x, 0, NULL, "cannot parse (error %d)", rc);
  if (x->sect_seq != x->begun_seq && begin_section(x) < 0)
    return -EINVAL;
  return 0;
}

/* Reads a whole config file (a regular file, at most SUP_CONFIG_MAX bytes,
 * no NUL bytes) into a new string. */
static int read_file(struct ctx *x, const char *path, char **out) {
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
  if (fd < 0)
    return fail(x, 0, NULL, "cannot open: %s", strerror(errno));
  struct stat st;
  if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
    close(fd);
    return fail(x, 0, NULL, "not a regular file");
  }
  if (st.st_size > SUP_CONFIG_MAX) {
    close(fd);
    return fail(x, 0, NULL, "larger than %d bytes", SUP_CONFIG_MAX);
  }
  char *buf = malloc(SUP_CONFIG_MAX + 2);
  if (!buf) {
    close(fd);
    return fail(x, 0, NULL, "out of memory");
  }
  size_t n = 0;
  for (;;) {
    ssize_t r = read(fd, buf + n, SUP_CONFIG_MAX + 1 - n);
    if (r < 0 && errno == EINTR)
      continue;
    if (r < 0) {
      int e = errno;
      close(fd);
      free(buf);
      return fail(x, 0, NULL, "cannot read: %s", strerror(e));
    }
    if (r == 0)
      break;
    n += (size_t)r;
    if (n > SUP_CONFIG_MAX) {
      close(fd);
      free(buf);
      return fail(x, 0, NULL, "larger than %d bytes", SUP_CONFIG_MAX);
    }
  }
  close(fd);
  if (memchr(buf, '\0', n)) {
    free(buf);
    return fail(x, 0, NULL, "contains a NUL byte (not a text file)");
  }
  buf[n] = '\0';
  *out = buf;
  return 0;
}

/* path made absolute (without resolving symbolic links, so a reload follows
 * a switched link). */
static int absolute_path(struct ctx *x, const char *path, char *out,
                         size_t outlen) {
  if (path[0] == '/') {
    if (strlen(path) >= outlen)
      return fail(x, 0, NULL, "path is too long");
    strcpy(out, path);
    return 0;
  }
  char cwd[PATH_MAX];
  if (!getcwd(cwd, sizeof(cwd)))
    return fail(x, 0, NULL, "cannot get the working directory: %s",
                strerror(errno));
  const char *rel = path;
  while (rel[0] == '.' && rel[1] == '/')
    rel += 2;
  int w = snprintf(out, outlen, "%s%s%s", cwd,
                   cwd[strlen(cwd) - 1] == '/' ? "" : "/", rel);
  if (w < 0 || (size_t)w >= outlen)
    return fail(x, 0, NULL, "path is too long");
  return 0;
}

/* ---- context life -------------------------------------------------------- */

static struct ctx *ctx_new(char *err, size_t errlen, int flags,
                           const char *fname) {
  if (err && errlen)
    err[0] = '\0';
  struct ctx *x = calloc(1, sizeof(*x));
  struct scratch *c = calloc(1, sizeof(*c));
  if (!x || !c) {
    free(x);
    free(c);
    if (err && errlen)
      snprintf(err, errlen, "out of memory");
    return NULL;
  }
  SET_DEFAULTS(c);
  x->c = c;
  x->err = err;
  x->errlen = errlen;
  x->flags = flags;
  x->fname = fname ? fname : "(config)";
  return x;
}

/* Copies the result out (success) and frees the context. */
static int ctx_end(struct ctx *x, struct sup_config *out, int rc) {
  if (rc == 0 && !x->failed) {
    struct scratch *c = x->c;
    if (c->npools)
      memcpy(out->pools, c->pools, c->npools * sizeof(c->pools[0]));
    out->npools = c->npools;
    out->workers = c->workers;
    memcpy(out->control, c->control, sizeof(out->control));
    memcpy(out->metrics_text, c->metrics_text, sizeof(out->metrics_text));
    out->metrics_addr = c->metrics_addr;
    out->metrics_len = c->metrics_len;
    memcpy(out->user, c->user, sizeof(out->user));
    memcpy(out->chroot, c->chroot, sizeof(out->chroot));
    memcpy(out->config_file, c->config_file, sizeof(out->config_file));
    out->foreground = c->foreground;
    out->lifeline = c->lifeline;
    out->check = c->check;
    out->log_level = c->log_level;
  } else {
    rc = -EINVAL;
  }
  free(x->c->pools);
  free(x->c);
  free(x);
  return rc;
}

/* ---- public -------------------------------------------------------------- */

void sup_config_defaults(struct sup_config *c) {
  SET_DEFAULTS(c);
}

int sup_config_load_string(struct sup_config *c, const char *text,
                           const char *name_for_errors, char *err,
                           size_t errlen) {
  struct ctx *x = ctx_new(err, errlen, 0, name_for_errors);
  if (!x)
    return -ENOMEM;
  int rc = text ? parse_ini(x, text) : fail(x, 0, NULL, "no text");
  if (rc == 0)
    rc = finish(x);
  return ctx_end(x, c, rc);
}

int sup_config_load_file(struct sup_config *c, const char *path, char *err,
                         size_t errlen) {
  struct ctx *x = ctx_new(err, errlen, 0, path);
  if (!x)
    return -ENOMEM;
  char *text = NULL;
  int rc = path && *path ? read_file(x, path, &text)
                         : fail(x, 0, NULL, "no file name");
  if (rc == 0)
    rc = absolute_path(x, path, x->c->config_file, sizeof(x->c->config_file));
  if (rc == 0)
    rc = parse_ini(x, text);
  if (rc == 0)
    rc = finish(x);
  free(text);
  return ctx_end(x, c, rc);
}

/* The option token getopt_long just matched: "--name" or "--name=value". */
static const char *opt_token(char **av, int optind_now, int has_arg) {
  if (has_arg && optarg && optind_now >= 2 && optarg == av[optind_now - 1])
    return av[optind_now - 2];
  return av[optind_now - 1];
}

/* getopt_long accepts unique prefixes ("--list"); we do not, so that adding
 * a flag never changes what an old command line means. */
static int exact_name(const char *token, const char *name) {
  if (strncmp(token, "--", 2) != 0)
    return 0;
  size_t n = strcspn(token + 2, "=");
  return strlen(name) == n && strncmp(token + 2, name, n) == 0;
}

/* "--max_cap" / "--Max-Cap" -> the flag meant, or NULL. */
static const char *flag_hint(const char *token) {
  char alt[32];
  if (strncmp(token, "--", 2) != 0)
    return NULL;
  size_t n = strcspn(token + 2, "=");
  if (n == 0 || n >= sizeof(alt))
    return NULL;
  for (size_t i = 0; i < n; i++) {
    char ch = token[2 + i];
    alt[i] = ch == '_' ? '-' : (ch >= 'A' && ch <= 'Z') ? (char)(ch + 32) : ch;
  }
  alt[n] = '\0';
  for (const struct option *o = longopts; o->name; o++)
    if (strcmp(o->name, alt) == 0 || (strncmp(o->name, alt, n) == 0 && n >= 3))
      return o->name;
  return NULL;
}

static const char *opt_display(int val) {
  if (val >= OPT_KEY && val < OPT_KEY + K_COUNT)
    return KD(val - OPT_KEY).flag ? KD(val - OPT_KEY).flag : "?";
  switch (val) {
  case OPT_NAME:
    return "--name";
  case OPT_FOREGROUND:
    return "--foreground";
  case OPT_CONFIG:
    return "--config";
  case OPT_LIFELINE:
    return "--lifeline";
  case OPT_CHECK:
    return "--check";
  }
  return "?";
}

int sup_config_from_args(struct sup_config *c, int argc, char **argv, char *err,
                         size_t errlen) {
  if (err && errlen)
    err[0] = '\0';
  for (int i = 1; i < argc && argv[i] && strcmp(argv[i], "--") != 0; i++) {
    if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
      sup_usage(stdout);
      return 1;
    }
    if (strcmp(argv[i], "--version") == 0 || strcmp(argv[i], "-V") == 0) {
      printf("qpoold %s\n", QP_VERSION);
      return 1;
    }
  }
  longopts_init();
  struct ctx *x = ctx_new(err, errlen, 1, NULL);
  if (!x)
    return -ENOMEM;
  unsigned mode = 0; /* S_SERVER, S_CLIENT, 0: --config */
  char **av = argv;
  int ac = argc;
  char b[QBUF];
  if (argc < 2 || !argv[1]) {
    fail(x, 0, NULL,
         "missing command: qpoold server ..., qpoold client ... or qpoold "
         "--config FILE (see qpoold --help)");
    return ctx_end(x, c, -EINVAL);
  }
  if (strcmp(argv[1], "server") == 0 || strcmp(argv[1], "client") == 0) {
    mode = argv[1][0] == 's' ? S_SERVER : S_CLIENT;
    av = argv + 1; /* "server" plays argv[0] for getopt */
    ac = argc - 1;
    struct sup_pool_cfg *p = add_pool(x, 0);
    if (!p)
      return ctx_end(x, c, -ENOMEM);
    p->server = mode == S_SERVER;
    x->meta[0].line[K_MODE] = 1;
  } else if (argv[1][0] != '-') {
    fail(x, 0, NULL,
         "unknown command %s (expected server, client or --config FILE)",
         q(b, argv[1]));
    return ctx_end(x, c, -EINVAL);
  }
  const char *mname = mode == S_SERVER ? "server" : "client";
  struct sup_pool_cfg *p = mode ? &x->c->pools[0] : NULL;
  struct pool_meta *m = &x->meta[0];
  const char *config = NULL;
  int name_set = 0;

  optind = 0; /* glibc: a full re-initialisation, for every call */
  opterr = 0;
  int o, li = -1;
  /* '+': stop at the first argument that is not an option (no reordering
   * of argv); ':': report a missing value as ':' */
  while (!x->failed && (o = getopt_long(ac, av, "+:", longopts, &li)) != -1) {
    if (o == '?') {
      if (optopt >= OPT_KEY) {
        fail(x, 0, opt_display(optopt), "takes no value");
      } else if (optopt) {
        char t[2] = {(char)optopt, '\0'};
        fail(x, 0, NULL, "unknown option -%s", qp_quote(b, sizeof(b), t, 0));
      } else {
        const char *tok = av[optind - 1];
        char t[QBUF];
        size_t n = strcspn(tok, "=");
        snprintf(t, sizeof(t), "%.*s", (int)(n < 60 ? n : 60), tok);
        const char *hint = flag_hint(tok);
        if (hint)
          fail(x, 0, NULL, "unknown option %s (did you mean --%s?)",
               qp_quote(b, sizeof(b), t, 0), hint);
        else
          fail(x, 0, NULL, "unknown option %s", qp_quote(b, sizeof(b), t, 0));
      }
      break;
    }
    if (o == ':') {
      fail(x, 0, opt_display(optopt), "needs a value");
      break;
    }
    const struct option *lo = &longopts[li];
    const char *tok = opt_token(av, optind, lo->has_arg);
    if (!exact_name(tok, lo->name)) {
      char t[QBUF];
      size_t n = strcspn(tok, "=");
      snprintf(t, sizeof(t), "%.*s", (int)(n < 60 ? n : 60), tok);
      fail(x, 0, NULL, "unknown option %s (did you mean --%s?)",
           qp_quote(b, sizeof(b), t, 0), lo->name);
      break;
    }
    /* "--listen --max-cap 3": the value is missing, not "--max-cap" */
    if (lo->has_arg && optarg && optarg == av[optind - 1] &&
        strncmp(optarg, "--", 2) == 0 && optarg[2]) {
      fail(x, 0, opt_display(o), "needs a value");
      break;
    }
    if (o == OPT_FOREGROUND) {
      x->c->foreground = 1;
    } else if (o == OPT_CHECK) {
      x->c->check = 1;
    } else if (o == OPT_LIFELINE) {
      char *end;
      errno = 0;
      long fd = strtol(optarg, &end, 10);
      if (!*optarg || *end || errno || fd < 3 || fd > 65535 ||
          fcntl((int)fd, F_GETFD) < 0)
        fail(x, 0, "--lifeline",
             "%s is not an open file descriptor (3 or more)",
             qp_quote(b, sizeof(b), optarg, 0));
      else
        x->c->lifeline = (int)fd;
    } else if (o == OPT_CONFIG) {
      if (mode)
        fail(x, 0, "--config",
             "not with qpoold %s (a config file describes "
             "every pool: qpoold --config FILE)",
             mname);
      else if (config)
        fail(x, 0, "--config", "given twice");
      else if (!*optarg)
        fail(x, 0, "--config", "must not be empty");
      config = optarg;
    } else if (o == OPT_NAME) {
      if (!mode)
        fail(x, 0, "--name",
             "not with --config (the file names its pools: [pool NAME])");
      else if (name_set)
        fail(x, 0, "--name", "given twice");
      else if (!valid_name(optarg, SUP_NAME_MAX - 1))
        fail(x, 0, "--name",
             "%s is not a valid pool name (1-63 characters of A-Z a-z 0-9 _ "
             ". -)",
             q(b, optarg));
      else
        strcpy(p->name, optarg);
      name_set = 1;
    } else {
      enum key k = (enum key)(o - OPT_KEY);
      if (KD(k).scope & S_GLOBAL)
        set_global(x, k, optarg, 0);
      else if (!mode)
        fail(x, 0, KD(k).flag, "not with --config (set %s in the file)",
             KD(k).ini);
      else if (!(KD(k).scope & mode))
        fail(x, 0, KD(k).flag, "only for qpoold %s",
             mode == S_SERVER ? "client" : "server");
      else
        set_pool_key(x, p, m, k, optarg, 0);
    }
  }
  if (!x->failed && optind < ac)
    fail(x, 0, NULL, "unexpected argument %s", q(b, av[optind]));
  if (x->failed)
    return ctx_end(x, c, -EINVAL);

  if (mode) {
    if (!name_set)
      fail(x, 0, NULL, "--name is required");
    else
      finish(x);
    return ctx_end(x, c, x->failed ? -EINVAL : 0);
  }
  if (!config) {
    fail(x, 0, NULL,
         "missing command: qpoold server ..., qpoold client ... or qpoold "
         "--config FILE (see qpoold --help)");
    return ctx_end(x, c, -EINVAL);
  }
  /* The file: its messages carry file:line; flags given above win over its
   * [global] keys. */
  char *text = NULL;
  x->flags = 0;
  x->fname = config;
  int rc = read_file(x, config, &text);
  if (rc == 0)
    rc = absolute_path(x, config, x->c->config_file, sizeof(x->c->config_file));
  if (rc == 0)
    rc = parse_ini(x, text);
  if (rc == 0)
    rc = finish(x);
  free(text);
  return ctx_end(x, c, rc);
}

const struct sup_pool_cfg *sup_config_find(const struct sup_config *c,
                                           const char *name) {
  for (size_t i = 0; c && name && i < c->npools; i++)
    if (strcmp(c->pools[i].name, name) == 0)
      return &c->pools[i];
  return NULL;
}

int sup_pool_cfg_equal(const struct sup_pool_cfg *a,
                       const struct sup_pool_cfg *b) {
  for (int i = 0; i < QP_SET_N; i++)
    if (!qp_setting_equal((enum qp_setting_id)i, &a->set, &b->set))
      return 0;
  if (strcmp(a->name, b->name) != 0 || a->server != b->server ||
      strcmp(a->addr_text, b->addr_text) != 0 ||
      strcmp(a->ca_file, b->ca_file) != 0 ||
      strcmp(a->cert_file, b->cert_file) != 0 ||
      strcmp(a->key_file, b->key_file) != 0 || a->worker != b->worker ||
      a->client_ip.n != b->client_ip.n || a->n_allow_uid != b->n_allow_uid ||
      a->n_allow_gid != b->n_allow_gid ||
      memcmp(a->allow_uid, b->allow_uid, a->n_allow_uid * sizeof(uint32_t)) ||
      memcmp(a->allow_gid, b->allow_gid, a->n_allow_gid * sizeof(uint32_t)))
    return 0;
  if (a->server && (a->addr_len != b->addr_len ||
                    !qp_addr_equal((const struct sockaddr *)&a->addr,
                                   (const struct sockaddr *)&b->addr)))
    return 0;
  for (size_t i = 0; i < a->client_ip.n; i++) {
    const struct qp_ipfilter_entry *x = &a->client_ip.e[i],
                                   *y = &b->client_ip.e[i];
    if (x->family != y->family || x->prefix != y->prefix ||
        memcmp(x->addr, y->addr, sizeof(x->addr)) != 0)
      return 0;
  }
  return 1;
}

/* The keys of one section of --help: those whose scope is exactly
 * `scope`, qpoold's own first (the required address among them), then the
 * settings, each table in its order. */
static void usage_keys(FILE *f, unsigned scope) {
  char lead[64];
  for (int k = QP_SET_N; k < K_COUNT; k++) {
    struct keydef d = KD(k);
    if (d.flag && d.scope == scope) {
      snprintf(lead, sizeof(lead), "  %s %s", d.flag, d.metavar);
      qp_usage_wrap(f, lead, d.help);
    }
  }
  for (int k = 0; k < QP_SET_N; k++)
    if (qp_settings[k].scope == scope)
      qp_setting_usage(f, (enum qp_setting_id)k, NULL);
}

void sup_usage(FILE *f) {
  fputs("qpoold " QP_VERSION " - np-quic stream pools, privilege-separated\n"
        "\n"
        "Usage:\n"
        "  qpoold server --name NAME --listen ADDR [options]   one server "
        "pool\n"
        "  qpoold client --name NAME --target ADDR [options]   one client "
        "pool\n"
        "  qpoold --config FILE [global options]                many pools\n"
        "  qpoold --help | --version\n"
        "\n"
        "Server pool (accepts QUIC connections, hands out the streams they "
        "open):\n",
        f);
  qp_usage_wrap(f, "  --name NAME",
                "pool name: 1-63 of A-Z a-z 0-9 _ . - (required)");
  usage_keys(f, S_SERVER);
  fputs("\nClient pool (dials the server, keeps streams ready):\n", f);
  qp_usage_wrap(f, "  --name NAME", "pool name (required)");
  usage_keys(f, S_CLIENT);
  fputs("\nEither pool:\n", f);
  usage_keys(f, S_SERVER | S_CLIENT);
  fputs("\nGlobal (also with --config, where they override the file's "
        "[global]):\n",
        f);
  usage_keys(f, S_GLOBAL);
  fputs("  --check              check the flags / config file and the TLS\n"
        "                       files, print a summary and exit (0: valid,\n"
        "                       2: not)\n"
        "  --foreground         accepted for compatibility: qpoold never "
        "detaches\n"
        "                       and logs to stderr (run it under systemd)\n"
        "  --config FILE        read the pools from FILE (INI, see below)\n"
        "  --lifeline FD        stop (as on SIGTERM) when FD, an inherited "
        "pipe,\n"
        "                       reaches end of file: libqpool's embedded mode\n"
        "                       starts its private qpoold this way\n"
        "\n"
        "Durations are Go's: a number and a unit (ns, us, ms, s, m, h), e.g.\n"
        "500ms, 5s, 1m30s, 1.5h; at most 24h. Sizes are bytes or a whole\n"
        "number of KiB, MiB or GiB (1024-based), e.g. 262144, 512KiB, 16MiB.\n"
        "Addresses are host:port, [IPv6]:port or :port (every IPv4 address;\n"
        "[::]:port for IPv6).\n"
        "\n"
        "Examples:\n"
        "  qpoold server --name tunnel --listen :4433 --max-cap 64 \\\n"
        "      --client-ip 192.0.2.0/24,2001:db8::/32\n"
        "  qpoold client --name tunnel --target relay.example.com:4433 \\\n"
        "      --min-cap 8 --max-cap 64 --min-interval 100ms --max-interval "
        "5s\n"
        "  qpoold --config /etc/qpool/qpoold.conf --foreground\n"
        "\n"
        "Config file: a [pool NAME] section per pool with mode = server or "
        "client and\n"
        "the keys of the flags above with _ for - (min_cap, client_ip, ...); "
        "worker = N\n"
        "pins a pool to worker N (needs workers = N+1 or more in [global]).\n"
        "  [global]\n"
        "  workers = 2\n"
        "  user = qpool\n"
        "\n"
        "  [pool tenant-a]\n"
        "  mode = server\n"
        "  listen = [::]:4433\n"
        "  max_cap = 64\n"
        "  client_ip = 198.51.100.0/24, 2001:db8:a::/48\n"
        "  worker = 0                 ; optional: pin to worker 0\n"
        "\n"
        "  [pool upstream]\n"
        "  mode = client\n"
        "  target = relay.example.com:4433\n"
        "  tls_mode = 2\n"
        "  hostname = relay.example.com\n"
        "\n"
        "See docs/qpoold-config.md for every key.\n",
        f);
}
