/* A pool's counters and gauges, each described once: its name, kind, unit,
 * help line, the PoolStats field (control.proto) that holds it, and where
 * it comes from (the worker's Report field of the same name, or qpoold's
 * own count). From this table come: qpoold's copy of a Report into
 * PoolStats, the worker's "report at once" test, the Prometheus text
 * (`qpoolctl metrics`, metrics_listen), `qpoolctl stats --json`, the
 * key=value lines of `qpoolctl watch` and the status file, and the docs'
 * list (checked by a test).
 *
 * Naming (Prometheus conventions): NAME is the JSON and status-file key;
 * Prometheus has qpool_NAME for a gauge and qpool_NAME_total for a
 * counter; a unit is part of NAME (interval_seconds, in_bytes); a gauge is
 * never named like a counter. */
#ifndef QP_SHARED_STATS_H
#define QP_SHARED_STATS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "control.pb-c.h"
#include "ipc.pb-c.h"

enum qp_stat_kind { QP_STAT_GAUGE, QP_STAT_COUNTER };

enum qp_stat_type {
  QP_SV_U64,  /* uint64_t */
  QP_SV_I32,  /* int32_t */
  QP_SV_U32,  /* uint32_t */
  QP_SV_BOOL, /* protobuf_c_boolean: 0 or 1 */
  QP_SV_NS,   /* uint64_t ns, shown in seconds */
};

#define QP_STAT_QPOOLD SIZE_MAX /* report_off of a count qpoold keeps */

struct qp_stat {
  const char *name; /* "idle_streams": JSON / status key, qpool_NAME */
  enum qp_stat_kind kind;
  enum qp_stat_type type;
  const char *field; /* the PoolStats (and Report) field: "idle_streams" */
  size_t off;        /* offsetof(Qpool__PoolStats, field) */
  size_t report_off; /* offsetof(Qpool__Report, field), or QP_STAT_QPOOLD */
  int at_once;       /* worker: a change is reported at once, not within 1 s */
  const char *help;  /* Prometheus HELP, one sentence */
};

extern const struct qp_stat qp_stats[];
extern const size_t qp_stats_n;

/* The Prometheus name of s: "qpool_idle_streams", "qpool_in_bytes_total".
 * Into buf; returns buf. */
char *qp_stat_prom_name(const struct qp_stat *s, char *buf, size_t len);

/* s's value in p as stored (ns for QP_SV_NS; an I32 sign-extended). */
uint64_t qp_stat_raw(const struct qp_stat *s, const Qpool__PoolStats *p);

/* s's value in p as a number (seconds for QP_SV_NS). */
double qp_stat_value(const struct qp_stat *s, const Qpool__PoolStats *p);

/* s's value in p as text: an integer, "0"/"1", or seconds with up to 9
 * decimals, exact ("1.5", "0.000000001"). Into buf; returns buf. */
char *qp_stat_text(const struct qp_stat *s, const Qpool__PoolStats *p,
                   char *buf, size_t len);

/* Copies every worker-sourced entry from a Report into p. */
void qp_stats_from_report(Qpool__PoolStats *p, const Qpool__Report *r);

/* 1 if an at_once entry differs between two Reports. */
int qp_stats_report_changed(const Qpool__Report *a, const Qpool__Report *b);

/* The Prometheus text exposition format 0.0.4 of pools: qpool_pool_info
 * (role label), then every entry, one sample per pool labelled
 * pool="NAME". */
#define QP_METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"
void qp_stats_prometheus(FILE *out, Qpool__PoolStats *const *pools, size_t n);

/* One pool as key=value pairs: pool=NAME role=... worker=N pid=N, every
 * entry NAME=VALUE, then cc=, window=, last_error="..." (quoted, escaped).
 * Ends with a newline. The status file's line and `qpoolctl watch`'s
 * non-terminal form. */
void qp_stats_line(FILE *out, const Qpool__PoolStats *p);

#endif
