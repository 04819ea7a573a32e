/* The max_stream_window setting: the size parser and formatter
 * (shared/size.c), the setting's range and messages (shared/pool_params.c),
 * and the places that use them: qpoold's key and flag (supervisor/config.c)
 * with their messages, the reload comparison, --help, the docs, the
 * engine's default and its refusal of a value out of range, and the check
 * of a worker's ConnInfo read-ahead. */
#include <ctype.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "repo_file.h"

#include "control.pb-c.h"
#include "shared/conn_info.h"
#include "shared/pool_params.h"
#include "shared/settings.h"
#include "shared/size.h"
#include "supervisor/config.h"
#include "worker/engine.h"

#define KiB UINT64_C(1024)
#define MiB (KiB * 1024)
#define GiB (MiB * 1024)

static void test_size_parse(void **state) {
  (void)state;
  static const struct {
    const char *text;
    uint64_t bytes;
  } good[] = {
      {"0", 0},
      {"1", 1},
      {"65536", 65536},
      {"262144", 262144},
      {"0KiB", 0},
      {"1KiB", KiB},
      {"512KiB", 512 * KiB},
      {"16MiB", 16 * MiB},
      {"016MiB", 16 * MiB},
      {"1GiB", GiB},
      {"4096GiB", 4096 * GiB},
      {"18446744073709551615", UINT64_MAX},
      {"17179869183GiB", UINT64_C(17179869183) << 30}, /* the largest */
  };
  for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
    uint64_t v = 42;
    if (qp_size_parse(good[i].text, &v) != 0)
      fail_msg("\"%s\" was refused", good[i].text);
    assert_int_equal(v, good[i].bytes);
  }

  static const char *const bad[] = {
      "",       "KiB",    "16MB",   "16M",    "16m", "16mib",    "16MIB",
      "16 MiB", " 16MiB", "16MiB ", "1.5MiB", "-1",  "+1",       "16KiBx",
      "16KiB1", "0x10",   "16B",    "16TiB",  "1e6", "16MiBMiB", "16\n",
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    uint64_t v = 42;
    if (qp_size_parse(bad[i], &v) != -EINVAL)
      fail_msg("\"%s\" was not refused as syntax", bad[i]);
    assert_int_equal(v, 42); /* untouched */
  }

  static const char *const big[] = {
      "18446744073709551616",
      "99999999999999999999999999",
      "17179869184GiB",
      "18014398509481984KiB",
  };
  for (size_t i = 0; i < sizeof(big) / sizeof(big[0]); i++) {
    uint64_t v = 42;
    if (qp_size_parse(big[i], &v) != -ERANGE)
      fail_msg("\"%s\" was not refused as too large", big[i]);
    assert_int_equal(v, 42);
  }
  /* syntax is checked past an overflow */
  uint64_t v = 42;
  assert_int_equal(qp_size_parse("99999999999999999999999MB", &v), -EINVAL);
  assert_int_equal(qp_size_parse(NULL, &v), -EINVAL);
  assert_int_equal(qp_size_parse("1", NULL), -EINVAL);
  assert_int_equal(v, 42);
}

static void test_size_format(void **state) {
  (void)state;
  static const struct {
    uint64_t bytes;
    const char *text;
  } cases[] = {
      {0, "0"},
      {1, "1"},
      {1023, "1023"},
      {KiB, "1KiB"},
      {64 * KiB, "64KiB"},
      {1536 * KiB, "1536KiB"},
      {16 * MiB, "16MiB"},
      {GiB, "1GiB"},
      {GiB + 1, "1073741825"},
      {3 * GiB, "3GiB"},
      {UINT64_MAX, "18446744073709551615"},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    char buf[32];
    size_t n = qp_size_format(cases[i].bytes, buf, sizeof(buf));
    assert_string_equal(buf, cases[i].text);
    assert_int_equal(n, strlen(cases[i].text));
    uint64_t back = 0;
    assert_int_equal(qp_size_parse(buf, &back), 0);
    assert_int_equal(back, cases[i].bytes);
  }
  char small[4];
  assert_int_equal(qp_size_format(16 * MiB, small, sizeof(small)), 5);
  assert_string_equal(small, "16M");
  char none[1] = {'x'};
  assert_int_equal(qp_size_format(16 * MiB, none, 0), 5); /* writes nothing */
  assert_int_equal(none[0], 'x');
}

