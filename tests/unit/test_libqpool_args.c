/* libqpool: argument checks, ID text forms and error sentences (no qpoold
 * needed). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "lib/internal.h" /* to read the flags a pool would give qpoold */
#include "qpool.h"
#include "shared/pool_params.h"

static void test_id_format_parse(void **st) {
  (void)st;
  char buf[9];
  qp_id_format(0, buf);
  assert_string_equal(buf, "00000000");
  qp_id_format(0x0a1b2c3d, buf);
  assert_string_equal(buf, "0a1b2c3d");
  uint32_t id = 7;
  assert_int_equal(qp_id_parse("0a1b2c3d", &id), 0);
  assert_int_equal(id, 0x0a1b2c3d);
  assert_int_equal(qp_id_parse("FFFFFFFF", &id), 0);
  assert_int_equal(id, 0xffffffffu);
  id = 7;
  assert_int_equal(qp_id_parse("0a1b2c3", &id), -EINVAL);
  assert_int_equal(qp_id_parse("0a1b2c3d0", &id), -EINVAL);
  assert_int_equal(qp_id_parse("0a1b2c3g", &id), -EINVAL);
  assert_int_equal(qp_id_parse("", &id), -EINVAL);
  assert_int_equal(qp_id_parse(NULL, &id), -EINVAL);
  assert_int_equal(id, 7);
}

static void test_strerror(void **st) {
  (void)st;
  assert_string_equal(qp_strerror(-ETIMEDOUT), "no stream before the timeout");
  assert_string_equal(qp_strerror(ETIMEDOUT), "no stream before the timeout");
  assert_string_equal(qp_strerror(-ENOENT), "no pool of that name");
  assert_string_equal(qp_strerror(0), "success");
  assert_non_null(qp_strerror(-EXDEV));
  assert_non_null(qp_strerror(-99999));
}

static void test_attach_args(void **st) {
  (void)st;
  qp_pool *p = (qp_pool *)0x1;
  assert_int_equal(qp_pool_attach("/nonexistent/qpoold.sock", NULL, &p),
                   -EINVAL);
  assert_int_equal(qp_pool_attach("/nonexistent/qpoold.sock", "", &p), -EINVAL);
  assert_int_equal(qp_pool_attach("/nonexistent/qpoold.sock", "a", NULL),
                   -EINVAL);
  char longpath[200];
  memset(longpath, 'x', sizeof(longpath) - 1);
  longpath[sizeof(longpath) - 1] = '\0';
  assert_int_equal(qp_pool_attach(longpath, "a", &p), -EINVAL);
  assert_int_equal(qp_pool_attach("/nonexistent/qpoold.sock", "a", &p),
                   -ECONNREFUSED);
  setenv("QPOOL_CONTROL", "/nonexistent/env.sock", 1);
  assert_int_equal(qp_pool_attach(NULL, "a", &p), -ECONNREFUSED);
  assert_ptr_equal(p, (qp_pool *)0x1); /* untouched on failure */
  qp_close(NULL);                      /* a no-op */
}

static void test_null_handle(void **st) {
  (void)st;
  int fd = 5;
  uint32_t id;
  assert_int_equal(qp_incoming_get(NULL, 0, &id, &fd), -EINVAL);
  assert_int_equal(fd, -1);
  fd = 5;
  assert_int_equal(qp_outgoing_get(NULL, 0, 0, &fd), -EINVAL);
  assert_int_equal(fd, -1);
  assert_int_equal(qp_active(NULL), -EINVAL);
  assert_int_equal(qp_capacity(NULL), -EINVAL);
  assert_int_equal(qp_ready(NULL), -EINVAL);
  assert_int_equal(qp_interval(NULL), -EINVAL);
  assert_int_equal(qp_error_count(NULL), -EINVAL);
  assert_int_equal(qp_add_error(NULL), -EINVAL);
  assert_int_equal(qp_reset_error(NULL), -EINVAL);
  assert_int_equal(qp_flush(NULL), -EINVAL);
}

