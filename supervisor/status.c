/* The supervisor's view of every pool as text: one line per pool
 * (qp_stats_line: every counter and gauge under its stats --json name, as
 * `qpoolctl stats` prints it), written
 * atomically to a file (QPOOL_STATUS_FILE) or logged (SIGUSR1). The control
 * socket's Stats request replaces this for applications. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "shared/log.h"
#include "shared/stats.h"
#include "supervisor/sup.h"

void sup_status_write(const struct sup *s, const char *path) {
  size_t n;
  Qpool__PoolStats **ptrs = sup_stats_collect(s, NULL, &n);
  if (!ptrs)
    return;
  if (!path) {
    for (size_t i = 0; i < n; i++) {
      char *line = NULL;
      size_t len = 0;
      FILE *f = open_memstream(&line, &len);
      if (!f)
        break;
      qp_stats_line(f, ptrs[i]);
      if (fclose(f) == 0) {
        line[strcspn(line, "\n")] = 0;
        qp_info("%s", line);
      }
      free(line);
    }
    free(ptrs);
    return;
  }
  char tmp[4200];
  snprintf(tmp, sizeof(tmp), "%s.tmp", path);
  FILE *f = fopen(tmp, "w");
  if (f) {
    for (size_t i = 0; i < n; i++)
      qp_stats_line(f, ptrs[i]);
    if (fclose(f) == 0)
      rename(tmp, path);
  }
  free(ptrs);
}