static void test_window_range(void **state) {
  (void)state;
  assert_int_equal(QP_STREAM_WINDOW_MIN, 64 * KiB);
  assert_int_equal(QP_STREAM_WINDOW_MAX, GiB);
  assert_int_equal(QP_STREAM_WINDOW_MAX_DEFAULT, 16 * MiB);
  assert_true(qp_stream_window_ok(64 * KiB));
  assert_true(qp_stream_window_ok(QP_STREAM_WINDOW_MAX_DEFAULT));
  assert_true(qp_stream_window_ok(GiB));
  assert_false(qp_stream_window_ok(64 * KiB - 1));
  assert_false(qp_stream_window_ok(GiB + 1));
  assert_false(qp_stream_window_ok(0));
  assert_false(qp_stream_window_ok(UINT64_MAX));

  /* the setting's parser: the size parser plus the range */
  struct qp_pool_settings st;
  char why[256];
  qp_pool_settings_defaults(&st);
  static const struct {
    const char *v;
    uint64_t bytes;
  } good[] = {{"256KiB", 256 * KiB}, {"65536", 64 * KiB}, {"1GiB", GiB}};
  for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
    assert_int_equal(qp_setting_parse(QP_SET_MAX_STREAM_WINDOW, good[i].v, &st,
                                      why, sizeof(why)),
                     0);
    assert_int_equal(st.max_stream_window, good[i].bytes);
  }
  static const char *const range[] = {
      "65535", "63KiB", "0", "1073741825", "2GiB", "99999999999999999999"};
  for (size_t i = 0; i < sizeof(range) / sizeof(range[0]); i++) {
    char want[128];
    snprintf(want, sizeof(want), "\"%s\" is out of range: use 64KiB to 1GiB",
             range[i]);
    assert_int_equal(qp_setting_parse(QP_SET_MAX_STREAM_WINDOW, range[i], &st,
                                      why, sizeof(why)),
                     -EINVAL);
    assert_string_equal(why, want);
  }
  assert_int_equal(
      qp_setting_parse(QP_SET_MAX_STREAM_WINDOW, "16MB", &st, why, sizeof(why)),
      -EINVAL);
  assert_string_equal(why,
                      "\"16MB\" is not a size: use 64KiB to 1GiB, in "
                      "bytes or with KiB, MiB or GiB (e.g. 512KiB, 16MiB)");
  assert_int_equal(
      qp_setting_parse(QP_SET_MAX_STREAM_WINDOW, "", &st, why, sizeof(why)),
      -EINVAL);
  assert_int_equal(st.max_stream_window, GiB); /* the last good one */

  /* the connection's cap: four streams' worth, never below its start */
  assert_int_equal(qp_conn_window_max(64 * KiB), QP_CONN_WINDOW_INIT);
  assert_int_equal(qp_conn_window_max(256 * KiB), QP_CONN_WINDOW_INIT);
  assert_int_equal(qp_conn_window_max(16 * MiB), 64 * MiB);
  assert_int_equal(qp_conn_window_max(GiB), 4 * GiB);
}

static int args(struct sup_config *c, const char *line, char *err,
                size_t errlen) {
  char buf[512], *argv[32];
  int argc = 0;
  snprintf(buf, sizeof(buf), "qpoold %s", line);
  for (char *t = strtok(buf, " "); t && argc < 31; t = strtok(NULL, " "))
    argv[argc++] = t;
  argv[argc] = NULL;
  return sup_config_from_args(c, argc, argv, err, errlen);
}

static int setup(void **state) {
  *state = calloc(1, sizeof(struct sup_config));
  return *state ? 0 : -1;
}

static int teardown(void **state) {
  free(*state);
  return 0;
}

#define RANGE_MSG "is out of range: use 64KiB to 1GiB"
#define SYNTAX_MSG                                                             \
  "is not a size: use 64KiB to 1GiB, in bytes or with KiB, MiB or GiB "        \
  "(e.g. 512KiB, 16MiB)"

