/* The Prometheus text exposition (format 0.0.4) of qpoold's pools: one
 * implementation for `qpoolctl metrics` and qpoold's metrics_listen. */
#include <inttypes.h>
#include <stdio.h>

#include "shared/metrics.h"

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

enum mval {
  M_ACTIVE,
  M_CAPACITY,
  M_INTERVAL,
  M_ERRORS,
  M_CONNECTED,
  M_CONNS,
  M_READY,
  M_CREATED,
  M_TAKEN,
  M_FAILED,
  M_REFUSED,
  M_SETUP,
  M_IN,
  M_OUT,
  M_REJECTED,
  M_DROPPED,
  M_HANDOFFS,
  M_SESSIONS,
  M_RESETS,
  M_RESTARTS,
};

static const struct metric {
  const char *name, *type, *help;
  enum mval v;
} metrics[] = {
    {"qpool_active", "gauge", "Idle streams ready to be taken.", M_ACTIVE},
    {"qpool_capacity", "gauge",
     "Target number of idle streams (servers: the maximum).", M_CAPACITY},
    {"qpool_interval_seconds", "gauge",
     "Current refill interval of a client pool (servers: 0).", M_INTERVAL},
    {"qpool_errors", "gauge",
     "The application-owned error counter (AddError, ResetError).", M_ERRORS},
    {"qpool_connected", "gauge",
     "1 when a client pool's connection is up, else 0.", M_CONNECTED},
    {"qpool_conns", "gauge", "QUIC connections of the pool.", M_CONNS},
    {"qpool_ready", "gauge", "1 when the pool's worker is up and serving.",
     M_READY},
    {"qpool_streams_created_total", "counter", "Streams opened or accepted.",
     M_CREATED},
    {"qpool_streams_taken_total", "counter", "Streams handed to applications.",
     M_TAKEN},
    {"qpool_streams_failed_total", "counter", "Streams that failed.", M_FAILED},
    {"qpool_streams_refused_total", "counter",
     "Streams refused (pool full or closing).", M_REFUSED},
    {"qpool_setup_errors_total", "counter",
     "Connection setup errors (dial, handshake).", M_SETUP},
    {"qpool_in_bytes_total", "counter",
     "Bytes delivered from streams to applications.", M_IN},
    {"qpool_out_bytes_total", "counter",
     "Bytes sent by applications into streams.", M_OUT},
    {"qpool_rejected_ips_total", "counter",
     "Connection attempts refused by the client-IP filter.", M_REJECTED},
    {"qpool_dropped_datagrams_total", "counter", "UDP datagrams dropped.",
     M_DROPPED},
    {"qpool_handoffs_total", "counter",
     "Connections handed from qpoold to the pool's worker.", M_HANDOFFS},
    {"qpool_sessions_total", "counter",
     "Sessions granted to applications (takes straight from the worker).",
     M_SESSIONS},
    {"qpool_stateless_resets_total", "counter",
     "Stateless resets sent for connections no worker owns any more.",
     M_RESETS},
    {"qpool_worker_restarts_total", "counter",
     "Restarts of the pool's worker process.", M_RESTARTS},
};

static void prom_value(FILE *out, const Qpool__PoolStats *p, enum mval v) {
  switch (v) {
  case M_ACTIVE:
    fprintf(out, "%" PRId32, p->active);
    return;
  case M_CAPACITY:
    fprintf(out, "%" PRId32, p->capacity);
    return;
  case M_INTERVAL:
    fprintf(out, "%.9g", (double)p->interval_ns / 1e9);
    return;
  case M_ERRORS:
    fprintf(out, "%" PRIu64, p->errors);
    return;
  case M_CONNECTED:
    fprintf(out, "%d", p->connected ? 1 : 0);
    return;
  case M_CONNS:
    fprintf(out, "%" PRId32, p->conns);
    return;
  case M_READY:
    fprintf(out, "%d", p->ready ? 1 : 0);
    return;
  case M_CREATED:
    fprintf(out, "%" PRIu64, p->streams_created);
    return;
  case M_TAKEN:
    fprintf(out, "%" PRIu64, p->streams_taken);
    return;
  case M_FAILED:
    fprintf(out, "%" PRIu64, p->streams_failed);
    return;
  case M_REFUSED:
    fprintf(out, "%" PRIu64, p->streams_refused);
    return;
  case M_SETUP:
    fprintf(out, "%" PRIu64, p->setup_errors);
    return;
  case M_IN:
    fprintf(out, "%" PRIu64, p->bytes_in);
    return;
  case M_OUT:
    fprintf(out, "%" PRIu64, p->bytes_out);
    return;
  case M_REJECTED:
    fprintf(out, "%" PRIu64, p->rejected_ip);
    return;
  case M_DROPPED:
    fprintf(out, "%" PRIu64, p->dropped_datagrams);
    return;
  case M_HANDOFFS:
    fprintf(out, "%" PRIu64, p->handoffs);
    return;
  case M_SESSIONS:
    fprintf(out, "%" PRIu64, p->sessions);
    return;
  case M_RESETS:
    fprintf(out, "%" PRIu64, p->stateless_resets);
    return;
  case M_RESTARTS:
    fprintf(out, "%" PRIu32, p->restarts);
    return;
  }
}

void qp_metrics_write(FILE *out, Qpool__PoolStats *const *pools, size_t n) {
  fprintf(out, "# HELP qpool_pool_info Pool role; always 1.\n"
               "# TYPE qpool_pool_info gauge\n");
  for (size_t i = 0; i < n; i++) {
    fputs("qpool_pool_info{pool=\"", out);
    prom_label(out, pools[i]->name);
    fprintf(out, "\",role=\"%s\"} 1\n", pools[i]->server ? "server" : "client");
  }
  for (size_t k = 0; k < sizeof(metrics) / sizeof(metrics[0]); k++) {
    const struct metric *mt = &metrics[k];
    fprintf(out, "# HELP %s %s\n# TYPE %s %s\n", mt->name, mt->help, mt->name,
            mt->type);
    for (size_t i = 0; i < n; i++) {
      fprintf(out, "%s{pool=\"", mt->name);
      prom_label(out, pools[i]->name);
      fputs("\"} ", out);
      prom_value(out, pools[i], mt->v);
      fputc('\n', out);
    }
  }
}
