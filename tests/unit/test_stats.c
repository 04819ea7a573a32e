/* The table of counters and gauges (shared/stats.c): every entry's
 * PoolStats field (and, for the worker's, its Report field of the same
 * name) exists with the entry's type; names are unique and follow
 * Prometheus' conventions (promtool's lint rules: counters end in _total,
 * nothing else does, no _count/_sum/_bucket); a Report's values reach
 * PoolStats; the "at once" test sees exactly the at_once entries; the
 * Prometheus text, the key=value line and docs/metrics.md all carry every
 * entry under its name. Walks the table: a new entry is tested without a
 * new line here. */
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

#include "shared/stats.h"

static const ProtobufCFieldDescriptor *
field_at(const ProtobufCMessageDescriptor *d, size_t off) {
  for (unsigned i = 0; i < d->n_fields; i++)
    if (d->fields[i].offset == off)
      return &d->fields[i];
  return NULL;
}

static ProtobufCType pb_type(enum qp_stat_type t) {
  switch (t) {
  case QP_SV_U64:
  case QP_SV_NS:
    return PROTOBUF_C_TYPE_UINT64;
  case QP_SV_I32:
    return PROTOBUF_C_TYPE_INT32;
  case QP_SV_U32:
    return PROTOBUF_C_TYPE_UINT32;
  case QP_SV_BOOL:
    return PROTOBUF_C_TYPE_BOOL;
  }
  return PROTOBUF_C_TYPE_STRING;
}

static int ends_with(const char *s, const char *suf) {
  size_t a = strlen(s), b = strlen(suf);
  return a >= b && !strcmp(s + a - b, suf);
}

static void test_entries(void **state) {
  (void)state;
  assert_true(qp_stats_n >= 15);
  for (size_t i = 0; i < qp_stats_n; i++) {
    const struct qp_stat *s = &qp_stats[i];
    const ProtobufCFieldDescriptor *f =
        field_at(&qpool__pool_stats__descriptor, s->off);
    assert_non_null(f);
    assert_string_equal(f->name, s->field);
    assert_int_equal(f->type, pb_type(s->type));
    assert_int_equal(f->label, PROTOBUF_C_LABEL_REQUIRED);
    if (s->report_off != QP_STAT_QPOOLD) {
      const ProtobufCFieldDescriptor *r =
          field_at(&qpool__report__descriptor, s->report_off);
      assert_non_null(r);
      assert_string_equal(r->name, s->field);
      assert_int_equal(r->type, f->type);
    } else {
      assert_int_equal(s->at_once, 0); /* only the worker reports */
    }
    /* the name: a unit suffix for seconds, no counter-like gauge, none of
     * the suffixes Prometheus reserves */
    if (s->type == QP_SV_NS)
      assert_true(ends_with(s->name, "_seconds"));
    assert_false(ends_with(s->name, "_total"));
    assert_false(ends_with(s->name, "_count"));
    assert_false(ends_with(s->name, "_sum"));
    assert_false(ends_with(s->name, "_bucket"));
    assert_non_null(s->help);
    assert_true(strlen(s->help) > 10 && s->help[strlen(s->help) - 1] == '.');
    for (size_t j = 0; j < i; j++) {
      assert_string_not_equal(qp_stats[j].name, s->name);
      assert_int_not_equal(qp_stats[j].off, s->off);
    }
  }
}

