/* GnuTLS set-up for np-quic: TLS 1.3 only, ALPN np-quic mandatory, AES-GCM
 * ahead of ChaCha20, modes 0/1/2 of the reference. */
#include "worker/tls.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <arpa/inet.h>
#include <gnutls/crypto.h>
#include <gnutls/x509.h>
#include <ngtcp2/ngtcp2_crypto_gnutls.h>

/* TLS 1.3 only; AES-GCM first so ChaCha20 never wins when both ends have
 * AES; no middlebox compatibility mode (QUIC forbids it). */
#define WRK_PRIORITY                                                           \
  "NORMAL:-VERS-ALL:+VERS-TLS1.3:-CIPHER-ALL:+AES-128-GCM:+AES-256-GCM:"       \
  "+CHACHA20-POLY1305:+AES-128-CCM:-GROUP-ALL:+GROUP-X25519:"                  \
  "+GROUP-SECP256R1:+GROUP-SECP384R1:%DISABLE_TLS13_COMPAT_MODE"

struct wrk_tls {
  int is_server;
  char mode;
  char *hostname;
  char alpn[32];
  gnutls_certificate_credentials_t cred;
  gnutls_priority_t prio;
};

static int fail(char *err, size_t errlen, int rc, const char *what, int grc) {
  if (err && errlen)
    snprintf(err, errlen, "%s: %s", what, grc ? gnutls_strerror(grc) : "");
  return rc;
}

static struct wrk_tls *tls_alloc(int is_server, const char *alpn) {
  struct wrk_tls *t = calloc(1, sizeof(*t));
  if (!t)
    return NULL;
  t->is_server = is_server;
  snprintf(t->alpn, sizeof(t->alpn), "%s", alpn ? alpn : WRK_ALPN);
  if (gnutls_certificate_allocate_credentials(&t->cred) < 0 ||
      gnutls_priority_init(&t->prio,
                           is_server ? WRK_PRIORITY ":%SERVER_PRECEDENCE"
                                     : WRK_PRIORITY,
                           NULL) < 0) {
    wrk_tls_free(t);
    return NULL;
  }
  return t;
}

void wrk_tls_free(struct wrk_tls *t) {
  if (!t)
    return;
  if (t->cred)
    gnutls_certificate_free_credentials(t->cred);
  if (t->prio)
    gnutls_priority_deinit(t->prio);
  free(t->hostname);
  free(t);
}

/* A self-signed ECDSA P-256 certificate for CN=qpool, valid one year. */
static int make_self_signed(gnutls_certificate_credentials_t cred, char *err,
                            size_t errlen) {
  gnutls_x509_privkey_t key = NULL;
  gnutls_x509_crt_t crt = NULL;
  int rc;
  uint8_t serial[16];
  time_t now = time(NULL);

  if ((rc = gnutls_x509_privkey_init(&key)) < 0 ||
      (rc = gnutls_x509_privkey_generate(
           key, GNUTLS_PK_ECDSA,
           GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1), 0)) < 0 ||
      (rc = gnutls_x509_crt_init(&crt)) < 0 ||
      (rc = gnutls_rnd(GNUTLS_RND_NONCE, serial, sizeof(serial))) < 0)
    goto out;
  serial[0] &= 0x7f;
  if ((rc = gnutls_x509_crt_set_version(crt, 3)) < 0 ||
      (rc = gnutls_x509_crt_set_serial(crt, serial, sizeof(serial))) < 0 ||
      (rc = gnutls_x509_crt_set_activation_time(crt, now - 3600)) < 0 ||
      (rc = gnutls_x509_crt_set_expiration_time(crt, now + 365 * 86400)) < 0 ||
      (rc = gnutls_x509_crt_set_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0,
                                          "qpool", 5)) < 0 ||
      (rc = gnutls_x509_crt_set_subject_alt_name(
           crt, GNUTLS_SAN_DNSNAME, "qpool", 5, GNUTLS_FSAN_SET)) < 0 ||
      (rc = gnutls_x509_crt_set_key(crt, key)) < 0 ||
      (rc = gnutls_x509_crt_set_key_usage(crt, GNUTLS_KEY_DIGITAL_SIGNATURE)) <
          0 ||
      (rc = gnutls_x509_crt_sign2(crt, crt, key, GNUTLS_DIG_SHA256, 0)) < 0 ||
      (rc = gnutls_certificate_set_x509_key(cred, &crt, 1, key)) < 0)
    goto out;
  rc = 0;
out:
  if (crt)
    gnutls_x509_crt_deinit(crt);
  if (key)
    gnutls_x509_privkey_deinit(key);
  if (rc < 0)
    return fail(err, errlen, -EIO, "cannot make a self-signed certificate", rc);
  return 0;
}

