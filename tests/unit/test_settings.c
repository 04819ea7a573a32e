/* The table of pool settings (shared/settings.c) and what is made from it:
 * every entry is whole and its PoolAdd field is the one named as its key
 * with the type its kind needs; defaults and every range bound survive
 * format -> parse; PoolAdd carries every setting through a real pack and
 * unpack, and the worker's side refuses a value out of range; qpoold's
 * flags and keys, --help, the reload comparison, the docs and the man page
 * know every setting. Walks the table: a new entry is tested without a new
 * line here. */
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

#include "ipc.pb-c.h"
#include "shared/settings.h"
#include "supervisor/config.h"

#define N QP_SET_N

static const ProtobufCFieldDescriptor *pb_field(size_t off) {
  const ProtobufCMessageDescriptor *d = &qpool__pool_add__descriptor;
  for (unsigned i = 0; i < d->n_fields; i++)
    if (d->fields[i].offset == off)
      return &d->fields[i];
  return NULL;
}

static void test_entries(void **state) {
  (void)state;
  for (int i = 0; i < N; i++) {
    const struct qp_setting *e = &qp_settings[i];
    assert_non_null(e->key);
    assert_non_null(e->metavar);
    assert_non_null(e->help);
    assert_true(e->scope & (QP_SCOPE_SERVER | QP_SCOPE_CLIENT));
    /* the flag is the key with - for _ */
    char flag[64] = "--";
    for (size_t j = 0; e->key[j]; j++)
      flag[2 + j] = e->key[j] == '_' ? '-' : e->key[j];
    assert_string_equal(e->flag, flag);
    assert_ptr_equal(qp_setting_find(e->key), e);
    assert_ptr_equal(qp_setting_find(e->flag), e);
    /* its PoolAdd field: named as the key, of its kind's type */
    const ProtobufCFieldDescriptor *f = pb_field(e->pb_off);
    assert_non_null(f);
    assert_string_equal(f->name, e->key);
    switch (e->type) {
    case QP_ST_COUNT:
      assert_int_equal(f->type, PROTOBUF_C_TYPE_INT32);
      break;
    case QP_ST_DURATION:
    case QP_ST_SIZE:
      assert_int_equal(f->type, PROTOBUF_C_TYPE_UINT64);
      break;
    default:
      assert_int_equal(f->type, PROTOBUF_C_TYPE_STRING);
    }
    if (f->label == PROTOBUF_C_LABEL_OPTIONAL) /* absent = "" */
      assert_int_equal(e->type, QP_ST_HOSTNAME);
    for (int j = 0; j < i; j++)
      assert_int_not_equal(qp_settings[j].off, e->off);
  }
  assert_null(qp_setting_find("listen")); /* qpoold's own key */
  assert_null(qp_setting_find(NULL));
}

/* value -> format -> parse gives the value back */
static void round_trip(enum qp_setting_id id,
                       const struct qp_pool_settings *s) {
  char v[300], why[256];
  struct qp_pool_settings t;
  qp_pool_settings_defaults(&t);
  qp_setting_format(id, s, v, sizeof(v));
  if (qp_settings[id].type == QP_ST_HOSTNAME && !v[0])
    return;
  if (qp_setting_parse(id, v, &t, why, sizeof(why)) < 0)
    fail_msg("%s: \"%s\" does not parse back: %s", qp_settings[id].key, v, why);
  assert_true(qp_setting_equal(id, s, &t));
}

/* sets setting id of s to n (a number of its kind) */
static void set_num(struct qp_pool_settings *s, enum qp_setting_id id,
                    uint64_t n) {
  const struct qp_setting *e = &qp_settings[id];
  char *p = (char *)s + e->off;
  if (e->type == QP_ST_COUNT)
    *(int32_t *)p = (int32_t)n;
  else
    *(uint64_t *)p = n;
}