static void test_embedded_args(void **st) {
  (void)st;
  qp_pool *p = (qp_pool *)0x1;
  const int64_t S = QP_SECOND;
  /* what the reference cannot do either: capacities above the one limit,
   * durations over 24 h, a negative keep-alive, an unknown TLS mode, a bad
   * address, no out pointer */
  assert_int_equal(qp_client_pool_new(1, 70000, S, S, 0, "1", NULL, "h:1", &p),
                   -EINVAL);
  assert_int_equal(
      qp_client_pool_new(1, QP_CAP_MAX + 1, S, S, 0, "1", NULL, "h:1", &p),
      -EINVAL);
  assert_int_equal(
      qp_client_pool_new(QP_CAP_MAX + 1, 1, S, S, 0, "1", NULL, "h:1", &p),
      -EINVAL);
  assert_int_equal(
      qp_client_pool_new(1, 1, S, 25 * 3600 * S, 0, "1", NULL, "h:1", &p),
      -EINVAL);
  assert_int_equal(qp_client_pool_new(1, 1, S, S, -S, "1", NULL, "h:1", &p),
                   -EINVAL);
  assert_int_equal(qp_client_pool_new(1, 1, S, S, 0, "3", NULL, "h:1", &p),
                   -EINVAL);
  assert_int_equal(qp_client_pool_new(1, 1, S, S, 0, "2", NULL, "h:1", &p),
                   -EINVAL); /* mode 2 needs a host name */
  assert_int_equal(qp_client_pool_new(1, 1, S, S, 0, "1", NULL, NULL, &p),
                   -EINVAL);
  assert_int_equal(qp_client_pool_new(1, 1, S, S, 0, "1", NULL, "", &p),
                   -EINVAL);
  assert_int_equal(qp_client_pool_new(1, 1, S, S, 0, "1", NULL, "--x", &p),
                   -EINVAL); /* never reaches qpoold's command line */
  assert_int_equal(qp_client_pool_new(1, 1, S, S, 0, "1", NULL, "h", &p),
                   -EINVAL); /* no port */
  assert_int_equal(qp_client_pool_new(1, 1, S, S, 0, "1", NULL, "h:0", &p),
                   -EINVAL);
  assert_int_equal(qp_client_pool_new(1, 1, S, S, 0, "1", NULL, "h:70000", &p),
                   -EINVAL);
  assert_int_equal(qp_client_pool_new(1, 1, S, S, 0, "1", NULL, "[h]:1", &p),
                   -EINVAL);
  assert_int_equal(qp_client_pool_new(1, 1, S, S, 0, "1", "a\nb", "h:1", &p),
                   -EINVAL);
  assert_int_equal(qp_client_pool_new(1, 1, S, S, 0, "1", NULL, "h:1", NULL),
                   -EINVAL);
  assert_int_equal(qp_server_pool_new(QP_CAP_MAX + 1, NULL, NULL, ":1", 0, &p),
                   -EINVAL);
  assert_int_equal(qp_server_pool_new(1, NULL, NULL, "h.example:1", 0, &p),
                   -EINVAL); /* a listener binds a numeric address */
  assert_int_equal(qp_server_pool_new(1, NULL, NULL, ":0", 0, &p), -EINVAL);
  assert_int_equal(qp_server_pool_new(1, NULL, NULL, ":1", -S, &p), -EINVAL);
  assert_int_equal(qp_server_pool_new(1, NULL, NULL, NULL, 0, &p), -EINVAL);
  assert_int_equal(qp_server_pool_new(1, "-x", NULL, ":1", 0, &p), -EINVAL);
  struct qp_tls half = {.cert_file = "c.pem", .key_file = NULL};
  assert_int_equal(qp_server_pool_new(1, NULL, &half, ":1", 0, &p), -EINVAL);
  assert_ptr_equal(p, (qp_pool *)0x1); /* untouched on failure */

  /* a valid pool before its manager runs: nothing is started */
  assert_int_equal(qp_client_pool_new(1, 4, 100 * QP_MILLISECOND, S, 30 * S,
                                      NULL, NULL, "127.0.0.1:9", &p),
                   0);
  int fd = 5;
  uint32_t id;
  assert_int_equal(qp_outgoing_get(p, 0, 0, &fd), -ENOTCONN);
  assert_int_equal(fd, -1);
  assert_int_equal(qp_ready(p), 0);
  assert_int_equal(qp_active(p), -ENOTCONN);
  assert_int_equal(qp_server_manager(p), -EINVAL); /* a client pool */
  struct qp_conn_info *ci = (struct qp_conn_info *)0x1;
  assert_int_equal(qp_conn_info(p, NULL, &ci), -ENOTCONN);
  assert_null(ci); /* NULL on every failure */
  ci = (struct qp_conn_info *)0x1;
  assert_int_equal(qp_conn_info(NULL, &id, &ci), -EINVAL);
  assert_null(ci);
  assert_int_equal(qp_conn_info(p, NULL, NULL), -EINVAL);
  qp_conn_info_free(NULL);
  assert_string_equal(qp_strerror(-ESRCH),
                      "no stream with that ID on an open connection of the "
                      "pool");
  assert_string_equal(qp_strerror(-ENOLINK), "the pool has no connection now");
  assert_string_equal(qp_strerror(-ENOTCONN),
                      "the pool is not running: start it with "
                      "qp_client_manager or qp_server_manager");
  qp_close(p);
  assert_int_equal(
      qp_server_pool_new(8, "127.0.0.1,::1/128", NULL, "127.0.0.1:9", 0, &p),
      0);
  assert_int_equal(qp_incoming_get(p, 0, &id, &fd), -ENOTCONN);
  assert_int_equal(qp_client_manager(p), -EINVAL); /* a server pool */
  qp_close(p);
}

