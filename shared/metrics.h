/* Prometheus text exposition format 0.0.4 of PoolStats (control.proto):
 * names prefixed qpool_, base units (seconds, bytes), counters end in
 * _total; one sample per pool, labelled pool="NAME". */
#ifndef QP_SHARED_METRICS_H
#define QP_SHARED_METRICS_H

#include <stddef.h>
#include <stdio.h>

#include "control.pb-c.h"

/* The content type of the output, for HTTP. */
#define QP_METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

void qp_metrics_write(FILE *out, Qpool__PoolStats *const *pools, size_t n);

#endif
