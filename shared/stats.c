/* The table of a pool's counters and gauges, and every form made from it. */
#include "shared/stats.h"

#include <inttypes.h>
#include <string.h>

#include "shared/size.h"

#define PS(f) offsetof(Qpool__PoolStats, f)
#define RP(f) offsetof(Qpool__Report, f)
#define G QP_STAT_GAUGE
#define C QP_STAT_COUNTER
#define Q QP_STAT_QPOOLD

const struct qp_stat qp_stats[] = {
    {"idle_streams", G, QP_SV_I32, "idle_streams", PS(idle_streams),
     RP(idle_streams), 1, "Idle streams ready to be taken (Active())."},
    {"capacity", G, QP_SV_I32, "capacity", PS(capacity), RP(capacity), 1,
     "Idle streams the pool aims at: a client pool's current capacity, a "
     "server pool's max_cap."},
    {"interval_seconds", G, QP_SV_NS, "interval_ns", PS(interval_ns),
     RP(interval_ns), 1,
     "Current wait between a client pool's fill rounds (servers: 0)."},
    {"app_errors", G, QP_SV_U64, "app_errors", PS(app_errors), Q, 0,
     "The application's error count (AddError, ResetError)."},
    {"connected", G, QP_SV_BOOL, "connected", PS(connected), RP(connected), 1,
     "1 while a client pool's connection is up, else 0."},
    {"connections", G, QP_SV_I32, "connections", PS(connections),
     RP(connections), 1, "Open QUIC connections of the pool."},
    {"ready", G, QP_SV_BOOL, "ready", PS(ready), Q, 0,
     "1 when the pool's worker is up and the pool runs, else 0."},
    {"streams_created", C, QP_SV_U64, "streams_created", PS(streams_created),
     RP(streams_created), 1,
     "Streams that got their ID (client: opened; server: accepted)."},
    {"streams_taken", C, QP_SV_U64, "streams_taken", PS(streams_taken),
     RP(streams_taken), 1, "Streams handed to applications."},
    {"streams_failed", C, QP_SV_U64, "streams_failed", PS(streams_failed),
     RP(streams_failed), 1, "Streams whose ID exchange failed or timed out."},
    {"streams_refused", C, QP_SV_U64, "streams_refused", PS(streams_refused),
     RP(streams_refused), 0,
     "Streams a server pool closed unanswered (pool full or closing)."},
    {"setup_errors", C, QP_SV_U64, "setup_errors", PS(setup_errors),
     RP(setup_errors), 0,
     "Stream ID exchanges the peer broke (a wrong first byte, a short or "
     "missing ID)."},
    {"in_bytes", C, QP_SV_U64, "in_bytes", PS(in_bytes), RP(in_bytes), 0,
     "Bytes delivered from streams to applications."},
    {"out_bytes", C, QP_SV_U64, "out_bytes", PS(out_bytes), RP(out_bytes), 0,
     "Bytes applications wrote into streams."},
    {"rejected_ips", C, QP_SV_U64, "rejected_ips", PS(rejected_ips), Q, 0,
     "Connection attempts refused by the client-IP filter."},
    {"dropped_datagrams", C, QP_SV_U64, "dropped_datagrams",
     PS(dropped_datagrams), RP(dropped_datagrams), 0,
     "UDP datagrams dropped as malformed or unroutable (qpoold's listener "
     "and the worker)."},
    {"handoffs", C, QP_SV_U64, "handoffs", PS(handoffs), Q, 0,
     "Connections handed from qpoold to the pool's worker."},
    {"sessions", C, QP_SV_U64, "sessions", PS(sessions), Q, 0,
     "Sessions granted to applications (takes straight from the worker)."},
    {"stateless_resets", C, QP_SV_U64, "stateless_resets", PS(stateless_resets),
     Q, 0, "Stateless resets sent for connections no worker owns any more."},
    {"worker_restarts", C, QP_SV_U32, "worker_restarts", PS(worker_restarts), Q,
     0, "Restarts of the pool's worker process."},
};
const size_t qp_stats_n = sizeof(qp_stats) / sizeof(qp_stats[0]);

char *qp_stat_prom_name(const struct qp_stat *s, char *buf, size_t len) {
  snprintf(buf, len, "qpool_%s%s", s->name,
           s->kind == QP_STAT_COUNTER ? "_total" : "");
  return buf;
}

static uint64_t raw(const struct qp_stat *s, const void *msg, size_t off) {
  const char *m = (const char *)msg + off;
  switch (s->type) {
  case QP_SV_U64:
  case QP_SV_NS:
    return *(const uint64_t *)m;
  case QP_SV_I32:
    return (uint64_t)(int64_t) * (const int32_t *)m;
  case QP_SV_U32:
    return *(const uint32_t *)m;
  case QP_SV_BOOL:
    return *(const protobuf_c_boolean *)m ? 1 : 0;
  }
  return 0;
}

uint64_t qp_stat_raw(const struct qp_stat *s, const Qpool__PoolStats *p) {
  return raw(s, p, s->off);
}