/* distinct values for every entry, through Report -> PoolStats */
static void test_from_report(void **state) {
  (void)state;
  Qpool__Report r = QPOOL__REPORT__INIT;
  Qpool__PoolStats p = QPOOL__POOL_STATS__INIT;
  for (size_t i = 0; i < qp_stats_n; i++) {
    const struct qp_stat *s = &qp_stats[i];
    if (s->report_off == QP_STAT_QPOOLD)
      continue;
    char *at = (char *)&r + s->report_off;
    uint64_t v = s->type == QP_SV_BOOL ? 1 : 1000 + i;
    if (s->type == QP_SV_U64 || s->type == QP_SV_NS)
      *(uint64_t *)at = v;
    else if (s->type == QP_SV_BOOL)
      *(protobuf_c_boolean *)at = 1;
    else
      *(int32_t *)at = (int32_t)v;
  }
  qp_stats_from_report(&p, &r);
  for (size_t i = 0; i < qp_stats_n; i++) {
    const struct qp_stat *s = &qp_stats[i];
    uint64_t want = s->report_off == QP_STAT_QPOOLD ? 0
                    : s->type == QP_SV_BOOL         ? 1
                                                    : 1000 + i;
    assert_int_equal(qp_stat_raw(s, &p), want);
  }
  /* the "at once" test: each at_once entry alone is a change, no other */
  for (size_t i = 0; i < qp_stats_n; i++) {
    const struct qp_stat *s = &qp_stats[i];
    if (s->report_off == QP_STAT_QPOOLD)
      continue;
    Qpool__Report b = r;
    char *at = (char *)&b + s->report_off;
    if (s->type == QP_SV_BOOL)
      *(protobuf_c_boolean *)at = 0;
    else
      *at ^= 1; /* the low byte: a change in any of the types */
    assert_int_equal(qp_stats_report_changed(&r, &b), s->at_once);
  }
  assert_int_equal(qp_stats_report_changed(&r, &r), 0);
}

static char *text_of(void (*fn)(FILE *, void *), void *arg) {
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  assert_non_null(f);
  fn(f, arg);
  fclose(f);
  return buf;
}

static void prom(FILE *f, void *arg) {
  Qpool__PoolStats *const ps[] = {arg};
  qp_stats_prometheus(f, ps, 1);
}

static void line(FILE *f, void *arg) {
  qp_stats_line(f, arg);
}

static void test_forms(void **state) {
  (void)state;
  Qpool__PoolStats p = QPOOL__POOL_STATS__INIT;
  p.name = "a\"b";
  p.interval_ns = 1500000000;
  p.idle_streams = -1; /* shown signed */
  p.in_bytes = UINT64_MAX;
  p.last_error = "x \"y\"\n";
  char *t = text_of(prom, &p), *l = text_of(line, &p);
  for (size_t i = 0; i < qp_stats_n; i++) {
    const struct qp_stat *s = &qp_stats[i];
    char name[80], want[160], kv[100];
    qp_stat_prom_name(s, name, sizeof(name));
    snprintf(want, sizeof(want), "# TYPE %s %s\n", name,
             s->kind == QP_STAT_COUNTER ? "counter" : "gauge");
    assert_non_null(strstr(t, want));
    assert_int_equal(s->kind == QP_STAT_COUNTER, ends_with(name, "_total"));
    snprintf(want, sizeof(want), "\n%s{pool=\"a\\\"b\"} ", name);
    assert_non_null(strstr(t, want));
    snprintf(kv, sizeof(kv), " %s=", s->name);
    assert_non_null(strstr(l, kv));
  }
  assert_non_null(strstr(t, "qpool_interval_seconds{pool=\"a\\\"b\"} 1.5\n"));
  assert_non_null(strstr(t, "qpool_idle_streams{pool=\"a\\\"b\"} -1\n"));
  assert_non_null(strstr(
      t, "qpool_in_bytes_total{pool=\"a\\\"b\"} 18446744073709551615\n"));
  assert_non_null(strstr(l, " interval_seconds=1.5 "));
  assert_non_null(strstr(l, " last_error=\"x \\\"y\\\"\\x0a\"\n"));
  free(t);
  free(l);
}

/* docs/metrics.md has a row for every entry */
static void test_docs(void **state) {
  (void)state;
  char *doc = repo_file("docs/metrics.md");
  if (!doc)
    skip();
  for (size_t i = 0; i < qp_stats_n; i++) {
    char name[80], row[200];
    qp_stat_prom_name(&qp_stats[i], name, sizeof(name));
    snprintf(row, sizeof(row), "| `%s` | `%s` | %s |", qp_stats[i].name, name,
             qp_stats[i].kind == QP_STAT_COUNTER ? "counter" : "gauge");
    if (!strstr(doc, row)) {
      free(doc);
      fail_msg("docs/metrics.md lacks %s", row);
    }
  }
  free(doc);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_entries),
      cmocka_unit_test(test_from_report),
      cmocka_unit_test(test_forms),
      cmocka_unit_test(test_docs),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
