/* The congestion_control setting: the one table of names and ngtcp2 values
 * and its parser (shared/pool_params.c), and the places that use it:
 * qpoold's key and flag (supervisor/config.c) with their messages, the
 * reload comparison, --help, the engine's default and its refusal of an
 * unknown value, and the check of a worker's ConnInfo. */
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
#include "supervisor/config.h"
#include "worker/engine.h"

static void test_parse(void **state) {
  (void)state;
  int algo = -1;
  assert_int_equal(qp_cc_parse("cubic", &algo), 0);
  assert_int_equal(algo, NGTCP2_CC_ALGO_CUBIC);
  assert_int_equal(qp_cc_parse("bbr", &algo), 0);
  assert_int_equal(algo, NGTCP2_CC_ALGO_BBR);
  assert_int_equal(qp_cc_parse("bbr2", &algo), 0);
  assert_int_equal(algo, NGTCP2_CC_ALGO_BBR2);

  static const char *const bad[] = {
      "",     "BBR",  "Cubic", "reno",  "bbr3",    "bbr ",
      " bbr", "bbr1", "cubi",  "bbrv2", "cubic\n",
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    algo = 42;
    if (qp_cc_parse(bad[i], &algo) != -EINVAL)
      fail_msg("\"%s\" was accepted", bad[i]);
    assert_int_equal(algo, 42); /* untouched */
  }
  assert_int_equal(qp_cc_parse(NULL, &algo), -EINVAL);
  assert_int_equal(algo, 42);
}

static void test_names(void **state) {
  (void)state;
  assert_string_equal(qp_cc_name(NGTCP2_CC_ALGO_CUBIC), "cubic");
  assert_string_equal(qp_cc_name(NGTCP2_CC_ALGO_BBR), "bbr");
  assert_string_equal(qp_cc_name(NGTCP2_CC_ALGO_BBR2), "bbr2");
  assert_null(qp_cc_name(NGTCP2_CC_ALGO_RENO)); /* not offered */
  assert_null(qp_cc_name(-1));
  assert_null(qp_cc_name(99));

  /* the table: three entries, each name and value once, round trips */
  assert_int_equal(qp_cc_count, 3);
  for (size_t i = 0; i < qp_cc_count; i++) {
    int algo = -1;
    assert_int_equal(qp_cc_parse(qp_cc_table[i].name, &algo), 0);
    assert_int_equal(algo, qp_cc_table[i].algo);
    assert_string_equal(qp_cc_name(algo), qp_cc_table[i].name);
    assert_true(qp_cc_table[i].what && *qp_cc_table[i].what);
    for (size_t j = 0; j < i; j++) {
      assert_string_not_equal(qp_cc_table[i].name, qp_cc_table[j].name);
      assert_int_not_equal(qp_cc_table[i].algo, qp_cc_table[j].algo);
    }
  }

  /* the default is bbr (docs/performance.md) */
  assert_int_equal(QP_CC_DEFAULT, NGTCP2_CC_ALGO_BBR);
  assert_string_equal(qp_cc_name(QP_CC_DEFAULT), "bbr");

  char buf[64];
  assert_string_equal(qp_cc_names(buf, sizeof(buf)), "cubic, bbr or bbr2");
  char small[5];
  assert_string_equal(qp_cc_names(small, sizeof(small)), "cubi");
  char none[1] = {'x'};
  qp_cc_names(none, 0); /* writes nothing */
  assert_int_equal(none[0], 'x');
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

static void test_config_flag(void **state) {
  struct sup_config *c = *state;
  char err[256];
  assert_int_equal(args(c, "server --name a --listen :1", err, sizeof(err)), 0);
  assert_int_equal(c->pools[0].set.cc_algo, QP_CC_DEFAULT);
  assert_int_equal(args(c,
                        "server --name a --listen :1 --congestion-control "
                        "cubic",
                        err, sizeof(err)),
                   0);
  assert_int_equal(c->pools[0].set.cc_algo, NGTCP2_CC_ALGO_CUBIC);
  assert_int_equal(args(c,
                        "client --name b --target 127.0.0.1:1 "
                        "--congestion-control=bbr2",
                        err, sizeof(err)),
                   0);
  assert_int_equal(c->pools[0].set.cc_algo, NGTCP2_CC_ALGO_BBR2);

  static const struct {
    const char *line, *msg;
  } bad[] = {
      {"server --name a --listen :1 --congestion-control reno",
       "--congestion-control: \"reno\" is not a congestion controller: use "
       "cubic, bbr or bbr2"},
      {"client --name a --target 127.0.0.1:1 --congestion-control=",
       "--congestion-control: \"\" is not a congestion controller: use "
       "cubic, bbr or bbr2"},
      {"server --name a --listen :1 --congestion-control bbr "
       "--congestion-control bbr",
       "--congestion-control: given twice"},
      {"server --name a --listen :1 --congestion-control",
       "--congestion-control: needs a value"},
      {"--config /nonexistent --congestion-control bbr",
       "--congestion-control: not with --config (set congestion_control in "
       "the file)"},
      {"server --name a --listen :1 --congestion bbr",
       "unknown option --congestion (did you mean --congestion-control?)"},
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    assert_int_equal(args(c, bad[i].line, err, sizeof(err)), -EINVAL);
    assert_string_equal(err, bad[i].msg);
  }
}

static void test_config_file(void **state) {
  struct sup_config *c = *state;
  char err[256];
  const char *good = "[pool a]\n"
                     "mode = server\n"
                     "listen = :1\n"
                     "congestion_control = cubic ; the old way\n"
                     "[pool b]\n"
                     "mode = client\n"
                     "target = 127.0.0.1:1\n"
                     "congestion_control = bbr2\n"
                     "[pool c]\n"
                     "mode = client\n"
                     "target = 127.0.0.1:2\n";
  assert_int_equal(sup_config_load_string(c, good, "t.conf", err, sizeof(err)),
                   0);
  assert_int_equal(c->npools, 3);
  assert_int_equal(c->pools[0].set.cc_algo, NGTCP2_CC_ALGO_CUBIC);
  assert_int_equal(c->pools[1].set.cc_algo, NGTCP2_CC_ALGO_BBR2);
  assert_int_equal(c->pools[2].set.cc_algo, NGTCP2_CC_ALGO_BBR);

  static const struct {
    const char *text, *msg;
  } bad[] = {
      {"[pool a]\nmode = server\nlisten = :1\ncongestion_control = BBR\n",
       "t.conf:4: congestion_control: \"BBR\" is not a congestion "
       "controller: use cubic, bbr or bbr2"},
      {"[pool a]\nmode = server\ncongestion_control = bbr\nlisten = :1\n"
       "congestion_control = cubic\n",
       "t.conf:5: congestion_control: set twice in [pool a] (first on line "
       "3)"},
      {"[global]\ncongestion_control = bbr\n",
       "t.conf:2: congestion_control: not a [global] key (it belongs in a "
       "[pool NAME] section)"},
      {"[pool a]\nmode = server\nlisten = :1\ncongestion-control = bbr\n",
       "t.conf:4: congestion-control: unknown key (did you mean "
       "congestion_control?)"},
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    assert_int_equal(
        sup_config_load_string(c, bad[i].text, "t.conf", err, sizeof(err)),
        -EINVAL);
    assert_string_equal(err, bad[i].msg);
  }
}

/* SIGHUP: a pool whose controller changed is re-created. */
static void test_config_equal(void **state) {
  struct sup_config *c = *state;
  char err[256];
  assert_int_equal(args(c, "server --name a --listen :1", err, sizeof(err)), 0);
  struct sup_pool_cfg a = c->pools[0], b = c->pools[0];
  assert_true(sup_pool_cfg_equal(&a, &b));
  b.set.cc_algo = NGTCP2_CC_ALGO_CUBIC;
  assert_false(sup_pool_cfg_equal(&a, &b));
}

static void test_usage(void **state) {
  (void)state;
  char *text = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&text, &len);
  assert_non_null(f);
  sup_usage(f);
  fclose(f);
  assert_non_null(strstr(text, "--congestion-control NAME"));
  assert_non_null(strstr(text, "(default bbr)"));
  for (size_t i = 0; i < qp_cc_count; i++) {
    char line[128];
    snprintf(line, sizeof(line), " %-6s %s\n", qp_cc_table[i].name,
             qp_cc_table[i].what);
    if (!strstr(text, line))
      fail_msg("--help lacks %s", line);
  }
  free(text);
}

