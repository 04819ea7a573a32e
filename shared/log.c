/* Logging to stderr: "<ident>[pid] <LEVEL>: message", one write(2) per line so
 * that lines of several processes sharing stderr do not interleave. */
#include "shared/log.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

/* The one place with process-wide mutable state: the logger's settings. */
#define LOG_IDENT_MAX 32
#define LOG_LINE_MAX 2048 /* below PIPE_BUF, so a write to a pipe is atomic */

static char log_ident[LOG_IDENT_MAX] = "qpool";
static atomic_int log_level = QP_LOG_INFO;
static atomic_int log_env_fixed; /* 1: QPOOL_LOG chose the level */
static pthread_once_t log_once = PTHREAD_ONCE_INIT;

static const char *const level_names[] = {"ERROR", "WARN", "INFO", "DEBUG"};

static void log_init_env(void) {
  static const char *const names[] = {"error", "warn", "info", "debug"};
  const char *v = getenv("QPOOL_LOG");
  if (!v || !*v)
    return;
  for (int i = 0; i < 4; i++) {
    if (strcasecmp(v, names[i]) == 0) {
      atomic_store(&log_level, i);
      atomic_store(&log_env_fixed, 1);
      return;
    }
  }
}

static void log_init(void) {
  pthread_once(&log_once, log_init_env);
}

void qp_log_set_ident(const char *ident) {
  log_init();
  if (!ident)
    ident = "qpool";
  size_t n = strnlen(ident, LOG_IDENT_MAX - 1);
  memcpy(log_ident, ident, n);
  log_ident[n] = '\0';
}

void qp_log_set_level(enum qp_log_level level) {
  log_init();
  if (atomic_load(&log_env_fixed))
    return; /* the environment overrides what the program asks for */
  if ((int)level < QP_LOG_ERROR)
    level = QP_LOG_ERROR;
  if (level > QP_LOG_DEBUG)
    level = QP_LOG_DEBUG;
  atomic_store(&log_level, (int)level);
}

int qp_log_enabled(enum qp_log_level level) {
  log_init();
  return (int)level <= atomic_load(&log_level);
}

void qp_log(enum qp_log_level level, const char *fmt, ...) {
  int saved_errno = errno;
  if (!qp_log_enabled(level))
    return;
  if ((int)level < QP_LOG_ERROR || level > QP_LOG_DEBUG)
    level = QP_LOG_ERROR;

  char line[LOG_LINE_MAX];
  const size_t room = sizeof(line) - 1; /* keep one byte for '\n' */
  int n = snprintf(line, room + 1, "%s[%ld] %s: ", log_ident, (long)getpid(),
                   level_names[level]);
  size_t used = n < 0 ? 0 : (size_t)n;
  if (used > room)
    used = room;

  if (used < room) {
    va_list ap;
    va_start(ap, fmt);
    errno = saved_errno; /* so that %m reports the caller's errno */
    n = vsnprintf(line + used, room + 1 - used, fmt, ap);
    va_end(ap);
    if (n > 0) {
      if ((size_t)n > room - used) {
        used = room; /* truncated: mark it */
        memcpy(line + room - 3, "...", 3);
      } else {
        used += (size_t)n;
      }
    }
  }
  while (used > 0 && line[used - 1] == '\n')
    used--; /* the caller's own newline would make an empty line */
  /* Embedded newlines would break "one event per line". */
  for (size_t i = 0; i < used; i++)
    if (line[i] == '\n' || line[i] == '\r')
      line[i] = ' ';
  line[used++] = '\n';

  ssize_t w;
  do
    w = write(STDERR_FILENO, line, used);
  while (w < 0 && errno == EINTR);
  errno = saved_errno;
}
