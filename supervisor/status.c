/* The supervisor's view of every pool as text: one line per pool, written
 * atomically to a file (QPOOL_STATUS_FILE) or logged (SIGUSR1). The control
 * socket's Stats request replaces this for applications. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "shared/log.h"
#include "supervisor/sup.h"

static int line(const struct sup *s, const struct sup_pool *p, char *buf,
                size_t len) {
  const Qpool__Report *r = &p->report;
  const struct sup_worker *w = s->workers[p->worker];
  return snprintf(
      buf, len,
      "pool=%s role=%s worker=%d pid=%d restarts=%u active=%d capacity=%d "
      "interval_ms=%llu errors=%llu connected=%d conns=%d created=%llu "
      "taken=%llu failed=%llu refused=%llu setup_errors=%llu "
      "rejected_ip=%llu dropped=%llu handoffs=%llu sessions=%llu "
      "resets=%llu error=\"%s\"\n",
      p->cfg.name, p->cfg.server ? "server" : "client", p->worker, (int)w->pid,
      w->restarts, r->active, r->capacity,
      (unsigned long long)(r->interval_ns / 1000000),
      (unsigned long long)r->errors, (int)r->connected, r->conns,
      (unsigned long long)r->streams_created,
      (unsigned long long)r->streams_taken,
      (unsigned long long)r->streams_failed,
      (unsigned long long)r->streams_refused,
      (unsigned long long)r->setup_errors, (unsigned long long)p->rejected_ip,
      (unsigned long long)(p->dropped + r->dropped_datagrams),
      (unsigned long long)p->handoffs, (unsigned long long)p->sessions,
      (unsigned long long)p->resets, p->last_error);
}

void sup_status_write(const struct sup *s, const char *path) {
  char buf[1024];
  if (!path) {
    for (size_t i = 0; i < s->npools; i++) {
      line(s, s->pools[i], buf, sizeof(buf));
      buf[strcspn(buf, "\n")] = 0;
      qp_info("%s", buf);
    }
    return;
  }
  char tmp[4200];
  snprintf(tmp, sizeof(tmp), "%s.tmp", path);
  FILE *f = fopen(tmp, "w");
  if (!f)
    return;
  for (size_t i = 0; i < s->npools; i++) {
    line(s, s->pools[i], buf, sizeof(buf));
    fputs(buf, f);
  }
  if (fclose(f) == 0)
    rename(tmp, path);
}