/* The flag that starts with prefix in p's qpoold command line, or NULL;
 * fails the test when it is there twice. */
static const char *flag(qp_pool *p, const char *prefix) {
  static char found[512];
  char **a = qp__embedded_args(p->emb);
  int n = 0;
  assert_non_null(a);
  for (int i = 0; a[i]; i++)
    if (!strncmp(a[i], prefix, strlen(prefix)) && n++ == 0)
      snprintf(found, sizeof(found), "%s", a[i]);
  qp__args_free(a);
  assert_true(n <= 1);
  return n ? found : NULL;
}

/* Runs the constructor with stderr in a file; returns its result and what
 * it wrote to stderr in out. */
#define CAPTURED(out, call)                                                    \
  ({                                                                           \
    fflush(stderr);                                                            \
    FILE *tmp_ = tmpfile();                                                    \
    assert_non_null(tmp_);                                                     \
    int saved_ = dup(2);                                                       \
    dup2(fileno(tmp_), 2);                                                     \
    int rc_ = (call);                                                          \
    fflush(stderr);                                                            \
    dup2(saved_, 2);                                                           \
    close(saved_);                                                             \
    rewind(tmp_);                                                              \
    size_t n_ = fread((out), 1, sizeof(out) - 1, tmp_);                        \
    (out)[n_] = 0;                                                             \
    fclose(tmp_);                                                              \
    rc_;                                                                       \
  })

/* qp_pool_congestion_control: the shared parser's names only, before the
 * manager starts, passed to the private qpoold as --congestion-control. */
static void test_embedded_congestion_control(void **st) {
  (void)st;
  const int64_t S = QP_SECOND;
  qp_pool *p = NULL;
  assert_int_equal(
      qp_client_pool_new(1, 1, S, S, 0, "1", NULL, "h.example:1", &p), 0);
  assert_null(flag(p, "--congestion-control")); /* qpoold's default: bbr */
  assert_int_equal(qp_pool_congestion_control(p, "reno"), -EINVAL);
  assert_int_equal(qp_pool_congestion_control(p, "BBR"), -EINVAL);
  assert_int_equal(qp_pool_congestion_control(p, ""), -EINVAL);
  assert_int_equal(qp_pool_congestion_control(p, NULL), -EINVAL);
  assert_int_equal(qp_pool_congestion_control(NULL, "bbr"), -EINVAL);
  assert_null(flag(p, "--congestion-control"));
  assert_int_equal(qp_pool_congestion_control(p, "cubic"), 0);
  assert_string_equal(flag(p, "--congestion-control="),
                      "--congestion-control=cubic");
  assert_int_equal(qp_pool_congestion_control(p, "bbr2"), 0); /* replaces */
  assert_string_equal(flag(p, "--congestion-control="),
                      "--congestion-control=bbr2");
  assert_int_equal(qp_pool_congestion_control(p, "bogus"), -EINVAL);
  assert_string_equal(flag(p, "--congestion-control="),
                      "--congestion-control=bbr2");
  p->emb->state = 2; /* as once the manager started */
  assert_int_equal(qp_pool_congestion_control(p, "cubic"), -EINVAL);
  p->emb->state = 0;
  qp_close(p);
  assert_int_equal(qp_server_pool_new(1, NULL, NULL, ":1", 0, &p), 0);
  assert_int_equal(qp_pool_congestion_control(p, "bbr"), 0);
  assert_string_equal(flag(p, "--congestion-control="),
                      "--congestion-control=bbr");
  qp_close(p);
}