static void test_defaults_and_bounds(void **state) {
  (void)state;
  struct qp_pool_settings d, s;
  char err[256];
  qp_pool_settings_defaults(&d);
  assert_int_equal(qp_pool_settings_check(&d, err, sizeof(err)), 0);
  for (int i = 0; i < N; i++) {
    const struct qp_setting *e = &qp_settings[i];
    round_trip((enum qp_setting_id)i, &d);
    if (e->type != QP_ST_COUNT && e->type != QP_ST_DURATION &&
        e->type != QP_ST_SIZE)
      continue;
    /* both bounds are taken, one past either is refused */
    s = d;
    set_num(&s, (enum qp_setting_id)i, e->min);
    round_trip((enum qp_setting_id)i, &s);
    assert_int_equal(qp_pool_settings_check(&s, err, sizeof(err)), 0);
    set_num(&s, (enum qp_setting_id)i, e->max);
    round_trip((enum qp_setting_id)i, &s);
    assert_int_equal(qp_pool_settings_check(&s, err, sizeof(err)), 0);
    set_num(&s, (enum qp_setting_id)i, e->max + 1);
    assert_int_equal(qp_pool_settings_check(&s, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, e->key));
    if (e->min > 0) {
      set_num(&s, (enum qp_setting_id)i, e->min - 1);
      assert_int_equal(qp_pool_settings_check(&s, err, sizeof(err)), -EINVAL);
    }
    if (e->min_nonzero) { /* 0, or at least min_nonzero */
      set_num(&s, (enum qp_setting_id)i, e->min_nonzero - 1);
      assert_int_equal(qp_pool_settings_check(&s, err, sizeof(err)), -EINVAL);
      set_num(&s, (enum qp_setting_id)i, 0);
      assert_int_equal(qp_pool_settings_check(&s, err, sizeof(err)), 0);
      set_num(&s, (enum qp_setting_id)i, e->min_nonzero);
      assert_int_equal(qp_pool_settings_check(&s, err, sizeof(err)), 0);
    }
  }
}

static void test_messages(void **state) {
  (void)state;
  struct qp_pool_settings s;
  char why[256];
  qp_pool_settings_defaults(&s);
  struct qp_pool_settings before = s;
  static const struct {
    enum qp_setting_id id;
    const char *v, *why;
  } bad[] = {
      {QP_SET_MAX_CAP, "abc", "\"abc\" is not a number"},
      {QP_SET_MAX_CAP, "-3", "\"-3\" must be a positive number"},
      {QP_SET_MAX_CAP, "65536", "\"65536\" is too large (max 65535)"},
      {QP_SET_KEEP_ALIVE, "25h", "\"25h\" is too long (max 24h)"},
      {QP_SET_MIN_INTERVAL, "0", "\"0\" must be longer than 0"},
      {QP_SET_IDLE_TIMEOUT, "5",
       "\"5\" is not a duration (e.g. 500ms, 5s, "
       "1m30s)"},
      {QP_SET_MAX_STREAM_WINDOW, "32KiB",
       "\"32KiB\" is out of range: use 64KiB to 1GiB"},
      {QP_SET_CONGESTION_CONTROL, "reno",
       "\"reno\" is not a congestion controller: use cubic, bbr or bbr2"},
      {QP_SET_TLS_MODE, "3", "must be 0, 1 or 2"},
      {QP_SET_HOSTNAME, "a b", "\"a b\" is not a valid host name"},
      {QP_SET_HOSTNAME, "x\n", "\"x\\x0a\" is not a valid host name"},
      {QP_SET_HOSTNAME, "-x", "\"-x\" is not a valid host name"},
      {QP_SET_IDLE_TIMEOUT, "500ms",
       "\"500ms\" is too short: 0, or 1s or more"},
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    assert_int_equal(
        qp_setting_parse(bad[i].id, bad[i].v, &s, why, sizeof(why)), -EINVAL);
    assert_string_equal(why, bad[i].why);
    assert_memory_equal(&s, &before, sizeof(s)); /* untouched */
  }
  assert_int_equal(
      qp_setting_parse(QP_SET_IDLE_TIMEOUT, "1m30s", &s, why, sizeof(why)), 0);
  assert_int_equal(s.idle_timeout_ns, UINT64_C(90000000000));
  assert_int_equal(qp_pool_idle_timeout_ns(&s), UINT64_C(90000000000));
  s.idle_timeout_ns = 0;
  s.keep_alive_ns = UINT64_C(2000000000);
  assert_int_equal(qp_pool_idle_timeout_ns(&s), UINT64_C(6000000000));
}

