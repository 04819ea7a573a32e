/* A pool's tunable settings, each described once (ngx_command_t-style): its
 * config key, its flag, its type, default and range, where its value lives
 * (struct qp_pool_settings) and which PoolAdd field carries it to the
 * worker, and its help line. qpoold's flag and INI parsing, defaults,
 * --help, the reload comparison, PoolAdd in qpoold and in the worker, the
 * engine's defaults, libqpool's qp_pool_set and its embedded qpoold's
 * argument list, and qpool-tunnel's pool flags all come from the table:
 * adding a setting is one entry in shared/settings.c plus its use.
 *
 * Keys that are not a value the worker applies as such (mode, listen,
 * target, TLS files, client_ip, allow_users, allow_groups, worker) stay
 * with qpoold's config (supervisor/config.c). Reference for users:
 * docs/qpoold-config.md. */
#ifndef QP_SHARED_SETTINGS_H
#define QP_SHARED_SETTINGS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "shared/pool_params.h"

/* The values. Every pool has all of them; a client pool ignores none, a
 * server pool uses those whose scope has QP_SCOPE_SERVER. */
struct qp_pool_settings {
  int32_t min_cap, max_cap;           /* client; server: max_cap only */
  uint64_t min_ivl_ns, max_ivl_ns;    /* client: wait between fill rounds */
  uint64_t keep_alive_ns;             /* PING period; 0: none */
  uint64_t idle_timeout_ns;           /* 0: qp_pool_idle_timeout_ns's rule */
  uint64_t setup_timeout_ns;          /* stream ID exchange deadline */
  int32_t cc_algo;                    /* ngtcp2_cc_algo, one of qp_cc_table's */
  uint64_t max_stream_window;         /* bytes */
  char tls_mode;                      /* client: '0', '1' or '2' */
  char hostname[QP_HOSTNAME_MAX + 1]; /* client: SNI / verified name; "" none */
};

enum qp_setting_id {
  QP_SET_MIN_CAP,
  QP_SET_MAX_CAP,
  QP_SET_MIN_INTERVAL,
  QP_SET_MAX_INTERVAL,
  QP_SET_KEEP_ALIVE,
  QP_SET_IDLE_TIMEOUT,
  QP_SET_SETUP_TIMEOUT,
  QP_SET_CONGESTION_CONTROL,
  QP_SET_MAX_STREAM_WINDOW,
  QP_SET_TLS_MODE,
  QP_SET_HOSTNAME,
  QP_SET_N
};

enum qp_setting_type {
  QP_ST_COUNT,    /* int32_t, decimal, min..max */
  QP_ST_DURATION, /* uint64_t ns, Go syntax (shared/duration.h), min..max */
  QP_ST_SIZE,     /* uint64_t bytes (shared/size.h), min..max */
  QP_ST_CC,       /* int32_t ngtcp2_cc_algo, by name (qp_cc_table) */
  QP_ST_TLS_MODE, /* char '0' '1' '2' */
  QP_ST_HOSTNAME, /* char[], a host name or IP literal, "" = none */
};

#define QP_SCOPE_SERVER 1u
#define QP_SCOPE_CLIENT 2u

struct qp_setting {
  const char *key;     /* INI key, PoolAdd field name, qp_pool_set key */
  const char *flag;    /* "--max-cap" */
  const char *metavar; /* "N", "DUR", ... for --help */
  unsigned scope;      /* QP_SCOPE_* */
  enum qp_setting_type type;
  size_t off;    /* offsetof(struct qp_pool_settings, ...) */
  size_t pb_off; /* offsetof(Qpool__PoolAdd, ...) */
  uint64_t def, min, max;
  const char *def_text; /* shown as the default instead of def, or NULL */
  const char *help;     /* one sentence for --help, wrapped when printed */
  /* a duration that may be 0 (its meaning: def_text) or else at least
   * this; 0: min applies */
  uint64_t min_nonzero;
};

extern const struct qp_setting qp_settings[QP_SET_N];

/* The entry whose key is key ("max_cap"), or whose flag is key
 * ("--max-cap"); NULL when none. */
const struct qp_setting *qp_setting_find(const char *key);

/* Every setting at its default. */
void qp_pool_settings_defaults(struct qp_pool_settings *s);

/* Parses v as setting id into *s. Returns 0, or -EINVAL with why filled
 * ("\"abc\" is not a number", the value quoted by qp_quote) for a message
 * that starts with the key or flag; *s untouched then. Pure. */