static void test_config_flag(void **state) {
  struct sup_config *c = *state;
  char err[256];
  assert_int_equal(args(c, "server --name a --listen :1", err, sizeof(err)), 0);
  assert_int_equal(c->pools[0].set.max_stream_window, 16 * MiB);
  assert_int_equal(args(c,
                        "server --name a --listen :1 --max-stream-window "
                        "256KiB",
                        err, sizeof(err)),
                   0);
  assert_int_equal(c->pools[0].set.max_stream_window, 256 * KiB);
  assert_int_equal(args(c,
                        "client --name b --target 127.0.0.1:1 "
                        "--max-stream-window=1GiB",
                        err, sizeof(err)),
                   0);
  assert_int_equal(c->pools[0].set.max_stream_window, GiB);
  assert_int_equal(args(c,
                        "client --name b --target 127.0.0.1:1 "
                        "--max-stream-window 65536",
                        err, sizeof(err)),
                   0);
  assert_int_equal(c->pools[0].set.max_stream_window, 64 * KiB);

  static const struct {
    const char *line, *msg;
  } bad[] = {
      {"server --name a --listen :1 --max-stream-window 32KiB",
       "--max-stream-window: \"32KiB\" " RANGE_MSG},
      {"client --name a --target 127.0.0.1:1 --max-stream-window=2GiB",
       "--max-stream-window: \"2GiB\" " RANGE_MSG},
      {"server --name a --listen :1 --max-stream-window 0",
       "--max-stream-window: \"0\" " RANGE_MSG},
      {"server --name a --listen :1 --max-stream-window 16MB",
       "--max-stream-window: \"16MB\" " SYNTAX_MSG},
      {"server --name a --listen :1 --max-stream-window=",
       "--max-stream-window: \"\" " SYNTAX_MSG},
      {"server --name a --listen :1 --max-stream-window 1MiB "
       "--max-stream-window 2MiB",
       "--max-stream-window: given twice"},
      {"server --name a --listen :1 --max-stream-window",
       "--max-stream-window: needs a value"},
      {"--config /nonexistent --max-stream-window 1MiB",
       "--max-stream-window: not with --config (set max_stream_window in "
       "the file)"},
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    memset(c, 0x5a, sizeof(c->pools[0])); /* untouched on error */
    assert_int_equal(args(c, bad[i].line, err, sizeof(err)), -EINVAL);
    assert_string_equal(err, bad[i].msg);
    assert_int_equal(c->pools[0].set.max_stream_window, 0x5a5a5a5a5a5a5a5aull);
  }
}

static void test_config_file(void **state) {
  struct sup_config *c = *state;
  char err[256];
  const char *good = "[pool a]\n"
                     "mode = server\n"
                     "listen = :1\n"
                     "max_stream_window = 256KiB ; a slow link\n"
                     "[pool b]\n"
                     "mode = client\n"
                     "target = 127.0.0.1:1\n"
                     "max_stream_window = 1073741824\n"
                     "[pool c]\n"
                     "mode = client\n"
                     "target = 127.0.0.1:2\n";
  assert_int_equal(sup_config_load_string(c, good, "t.conf", err, sizeof(err)),
                   0);
  assert_int_equal(c->npools, 3);
  assert_int_equal(c->pools[0].set.max_stream_window, 256 * KiB);
  assert_int_equal(c->pools[1].set.max_stream_window, GiB);
  assert_int_equal(c->pools[2].set.max_stream_window,
                   QP_STREAM_WINDOW_MAX_DEFAULT);

  static const struct {
    const char *text, *msg;
  } bad[] = {
      {"[pool a]\nmode = server\nlisten = :1\nmax_stream_window = 16mb\n",
       "t.conf:4: max_stream_window: \"16mb\" " SYNTAX_MSG},
      {"[pool a]\nmode = client\ntarget = 127.0.0.1:1\n\n"
       "max_stream_window = 4GiB\n",
       "t.conf:5: max_stream_window: \"4GiB\" " RANGE_MSG},
      {"[pool a]\nmode = server\nmax_stream_window = 1MiB\nlisten = :1\n"
       "max_stream_window = 2MiB\n",
       "t.conf:5: max_stream_window: set twice in [pool a] (first on line "
       "3)"},
      {"[global]\nmax_stream_window = 1MiB\n",
       "t.conf:2: max_stream_window: not a [global] key (it belongs in a "
       "[pool NAME] section)"},
      {"[pool a]\nmode = server\nlisten = :1\nmax-stream-window = 1MiB\n",
       "t.conf:4: max-stream-window: unknown key (did you mean "
       "max_stream_window?)"},
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    assert_int_equal(
        sup_config_load_string(c, bad[i].text, "t.conf", err, sizeof(err)),
        -EINVAL);
    assert_string_equal(err, bad[i].msg);
  }
}

/* SIGHUP: a pool whose window changed is re-created. */
static void test_config_equal(void **state) {
  struct sup_config *c = *state;
  char err[256];
  assert_int_equal(args(c, "server --name a --listen :1", err, sizeof(err)), 0);
  struct sup_pool_cfg a = c->pools[0], b = c->pools[0];
  assert_true(sup_pool_cfg_equal(&a, &b));
  b.set.max_stream_window = 256 * KiB;
  assert_false(sup_pool_cfg_equal(&a, &b));
  /* the same value written another way is the same pool */
  assert_int_equal(args(c,
                        "server --name a --listen :1 --max-stream-window "
                        "16384KiB",
                        err, sizeof(err)),
                   0);
  assert_true(sup_pool_cfg_equal(&a, &c->pools[0]));
}