static const char *flag_of(int id, void *arg) {
  (void)arg;
  return qp_settings[id].flag;
}

/* the rules that span settings: bounds follow or cross, idle timeout vs
 * keep-alive, tls mode 2 */
static void test_reconcile(void **state) {
  (void)state;
  struct qp_pool_settings s;
  unsigned char given[QP_SET_N];
  enum qp_setting_id bad = QP_SET_N;
  char why[256];
#define RECONCILE(scope)                                                       \
  qp_pool_settings_reconcile(&s, scope, given, flag_of, NULL, &bad, why,       \
                             sizeof(why))
  /* an unset max follows a set min above it, and the other way round */
  qp_pool_settings_defaults(&s);
  memset(given, 0, sizeof(given));
  s.min_cap = 8, given[QP_SET_MIN_CAP] = 1;
  assert_int_equal(RECONCILE(QP_SCOPE_CLIENT), 0);
  assert_int_equal(s.max_cap, 8);
  qp_pool_settings_defaults(&s);
  memset(given, 0, sizeof(given));
  s.min_cap = 8; /* a tool's default min (qpool-tunnel) above a given max */
  s.max_cap = 4, given[QP_SET_MAX_CAP] = 1;
  assert_int_equal(RECONCILE(QP_SCOPE_CLIENT), 0);
  assert_int_equal(s.min_cap, 4);
  s.min_ivl_ns = 2000000000, given[QP_SET_MIN_INTERVAL] = 1;
  assert_int_equal(RECONCILE(QP_SCOPE_CLIENT), 0);
  assert_int_equal(s.max_ivl_ns, 2000000000);
  /* both given and crossing: an error on the min */
  s.min_cap = 9, given[QP_SET_MIN_CAP] = 1;
  assert_int_equal(RECONCILE(QP_SCOPE_CLIENT), -EINVAL);
  assert_int_equal(bad, QP_SET_MIN_CAP);
  assert_string_equal(why, "9 is greater than --max-cap 4");
  s.min_cap = 4;
  s.max_ivl_ns = 1000000000, given[QP_SET_MAX_INTERVAL] = 1;
  assert_int_equal(RECONCILE(QP_SCOPE_CLIENT), -EINVAL);
  assert_int_equal(bad, QP_SET_MIN_INTERVAL);
  assert_string_equal(why, "2s is longer than --max-interval 1s");
  assert_int_equal(RECONCILE(QP_SCOPE_SERVER), 0); /* servers have none */
  /* idle timeout vs keep-alive */
  qp_pool_settings_defaults(&s);
  memset(given, 0, sizeof(given));
  s.idle_timeout_ns = s.keep_alive_ns;
  assert_int_equal(RECONCILE(QP_SCOPE_SERVER), -EINVAL);
  assert_int_equal(bad, QP_SET_IDLE_TIMEOUT);
  assert_string_equal(why, "30s must be longer than --keep-alive 30s (or "
                           "--keep-alive 0 for no PINGs)");
  s.keep_alive_ns = 0;
  assert_int_equal(RECONCILE(QP_SCOPE_SERVER), 0);
  /* tls mode 2 names the host */
  s.tls_mode = '2';
  assert_int_equal(RECONCILE(QP_SCOPE_CLIENT), -EINVAL);
  assert_int_equal(bad, QP_SET_TLS_MODE);
  snprintf(s.hostname, sizeof(s.hostname), "h.example");
  assert_int_equal(RECONCILE(QP_SCOPE_CLIENT), 0);
#undef RECONCILE
}

/* every setting, set to a value other than its default, crosses a real
 * PoolAdd pack/unpack and comes out as it went in */