int qp_setting_parse(enum qp_setting_id id, const char *v,
                     struct qp_pool_settings *s, char *why, size_t whylen);

/* Setting id's value in *s as a parser takes it back ("64", "1.5s",
 * "16MiB", "bbr", ""): into buf, always NUL-terminated; returns buf. */
char *qp_setting_format(enum qp_setting_id id, const struct qp_pool_settings *s,
                        char *buf, size_t len);

/* 1 if setting id has the same value in a and b. */
int qp_setting_equal(enum qp_setting_id id, const struct qp_pool_settings *a,
                     const struct qp_pool_settings *b);

/* Checks *s against every entry's range (what a worker does with the
 * values that came in a PoolAdd). Returns 0, or -EINVAL with err naming the
 * setting and its value. */
int qp_pool_settings_check(const struct qp_pool_settings *s, char *err,
                           size_t errlen);

/* PoolAdd (proto/ipc.proto) <-> values: msg is a Qpool__PoolAdd. to_pb
 * points msg's string fields into s and scratch (which must live as long as
 * msg is used); from_pb copies, then checks as qp_pool_settings_check does.
 */
struct qp_settings_pb_scratch {
  char tls_mode[2];
};
void qp_pool_settings_to_pb(const struct qp_pool_settings *s, void *msg,
                            struct qp_settings_pb_scratch *scratch);
int qp_pool_settings_from_pb(const void *msg, struct qp_pool_settings *s,
                             char *err, size_t errlen);

/* The rules that span settings, for a pool of `scope` (QP_SCOPE_SERVER or
 * QP_SCOPE_CLIENT) whose given[] settings were set by the user (the rest
 * are defaults): a client's unset capacity or interval bound follows the
 * set one when its default would cross it, and two set bounds that cross
 * are an error; an idle timeout must be longer than a non-zero keep-alive;
 * tls_mode 2 needs a hostname. Returns 0 (s adjusted), or -EINVAL with
 * *bad the setting to blame and why a sentence to put after its name
 * ("8 is greater than --max-cap 4"), other settings named by name(id,
 * arg): each tool names them as its user writes them. */
int qp_pool_settings_reconcile(struct qp_pool_settings *s, unsigned scope,
                               const unsigned char given[QP_SET_N],
                               const char *(*name)(int id, void *arg),
                               void *arg, enum qp_setting_id *bad, char *why,
                               size_t whylen);

/* A decimal integer in [min, max] (0 <= min <= max; an optional leading
 * '+'), for integer settings and any other count a tool takes: 0 and *out,
 * or -EINVAL with
 * why ("\"x\" is not a number", "... is too large (max 9)", ...). */
int qp_parse_count(const char *v, int64_t min, int64_t max, int64_t *out,
                   char *why, size_t whylen);

/* 1 if s is one or more ASCII digits and nothing else. */
int qp_is_digits(const char *s);

/* The idle timeout a pool advertises (QUIC max_idle_timeout): its
 * idle_timeout when set, else 3 x keep_alive as the reference computes it
 * (qp_idle_timeout_ns). Returns ns. */
uint64_t qp_pool_idle_timeout_ns(const struct qp_pool_settings *s);

/* One --help entry: "  FLAG METAVAR" then the help wrapped at column 23,
 * with "(default ...)" from def_text, or from def_override (e.g. a tool's
 * own default, formatted as the setting's type) when not NULL, else from
 * the entry. A QP_ST_CC entry lists the controllers. */
void qp_setting_usage(FILE *f, enum qp_setting_id id,
                      const struct qp_pool_settings *def_override);

/* Wraps text at 78 columns, the first line after lead (padded to column
 * 23, or one space past a longer lead), the others indented to column 23.
 * The help printer of every tool. */
void qp_usage_wrap(FILE *f, const char *lead, const char *text);

/* s with quotes (quote != 0), escapes for anything unprintable and at most
 * ~60 characters of it, for user input in messages and logs. Into buf (at
 * least 16 bytes; QP_QUOTE_MAX holds the longest); returns buf. */
#define QP_QUOTE_MAX 96
const char *qp_quote(char *buf, size_t len, const char *s, int quote);

/* A host name worth asking the resolver about (RFC 1123 characters plus
 * '_'), or with allow_colon an IP literal too. 1 or 0. */
int qp_host_chars_ok(const char *h, int allow_colon);

#endif