static void test_usage(void **state) {
  (void)state;
  char *text = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&text, &len);
  assert_non_null(f);
  sup_usage(f);
  fclose(f);
  assert_non_null(strstr(text, "--max-stream-window SIZE"));
  /* the words, whatever the wrapping */
  char *w = text, *r = text;
  for (; *r; r++)
    if (!(isspace((unsigned char)*r) && w > text && w[-1] == ' '))
      *w++ = isspace((unsigned char)*r) ? ' ' : *r;
  *w = '\0';
  assert_non_null(strstr(text, "64KiB to 1GiB (default 16MiB)"));
  assert_non_null(strstr(text, "Sizes are bytes or a whole"));
  free(text);
}

/* docs/qpoold-config.md describes the key and the flag. */
static void test_docs(void **state) {
  (void)state;
  char *doc = repo_file("docs/qpoold-config.md");
  if (!doc)
    skip();
  assert_non_null(strstr(doc, "| `max_stream_window` | both | `16MiB`"));
  assert_non_null(strstr(doc, "| `--max-stream-window SIZE` | `16MiB` |"));
  assert_non_null(strstr(doc, "`64KiB` to `1GiB`"));
  free(doc);
}

static void test_engine(void **state) {
  (void)state;
  struct wrk_pool_config cfg;
  wrk_pool_config_init(&cfg, WRK_CLIENT);
  assert_int_equal(cfg.set.max_stream_window, QP_STREAM_WINDOW_MAX_DEFAULT);
  wrk_pool_config_init(&cfg, WRK_SERVER);
  assert_int_equal(cfg.set.max_stream_window, QP_STREAM_WINDOW_MAX_DEFAULT);
  uv_loop_t loop;
  assert_int_equal(uv_loop_init(&loop), 0);
  static const uint64_t bad[] = {0, 64 * KiB - 1, GiB + 1};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    wrk_pool *p = (wrk_pool *)0x1;
    char err[128], want[128];
    cfg.set.max_stream_window = bad[i];
    assert_int_equal(wrk_pool_new(&loop, &cfg, &p, err, sizeof(err)), -EINVAL);
    snprintf(want, sizeof(want), "max_stream_window %llu is out of range",
             (unsigned long long)bad[i]);
    assert_string_equal(err, want);
    assert_ptr_equal(p, (wrk_pool *)0x1);
  }
  assert_int_equal(uv_loop_close(&loop), 0);
}

/* What a worker says about a connection's read-ahead is checked. */
static void test_conn_info(void **state) {
  (void)state;
  Qpool__ConnInfo m;
  qpool__conn_info__init(&m);
  m.local = "127.0.0.1:4433";
  m.remote = "127.0.0.1:5";
  m.alpn = "np-quic";
  m.version = "TLS1.3";
  m.cipher = "TLS_AES_128_GCM_SHA256";
  const char *why = "unset";
  assert_int_equal(qp_conn_info_check(&m, &why), 0); /* absent: fine */
  m.has_pacing_waits = m.has_max_burst = m.has_read_ahead = 1;
  m.pacing_waits = UINT64_MAX; /* counters: any value */
  m.max_burst = UINT64_MAX;
  m.read_ahead = 64 * KiB;
  assert_int_equal(qp_conn_info_check(&m, &why), 0);
  assert_null(why);
  m.read_ahead = GiB;
  assert_int_equal(qp_conn_info_check(&m, &why), 0);
  static const uint64_t bad[] = {0, 64 * KiB - 1, GiB + 1, UINT64_MAX};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    m.read_ahead = bad[i];
    assert_int_equal(qp_conn_info_check(&m, &why), -EPROTO);
    assert_string_equal(why, "a read-ahead out of range");
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_size_parse),
      cmocka_unit_test(test_size_format),
      cmocka_unit_test(test_window_range),
      cmocka_unit_test_setup_teardown(test_config_flag, setup, teardown),
      cmocka_unit_test_setup_teardown(test_config_file, setup, teardown),
      cmocka_unit_test_setup_teardown(test_config_equal, setup, teardown),
      cmocka_unit_test(test_usage),
      cmocka_unit_test(test_docs),
      cmocka_unit_test(test_engine),
      cmocka_unit_test(test_conn_info),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