static void test_pool_add(void **state) {
  (void)state;
  struct qp_pool_settings s, out;
  char err[256];
  qp_pool_settings_defaults(&s);
  s.min_cap = 3;
  s.max_cap = 70;
  s.min_ivl_ns = 1500000;
  s.max_ivl_ns = UINT64_C(7000000000);
  s.keep_alive_ns = 0;
  s.idle_timeout_ns = UINT64_C(45000000000);
  s.setup_timeout_ns = UINT64_C(2000000000);
  s.cc_algo = qp_cc_table[0].algo == QP_CC_DEFAULT ? qp_cc_table[1].algo
                                                   : qp_cc_table[0].algo;
  s.max_stream_window = 65537;
  s.tls_mode = '2';
  snprintf(s.hostname, sizeof(s.hostname), "relay.example.com");
  struct qp_pool_settings d;
  qp_pool_settings_defaults(&d);
  for (int i = 0; i < N; i++)
    if (qp_setting_equal((enum qp_setting_id)i, &s, &d))
      fail_msg("test value of %s is its default", qp_settings[i].key);

  Qpool__PoolAdd m = QPOOL__POOL_ADD__INIT;
  struct qp_settings_pb_scratch scratch;
  m.name = "p";
  qp_pool_settings_to_pb(&s, &m, &scratch);
  size_t len = qpool__pool_add__get_packed_size(&m);
  uint8_t *buf = malloc(len);
  assert_non_null(buf);
  qpool__pool_add__pack(&m, buf);
  Qpool__PoolAdd *u = qpool__pool_add__unpack(NULL, len, buf);
  assert_non_null(u);
  assert_int_equal(qp_pool_settings_from_pb(u, &out, err, sizeof(err)), 0);
  for (int i = 0; i < N; i++)
    assert_true(qp_setting_equal((enum qp_setting_id)i, &s, &out));

  /* out of range on the wire: the worker's side refuses it */
  u->max_stream_window = 100;
  assert_int_equal(qp_pool_settings_from_pb(u, &out, err, sizeof(err)),
                   -EINVAL);
  assert_non_null(strstr(err, "max_stream_window"));
  u->max_stream_window = 65537;
  u->min_cap = 0;
  assert_int_equal(qp_pool_settings_from_pb(u, &out, err, sizeof(err)),
                   -EINVAL);
  assert_non_null(strstr(err, "min_cap"));
  u->min_cap = 3;
  char *cc = u->congestion_control;
  u->congestion_control = "reno";
  assert_int_equal(qp_pool_settings_from_pb(u, &out, err, sizeof(err)),
                   -EINVAL);
  assert_non_null(strstr(err, "congestion_control"));
  u->congestion_control = cc;
  assert_int_equal(qp_pool_settings_from_pb(u, &out, err, sizeof(err)), 0);
  qpool__pool_add__free_unpacked(u, NULL);
  free(buf);
}

/* qpoold: each setting as a flag and as a key, in --help, and in the
 * reload comparison (a setting left out there would not be reloaded) */