/* qp_pool_max_stream_window: 64 KiB to 1 GiB only, before the manager
 * starts, passed to the private qpoold as --max-stream-window in the form
 * its size parser reads. */
static void test_embedded_max_stream_window(void **st) {
  (void)st;
  const int64_t S = QP_SECOND;
  qp_pool *p = NULL;
  assert_int_equal(
      qp_client_pool_new(1, 1, S, S, 0, "1", NULL, "h.example:1", &p), 0);
  assert_null(flag(p, "--max-stream-window")); /* qpoold's default: 16MiB */
  static const uint64_t bad[] = {0, 65535, (UINT64_C(1) << 30) + 1, UINT64_MAX};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
    assert_int_equal(qp_pool_max_stream_window(p, bad[i]), -EINVAL);
  assert_int_equal(qp_pool_max_stream_window(NULL, 1 << 20), -EINVAL);
  assert_null(flag(p, "--max-stream-window"));
  assert_int_equal(qp_pool_max_stream_window(p, 256 << 10), 0);
  assert_string_equal(flag(p, "--max-stream-window="),
                      "--max-stream-window=256KiB");
  assert_int_equal(qp_pool_max_stream_window(p, 65536 + 1), 0); /* replaces */
  assert_string_equal(flag(p, "--max-stream-window="),
                      "--max-stream-window=65537");
  assert_int_equal(qp_pool_max_stream_window(p, UINT64_C(1) << 30), 0);
  assert_string_equal(flag(p, "--max-stream-window="),
                      "--max-stream-window=1GiB");
  assert_int_equal(qp_pool_max_stream_window(p, 1), -EINVAL);
  assert_string_equal(flag(p, "--max-stream-window="),
                      "--max-stream-window=1GiB");
  assert_int_equal(qp_pool_congestion_control(p, "cubic"), 0); /* both */
  assert_string_equal(flag(p, "--congestion-control="),
                      "--congestion-control=cubic");
  assert_string_equal(flag(p, "--max-stream-window="),
                      "--max-stream-window=1GiB");
  p->emb->state = 2; /* as once the manager started */
  assert_int_equal(qp_pool_max_stream_window(p, 1 << 20), -EINVAL);
  p->emb->state = 0;
  qp_close(p);
  assert_int_equal(qp_server_pool_new(1, NULL, NULL, ":1", 0, &p), 0);
  assert_int_equal(qp_pool_max_stream_window(p, 65536), 0);
  assert_string_equal(flag(p, "--max-stream-window="),
                      "--max-stream-window=64KiB");
  qp_close(p);
}

/* qp_pool_set: any setting of the table by its key (or flag), checked by
 * the table's parser, of the pool's side only, before the manager starts;
 * passed to the private qpoold as its flag, a later call replacing the
 * value. */