/* docs/qpoold-config.md describes the key, the flag and every name. */
static void test_docs(void **state) {
  (void)state;
  char *doc = repo_file("docs/qpoold-config.md");
  if (!doc)
    skip();
  assert_non_null(strstr(doc, "| `congestion_control` | both | `bbr`"));
  assert_non_null(strstr(doc, "| `--congestion-control NAME` | `bbr` |"));
  for (size_t i = 0; i < qp_cc_count; i++) {
    char row[32];
    snprintf(row, sizeof(row), "| `%s` |", qp_cc_table[i].name);
    if (!strstr(doc, row))
      fail_msg("docs/qpoold-config.md does not describe %s", row);
  }
  free(doc);
}

static void test_engine(void **state) {
  (void)state;
  struct wrk_pool_config cfg;
  wrk_pool_config_init(&cfg, WRK_CLIENT);
  assert_int_equal(cfg.set.cc_algo, QP_CC_DEFAULT);
  wrk_pool_config_init(&cfg, WRK_SERVER);
  assert_int_equal(cfg.set.cc_algo, QP_CC_DEFAULT);
  uv_loop_t loop;
  assert_int_equal(uv_loop_init(&loop), 0);
  wrk_pool *p = (wrk_pool *)0x1;
  char err[128];
  cfg.set.cc_algo = NGTCP2_CC_ALGO_RENO; /* ngtcp2 has it; pools do not */
  assert_int_equal(wrk_pool_new(&loop, &cfg, &p, err, sizeof(err)), -EINVAL);
  assert_string_equal(err, "unknown congestion controller 0");
  assert_ptr_equal(p, (wrk_pool *)0x1);
  assert_int_equal(uv_loop_close(&loop), 0);
}

/* What a worker says about a connection is checked before anyone uses it. */
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
  m.congestion_control = "bbr2";
  assert_int_equal(qp_conn_info_check(&m, &why), 0);
  assert_null(why);
  m.congestion_control = "reno";
  assert_int_equal(qp_conn_info_check(&m, &why), -EPROTO);
  assert_string_equal(why, "an unknown congestion controller");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_parse),
      cmocka_unit_test(test_names),
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
