/* Logging for every qpool binary: one line per event on stderr, with the
 * process identity and a level; no allocation, safe on any thread. */
#ifndef QP_SHARED_LOG_H
#define QP_SHARED_LOG_H

enum qp_log_level { QP_LOG_ERROR = 0, QP_LOG_WARN, QP_LOG_INFO, QP_LOG_DEBUG };

/* Sets the name printed before every line (copied; at most 31 bytes). */
void qp_log_set_ident(const char *ident);
/* Lines above `level` are discarded. Default QP_LOG_INFO; the environment
 * variable QPOOL_LOG=error|warn|info|debug overrides it at the first call. */
void qp_log_set_level(enum qp_log_level level);
int qp_log_enabled(enum qp_log_level level);
void qp_log(enum qp_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#define qp_err(...) qp_log(QP_LOG_ERROR, __VA_ARGS__)
#define qp_warn(...) qp_log(QP_LOG_WARN, __VA_ARGS__)
#define qp_info(...) qp_log(QP_LOG_INFO, __VA_ARGS__)
#define qp_debug(...)                                                          \
  do {                                                                         \
    if (qp_log_enabled(QP_LOG_DEBUG))                                          \
      qp_log(QP_LOG_DEBUG, __VA_ARGS__);                                       \
  } while (0)

#endif