static void test_embedded_pool_set(void **st) {
  (void)st;
  const int64_t S = QP_SECOND;
  qp_pool *p = NULL;
  assert_int_equal(
      qp_client_pool_new(1, 1, S, S, 0, "1", NULL, "h.example:1", &p), 0);
  assert_null(flag(p, "--idle-timeout"));
  assert_int_equal(qp_pool_set(p, "idle_timeout", "2m"), 0);
  assert_string_equal(flag(p, "--idle-timeout="), "--idle-timeout=2m");
  assert_int_equal(qp_pool_set(p, "--idle-timeout", "90s"), 0); /* flag */
  assert_string_equal(flag(p, "--idle-timeout="), "--idle-timeout=1m30s");
  assert_int_equal(qp_pool_set(p, "idle_timeout", "25h"), -EINVAL);
  assert_int_equal(qp_pool_set(p, "idle_timeout", "soon"), -EINVAL);
  assert_string_equal(flag(p, "--idle-timeout="), "--idle-timeout=1m30s");
  assert_int_equal(qp_pool_set(p, "min_cap", "4"), 0); /* a constructor's */
  assert_string_equal(flag(p, "--min-cap="), "--min-cap=4");
  assert_int_equal(qp_pool_set(p, "max_cap", "65536"), -EINVAL);
  assert_int_equal(qp_pool_set(p, "setup_timeout", "0"), -EINVAL);
  assert_int_equal(qp_pool_set(p, "no_such_key", "1"), -EINVAL);
  assert_int_equal(qp_pool_set(p, "listen", ":1"), -EINVAL); /* not one */
  assert_int_equal(qp_pool_set(p, NULL, "1"), -EINVAL);
  assert_int_equal(qp_pool_set(p, "max_cap", NULL), -EINVAL);
  assert_int_equal(qp_pool_set(NULL, "max_cap", "1"), -EINVAL);
  p->emb->state = 2; /* as once the manager started */
  assert_int_equal(qp_pool_set(p, "idle_timeout", "1m"), -EINVAL);
  p->emb->state = 0;
  qp_close(p);
  /* a server pool takes the settings of servers only */
  assert_int_equal(qp_server_pool_new(1, NULL, NULL, ":1", 0, &p), 0);
  assert_int_equal(qp_pool_set(p, "min_cap", "2"), -EINVAL);
  assert_int_equal(qp_pool_set(p, "tls_mode", "0"), -EINVAL);
  assert_null(flag(p, "--min-cap"));
  assert_int_equal(qp_pool_set(p, "setup_timeout", "5s"), 0);
  assert_string_equal(flag(p, "--setup-timeout="), "--setup-timeout=5s");
  qp_close(p);
}

/* What the reference fixes up is fixed up the same way (docs/protocol.md,
 * "The client pool's manager"), with a warning naming the argument and the
 * value used. */
static void test_embedded_normalise(void **st) {
  (void)st;
  const int64_t S = QP_SECOND, MS = QP_MILLISECOND;
  qp_pool *p = NULL;
  char log[1024];
  /* capacities <= 0 -> 1 */
  assert_int_equal(CAPTURED(log, qp_client_pool_new(0, -3, S, S, 0, "1", NULL,
                                                    "h.example:1", &p)),
                   0);
  assert_string_equal(flag(p, "--min-cap="), "--min-cap=1");
  assert_string_equal(flag(p, "--max-cap="), "--max-cap=1");
  assert_non_null(strstr(log, "qp_client_pool_new: min_cap 0, max_cap -3: "
                              "using min_cap 1, max_cap 1"));
  qp_close(p);
  /* min > max: swapped */
  assert_int_equal(CAPTURED(log, qp_client_pool_new(9, 3, S, S, 0, "1", NULL,
                                                    "h.example:1", &p)),
                   0);
  assert_string_equal(flag(p, "--min-cap="), "--min-cap=3");
  assert_string_equal(flag(p, "--max-cap="), "--max-cap=9");
  assert_non_null(strstr(log, "min_cap 9, max_cap 3: using min_cap 3, "
                              "max_cap 9"));
  qp_close(p);
  /* both rules at once: 8, 0 -> 1..8 */
  assert_int_equal(CAPTURED(log, qp_client_pool_new(8, 0, S, S, 0, "1", NULL,
                                                    "h.example:1", &p)),
                   0);
  assert_string_equal(flag(p, "--min-cap="), "--min-cap=1");
  assert_string_equal(flag(p, "--max-cap="), "--max-cap=8");
  qp_close(p);
  /* intervals <= 0 -> 1 s, min > max swapped */
  assert_int_equal(CAPTURED(log, qp_client_pool_new(1, 1, 0, -5 * S, 0, "1",
                                                    NULL, "h.example:1", &p)),
                   0);
  assert_string_equal(flag(p, "--min-interval="), "--min-interval=1s");
  assert_string_equal(flag(p, "--max-interval="), "--max-interval=1s");
  assert_non_null(strstr(log, "min_ivl 0s, max_ivl -5s: using min_ivl 1s, "
                              "max_ivl 1s"));
  qp_close(p);
  assert_int_equal(
      CAPTURED(log, qp_client_pool_new(1, 1, 2 * S, 500 * MS, 0, "1", NULL,
                                       "h.example:1", &p)),
      0);
  assert_string_equal(flag(p, "--min-interval="), "--min-interval=500ms");
  assert_string_equal(flag(p, "--max-interval="), "--max-interval=2s");
  assert_non_null(strstr(log, "min_ivl 2s, max_ivl 500ms: using min_ivl "
                              "500ms, max_ivl 2s"));
  qp_close(p);
  /* at the capacity limit: taken as is, no warning */
  assert_int_equal(
      CAPTURED(log, qp_client_pool_new(QP_CAP_MAX, QP_CAP_MAX, S, S, 0, "1",
                                       NULL, "[::1]:4433", &p)),
      0);
  assert_string_equal(flag(p, "--max-cap="), "--max-cap=65535");
  assert_string_equal(log, "");
  qp_close(p);
  /* servers: max_cap <= 0 -> 1; the limit is the same */
  assert_int_equal(
      CAPTURED(log, qp_server_pool_new(0, NULL, NULL, ":4433", 0, &p)), 0);
  assert_string_equal(flag(p, "--max-cap="), "--max-cap=1");
  assert_non_null(strstr(log, "qp_server_pool_new: max_cap 0: using 1"));
  qp_close(p);
  assert_int_equal(
      CAPTURED(log, qp_server_pool_new(QP_CAP_MAX, NULL, NULL, ":4433", 0, &p)),
      0);
  assert_string_equal(flag(p, "--max-cap="), "--max-cap=65535");
  assert_string_equal(log, "");
  qp_close(p);
  /* a host name target goes to qpoold as written (resolved at dial time) */
  assert_int_equal(
      qp_client_pool_new(1, 1, S, S, 0, "1", NULL, "relay.example:4433", &p),
      0);
  assert_string_equal(flag(p, "--target="), "--target=relay.example:4433");
  qp_close(p);
}