double qp_stat_value(const struct qp_stat *s, const Qpool__PoolStats *p) {
  uint64_t v = raw(s, p, s->off);
  if (s->type == QP_SV_NS)
    return (double)v / 1e9;
  if (s->type == QP_SV_I32)
    return (double)(int64_t)v;
  return (double)v;
}

char *qp_stat_text(const struct qp_stat *s, const Qpool__PoolStats *p,
                   char *buf, size_t len) {
  uint64_t v = raw(s, p, s->off);
  if (s->type == QP_SV_NS) { /* exact: seconds and up to 9 decimals */
    int n = snprintf(buf, len, "%" PRIu64 ".%09" PRIu64, v / 1000000000,
                     v % 1000000000);
    while (n > 0 && (size_t)n < len && buf[n - 1] == '0')
      buf[--n] = '\0';
    if (n > 0 && (size_t)n < len && buf[n - 1] == '.')
      buf[--n] = '\0';
  } else if (s->type == QP_SV_I32)
    snprintf(buf, len, "%" PRId64, (int64_t)v);
  else
    snprintf(buf, len, "%" PRIu64, v);
  return buf;
}

void qp_stats_from_report(Qpool__PoolStats *p, const Qpool__Report *r) {
  for (size_t i = 0; i < qp_stats_n; i++) {
    const struct qp_stat *s = &qp_stats[i];
    if (s->report_off == QP_STAT_QPOOLD)
      continue;
    const char *from = (const char *)r + s->report_off;
    char *to = (char *)p + s->off;
    switch (s->type) {
    case QP_SV_U64:
    case QP_SV_NS:
      memcpy(to, from, sizeof(uint64_t));
      break;
    case QP_SV_I32:
    case QP_SV_U32:
      memcpy(to, from, sizeof(int32_t));
      break;
    case QP_SV_BOOL:
      memcpy(to, from, sizeof(protobuf_c_boolean));
      break;
    }
  }
}

int qp_stats_report_changed(const Qpool__Report *a, const Qpool__Report *b) {
  for (size_t i = 0; i < qp_stats_n; i++) {
    const struct qp_stat *s = &qp_stats[i];
    if (s->at_once && s->report_off != QP_STAT_QPOOLD &&
        raw(s, a, s->report_off) != raw(s, b, s->report_off))
      return 1;
  }
  return 0;
}

/* Prometheus text format 0.0.4: label values escape \ " and newline. */
static void prom_label(FILE *out, const char *v) {
  for (const char *c = v; *c; c++) {
    if (*c == '\\')
      fputs("\\\\", out);
    else if (*c == '"')
      fputs("\\\"", out);
    else if (*c == '\n')
      fputs("\\n", out);
    else
      fputc(*c, out);
  }
}

void qp_stats_prometheus(FILE *out, Qpool__PoolStats *const *pools, size_t n) {
  fprintf(out, "# HELP qpool_pool_info Pool role; always 1.\n"
               "# TYPE qpool_pool_info gauge\n");
  for (size_t i = 0; i < n; i++) {
    fputs("qpool_pool_info{pool=\"", out);
    prom_label(out, pools[i]->name);
    fprintf(out, "\",role=\"%s\"} 1\n", pools[i]->server ? "server" : "client");
  }
  for (size_t k = 0; k < qp_stats_n; k++) {
    const struct qp_stat *s = &qp_stats[k];
    char name[64], v[48];
    qp_stat_prom_name(s, name, sizeof(name));
    fprintf(out, "# HELP %s %s\n# TYPE %s %s\n", name, s->help, name,
            s->kind == QP_STAT_COUNTER ? "counter" : "gauge");
    for (size_t i = 0; i < n; i++) {
      fprintf(out, "%s{pool=\"", name);
      prom_label(out, pools[i]->name);
      fprintf(out, "\"} %s\n", qp_stat_text(s, pools[i], v, sizeof(v)));
    }
  }
}

/* s in double quotes, " and \ escaped, control bytes as \xNN: whole. */
static void quoted(FILE *out, const char *s) {
  fputc('"', out);
  for (; *s; s++) {
    unsigned char ch = (unsigned char)*s;
    if (ch == '"' || ch == '\\')
      fprintf(out, "\\%c", ch);
    else if (ch < 0x20 || ch == 0x7f)
      fprintf(out, "\\x%02x", ch);
    else
      fputc(ch, out);
  }
  fputc('"', out);
}

void qp_stats_line(FILE *out, const Qpool__PoolStats *p) {
  char v[48], win[32] = "-";
  fprintf(out, "pool=%s role=%s worker=%" PRId32 " pid=%" PRIu32, p->name,
          p->server ? "server" : "client", p->worker, p->worker_pid);
  for (size_t i = 0; i < qp_stats_n; i++)
    fprintf(out, " %s=%s", qp_stats[i].name,
            qp_stat_text(&qp_stats[i], p, v, sizeof(v)));
  if (p->has_max_stream_window)
    qp_size_format(p->max_stream_window, win, sizeof(win));
  fprintf(out, " failed=%d cc=%s window=%s last_error=",
          p->has_failed && p->failed ? 1 : 0,
          p->congestion_control ? p->congestion_control : "-", win);
  quoted(out, p->last_error ? p->last_error : "");
  fputc('\n', out);
}
