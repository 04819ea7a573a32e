/* The limits of a connection's description (shared/conn_info.c), which
 * qpoold applies to a worker's answer and libqpool to the one it gets:
 * strings present and short, at most 16 certificates, 64 KiB of DER. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "control.pb-c.h"
#include "shared/conn_info.h"

static uint8_t der[QP_CONN_CHAIN_MAX + 1];
static ProtobufCBinaryData certs[QP_CONN_CERTS_MAX + 1];

static void base(Qpool__ConnInfo *m) {
  qpool__conn_info__init(m);
  m->local = "127.0.0.1:4433";
  m->remote = "[::1]:5";
  m->alpn = "np-quic";
  m->version = "TLS1.3";
  m->cipher = "TLS_AES_128_GCM_SHA256";
  for (size_t i = 0; i <= QP_CONN_CERTS_MAX; i++) {
    certs[i].data = der;
    certs[i].len = 100;
  }
  m->certs = certs;
  m->n_certs = 2;
}

static int check(const Qpool__ConnInfo *m) {
  const char *why = "unset";
  int rc = qp_conn_info_check(m, &why);
  if (rc == 0)
    assert_null(why);
  else
    assert_non_null(why);
  return rc;
}

static void test_ok(void **state) {
  (void)state;
  Qpool__ConnInfo m;
  base(&m);
  assert_int_equal(check(&m), 0);
  m.n_certs = 0; /* a server's view: clients send no certificate */
  assert_int_equal(check(&m), 0);
}

static void test_strings(void **state) {
  (void)state;
  Qpool__ConnInfo m;
  char s[QP_CONN_STR_MAX + 2];
  memset(s, 'a', sizeof(s) - 1);
  s[sizeof(s) - 1] = 0; /* QP_CONN_STR_MAX + 1 bytes: one too many */
  base(&m);
  m.alpn = s;
  assert_int_equal(check(&m), -EPROTO);
  s[QP_CONN_STR_MAX] = 0; /* exactly the limit */
  assert_int_equal(check(&m), 0);
  const char **fields[] = {(const char **)&m.local, (const char **)&m.remote,
                           (const char **)&m.alpn, (const char **)&m.version,
                           (const char **)&m.cipher};
  for (size_t i = 0; i < 5; i++) {
    base(&m);
    *fields[i] = NULL;
    assert_int_equal(check(&m), -EPROTO);
  }
}

static void test_count(void **state) {
  (void)state;
  Qpool__ConnInfo m;
  base(&m);
  m.n_certs = QP_CONN_CERTS_MAX;
  assert_int_equal(check(&m), 0);
  m.n_certs = QP_CONN_CERTS_MAX + 1;
  assert_int_equal(check(&m), -EPROTO);
}

static void test_bytes(void **state) {
  (void)state;
  Qpool__ConnInfo m;
  base(&m);
  certs[0].len = QP_CONN_CHAIN_MAX - 100; /* with certs[1]: the limit */
  assert_int_equal(check(&m), 0);
  certs[1].len = 101;
  assert_int_equal(check(&m), -EPROTO);
  base(&m);
  m.n_certs = 1;
  certs[0].len = QP_CONN_CHAIN_MAX + 1;
  assert_int_equal(check(&m), -EPROTO);
  /* lengths that would wrap a careless sum */
  base(&m);
  certs[0].len = QP_CONN_CHAIN_MAX;
  certs[1].len = SIZE_MAX;
  assert_int_equal(check(&m), -EPROTO);
}

static void test_empty_cert(void **state) {
  (void)state;
  Qpool__ConnInfo m;
  base(&m);
  certs[1].len = 0;
  assert_int_equal(check(&m), -EPROTO);
  base(&m);
  certs[0].data = NULL;
  assert_int_equal(check(&m), -EPROTO);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_ok),         cmocka_unit_test(test_strings),
      cmocka_unit_test(test_count),      cmocka_unit_test(test_bytes),
      cmocka_unit_test(test_empty_cert),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