/* qp_client_pool_tls: a CA file for an embedded client pool in tls_mode
 * "2" (qpoold gets it as --ca: qpoold_tls_system.sh); everything else is
 * refused. */
static void test_client_pool_tls(void **st) {
  (void)st;
  const int64_t S = QP_SECOND;
  qp_pool *p = NULL;
  struct qp_tls ca = {.ca_file = "/etc/qpool/ca.pem"};
  assert_int_equal(qp_client_pool_tls(NULL, &ca), -EINVAL);
  assert_int_equal(
      qp_client_pool_new(1, 1, S, S, 0, "2", "relay.example", "h:1", &p), 0);
  assert_int_equal(qp_client_pool_tls(p, NULL), -EINVAL);
  struct qp_tls none = {0}, empty = {.ca_file = ""}, dash = {.ca_file = "--x"},
                cert = {.cert_file = "c", .key_file = "k", .ca_file = "ca"};
  assert_int_equal(qp_client_pool_tls(p, &none), -EINVAL);
  assert_int_equal(qp_client_pool_tls(p, &empty), -EINVAL);
  assert_int_equal(qp_client_pool_tls(p, &dash), -EINVAL);
  assert_int_equal(qp_client_pool_tls(p, &cert), -EINVAL);
  assert_int_equal(qp_client_pool_tls(p, &ca), 0);
  assert_int_equal(qp_client_pool_tls(p, &ca), -EINVAL); /* once */
  qp_close(p);
  /* modes 0 and 1 verify nothing: a CA file would be a silent no-op */
  assert_int_equal(qp_client_pool_new(1, 1, S, S, 0, "1", NULL, "h:1", &p), 0);
  assert_int_equal(qp_client_pool_tls(p, &ca), -EINVAL);
  qp_close(p);
  assert_int_equal(qp_server_pool_new(1, NULL, NULL, ":1", 0, &p), 0);
  assert_int_equal(qp_client_pool_tls(p, &ca), -EINVAL); /* a server */
  qp_close(p);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_id_format_parse),
      cmocka_unit_test(test_strerror),
      cmocka_unit_test(test_attach_args),
      cmocka_unit_test(test_null_handle),
      cmocka_unit_test(test_embedded_args),
      cmocka_unit_test(test_client_pool_tls),
      cmocka_unit_test(test_embedded_pool_set),
      cmocka_unit_test(test_embedded_normalise),
      cmocka_unit_test(test_embedded_congestion_control),
      cmocka_unit_test(test_embedded_max_stream_window),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