static void test_qpoold(void **state) {
  (void)state;
  struct sup_config *c = calloc(1, sizeof(*c)), *c2 = calloc(1, sizeof(*c2));
  assert_non_null(c);
  assert_non_null(c2);
  char err[512], *text = NULL, conf[1024];
  size_t len = 0;
  FILE *f = open_memstream(&text, &len);
  assert_non_null(f);
  sup_usage(f);
  fclose(f);
  for (int i = 0; i < N; i++) {
    const struct qp_setting *e = &qp_settings[i];
    char lead[80];
    snprintf(lead, sizeof(lead), "  %s %s ", e->flag, e->metavar);
    if (!strstr(text, lead))
      fail_msg("--help lacks \"%s\"", lead);
  }
  free(text);

  /* a value for each setting that differs from its default and passes the
   * cross checks */
  struct qp_pool_settings v;
  qp_pool_settings_defaults(&v);
  v.min_cap = 2, v.max_cap = 3, v.min_ivl_ns = 2000000, v.max_ivl_ns = 3000000;
  v.keep_alive_ns = 1000000000, v.idle_timeout_ns = 4000000000;
  v.setup_timeout_ns = 5000000000, v.max_stream_window = 1 << 20;
  v.cc_algo = qp_cc_table[0].algo == QP_CC_DEFAULT ? qp_cc_table[1].algo
                                                   : qp_cc_table[0].algo;
  v.tls_mode = '2';
  snprintf(v.hostname, sizeof(v.hostname), "h.example");
  const char *base = "[pool a]\nmode = client\ntarget = 127.0.0.1:1\n";
  assert_int_equal(sup_config_load_string(c, base, "t.conf", err, sizeof(err)),
                   0);
  for (int i = 0; i < N; i++) {
    const struct qp_setting *e = &qp_settings[i];
    char val[300];
    qp_setting_format((enum qp_setting_id)i, &v, val, sizeof(val));
    /* the key: the value arrives */
    /* what a value needs besides (cross checks) */
    const char *ek = i == QP_SET_TLS_MODE       ? "hostname = h.example\n"
                     : i == QP_SET_IDLE_TIMEOUT ? "keep_alive = 1s\n"
                                                : "";
    const char *ef = i == QP_SET_TLS_MODE       ? "--hostname=h.example"
                     : i == QP_SET_IDLE_TIMEOUT ? "--keep-alive=1s"
                                                : NULL;
    snprintf(conf, sizeof(conf), "%s%s = %s\n%s", base, e->key, val, ek);
    if (sup_config_load_string(c2, conf, "t.conf", err, sizeof(err)) < 0)
      fail_msg("%s: %s", e->key, err);
    assert_true(qp_setting_equal((enum qp_setting_id)i, &v, &c2->pools[0].set));
    /* ... and the reload comparison sees it */
    if (sup_pool_cfg_equal(&c->pools[0], &c2->pools[0]))
      fail_msg("sup_pool_cfg_equal misses %s", e->key);
    /* the flag: the same */
    char a1[320];
    snprintf(a1, sizeof(a1), "%s=%s", e->flag, val);
    char *argv[] = {"qpoold",      "client", "--name",   "a", "--target",
                    "127.0.0.1:1", a1,       (char *)ef, NULL};
    int argc = ef ? 8 : 7;
    if (sup_config_from_args(c2, argc, argv, err, sizeof(err)) != 0)
      fail_msg("%s: %s", a1, err);
    assert_true(qp_setting_equal((enum qp_setting_id)i, &v, &c2->pools[0].set));
  }
  free(c);
  free(c2);
}

/* docs/qpoold-config.md and man/qpoold.8 describe every setting */

static void test_docs(void **state) {
  (void)state;
  char *doc = repo_file("docs/qpoold-config.md"),
       *man = repo_file("man/qpoold.8");
  if (!doc || !man)
    skip();
  for (int i = 0; i < N; i++) {
    const struct qp_setting *e = &qp_settings[i];
    char k[80], fl[80], mf[80], *o = mf;
    snprintf(k, sizeof(k), "| `%s` |", e->key);
    char mv[32], *w = mv; /* a | in a table cell is \| */
    for (const char *p = e->metavar; *p; p++)
      w += *p == '|' ? sprintf(w, "\\|") : sprintf(w, "%c", *p);
    snprintf(fl, sizeof(fl), "| `%s %s` |", e->flag, mv);
    if (!strstr(doc, k) || !strstr(doc, fl))
      fail_msg("docs/qpoold-config.md lacks %s or %s", k, fl);
    /* man: an item ".BI \-\-idle\-timeout " DUR"" (or .BR) */
    o += sprintf(o, ".BI ");
    for (const char *p = e->flag; *p; p++)
      o += *p == '-' ? sprintf(o, "\\-") : sprintf(o, "%c", *p);
    sprintf(o, " ");
    int found = strstr(man, mf) != NULL;
    mf[2] = 'R';
    if (!found && !strstr(man, mf))
      fail_msg("man/qpoold.8 lacks %s", mf);
  }
  free(doc);
  free(man);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_entries),
      cmocka_unit_test(test_defaults_and_bounds),
      cmocka_unit_test(test_messages),
      cmocka_unit_test(test_reconcile),
      cmocka_unit_test(test_pool_add),
      cmocka_unit_test(test_qpoold),
      cmocka_unit_test(test_docs),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