int wrk_tls_server_new(struct wrk_tls **out, const char *cert_file,
                       const char *key_file, const struct wrk_tls_pem *pem,
                       const char *alpn, char *err, size_t errlen) {
  struct wrk_tls *t = tls_alloc(1, alpn);
  int rc;
  if (!t)
    return fail(err, errlen, -ENOMEM, "out of memory", 0);
  if (cert_file) {
    if (!key_file) {
      wrk_tls_free(t);
      return fail(err, errlen, -EINVAL, "a certificate needs its key file", 0);
    }
    rc = gnutls_certificate_set_x509_key_file(t->cred, cert_file, key_file,
                                              GNUTLS_X509_FMT_PEM);
    if (rc < 0) {
      char what[512];
      snprintf(what, sizeof(what), "cannot load certificate %s / key %s",
               cert_file, key_file);
      wrk_tls_free(t);
      return fail(err, errlen, -EINVAL, what, rc);
    }
  } else if (pem && (pem->cert || pem->key)) {
    if (!pem->cert || !pem->key || !pem->cert_len || !pem->key_len) {
      wrk_tls_free(t); /* never a self-signed one instead */
      return fail(err, errlen, -EINVAL,
                  "a certificate needs its key (both PEM, not empty)", 0);
    }
    gnutls_datum_t c = {(unsigned char *)pem->cert, (unsigned)pem->cert_len};
    gnutls_datum_t k = {(unsigned char *)pem->key, (unsigned)pem->key_len};
    rc = gnutls_certificate_set_x509_key_mem(t->cred, &c, &k,
                                             GNUTLS_X509_FMT_PEM);
    if (rc < 0) {
      wrk_tls_free(t);
      return fail(err, errlen, -EINVAL, "cannot load the certificate/key", rc);
    }
  } else if ((rc = make_self_signed(t->cred, err, errlen)) < 0) {
    wrk_tls_free(t);
    return rc;
  }
  *out = t;
  return 0;
}

int wrk_tls_client_new(struct wrk_tls **out, char mode, const char *hostname,
                       const char *ca_file, const struct wrk_tls_pem *pem,
                       const char *alpn, char *err, size_t errlen) {
  if (mode != '0' && mode != '1' && mode != '2')
    return fail(err, errlen, -EINVAL, "tls mode must be 0, 1 or 2", 0);
  if (mode == '2' && (!hostname || !*hostname))
    return fail(err, errlen, -EINVAL, "tls mode 2 needs a hostname", 0);
  struct wrk_tls *t = tls_alloc(0, alpn);
  if (!t)
    return fail(err, errlen, -ENOMEM, "out of memory", 0);
  t->mode = mode;
  if (hostname && *hostname && !(t->hostname = strdup(hostname))) {
    wrk_tls_free(t);
    return fail(err, errlen, -ENOMEM, "out of memory", 0);
  }
  if (mode == '2') {
    gnutls_datum_t ca = {(unsigned char *)(pem ? pem->ca : NULL),
                         (unsigned)(pem ? pem->ca_len : 0)};
    int rc = ca_file ? gnutls_certificate_set_x509_trust_file(
                           t->cred, ca_file, GNUTLS_X509_FMT_PEM)
             : ca.data ? gnutls_certificate_set_x509_trust_mem(
                             t->cred, &ca, GNUTLS_X509_FMT_PEM)
                       : gnutls_certificate_set_x509_system_trust(t->cred);
    if (rc <= 0) {
      char what[512];
      snprintf(what, sizeof(what), "no trusted CA loaded from %s",
               ca_file   ? ca_file
               : ca.data ? "the CA bundle (PEM)"
                         : "the system trust store");
      wrk_tls_free(t);
      return fail(err, errlen, -EINVAL, what, rc < 0 ? rc : 0);
    }
  }
  *out = t;
  return 0;
}

static int is_ip_literal(const char *h) {
  uint8_t buf[16];
  return inet_pton(AF_INET, h, buf) == 1 || inet_pton(AF_INET6, h, buf) == 1;
}

int wrk_tls_session_new(struct wrk_tls *t, ngtcp2_crypto_conn_ref *ref,
                        gnutls_session_t *out) {
  gnutls_session_t s;
  unsigned flags = (t->is_server ? GNUTLS_SERVER : GNUTLS_CLIENT) |
                   GNUTLS_NO_END_OF_EARLY_DATA;
  if (gnutls_init(&s, flags) < 0)
    return -ENOMEM;
  int configured = t->is_server
                       ? ngtcp2_crypto_gnutls_configure_server_session(s)
                       : ngtcp2_crypto_gnutls_configure_client_session(s);
  gnutls_datum_t alpn = {(unsigned char *)t->alpn, (unsigned)strlen(t->alpn)};
  if (configured != 0 || gnutls_priority_set(s, t->prio) < 0 ||
      gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE, t->cred) < 0 ||
      gnutls_alpn_set_protocols(s, &alpn, 1, GNUTLS_ALPN_MANDATORY) < 0)
    goto err;
  gnutls_session_set_ptr(s, ref);
  if (!t->is_server && t->hostname) {
    if (!is_ip_literal(t->hostname) &&
        gnutls_server_name_set(s, GNUTLS_NAME_DNS, t->hostname,
                               strlen(t->hostname)) < 0)
      goto err;
    if (t->mode == '2')
      gnutls_session_set_verify_cert(s, t->hostname, 0);
  }
  *out = s;
  return 0;
err:
  gnutls_deinit(s);
  return -EINVAL;
}

void wrk_tls_verify_error(gnutls_session_t s, char *buf, size_t len) {
  buf[0] = 0;
  unsigned status = gnutls_session_get_verify_cert_status(s);
  if (status == 0)
    return;
  gnutls_datum_t txt = {0};
  if (gnutls_certificate_verification_status_print(status, GNUTLS_CRT_X509,
                                                   &txt, 0) == 0) {
    snprintf(buf, len, "certificate verification failed: %s", txt.data);
    gnutls_free(txt.data);
  } else {
    snprintf(buf, len, "certificate verification failed (status 0x%x)", status);
  }
}
