/* TLS 1.3 material for np-quic connections: GnuTLS credentials, priorities
 * and per-connection sessions wired to ngtcp2_crypto_gnutls. */
#ifndef QP_WORKER_TLS_H
#define QP_WORKER_TLS_H

#include <stddef.h>
#include <gnutls/gnutls.h>
#include <ngtcp2/ngtcp2_crypto.h>

#define WRK_ALPN "np-quic"

struct wrk_tls;

/* TLS material given as PEM bytes (the sandboxed worker cannot open files);
 * each pointer may be NULL. Used when the matching file name is NULL. */
struct wrk_tls_pem {
  const char *cert;
  size_t cert_len;
  const char *key;
  size_t key_len;
  const char *ca;
  size_t ca_len;
};

/* Server credentials from PEM files, else from PEM bytes (pem->cert and
 * pem->key, both non-empty: one without the other is an error), else -- only
 * when neither is given -- a self-signed ECDSA P-256 certificate made in
 * memory. Returns 0 and *out, or a negative errno with a sentence in err. */
int wrk_tls_server_new(struct wrk_tls **out, const char *cert_file,
                       const char *key_file, const struct wrk_tls_pem *pem,
                       const char *alpn, char *err, size_t errlen);
/* Client credentials for tls_mode '0'/'1' (no verification) or '2' (verify
 * the chain against ca_file, else pem->ca (PEM bytes), else GnuTLS's system
 * trust store, and the hostname). */
int wrk_tls_client_new(struct wrk_tls **out, char mode, const char *hostname,
                       const char *ca_file, const struct wrk_tls_pem *pem,
                       const char *alpn, char *err, size_t errlen);
void wrk_tls_free(struct wrk_tls *t);

/* A session for one connection. ref must outlive the session. Returns 0 or
 * -ENOMEM / -EINVAL. */
int wrk_tls_session_new(struct wrk_tls *t, ngtcp2_crypto_conn_ref *ref,
                        gnutls_session_t *out);

/* After a failed handshake: a sentence explaining a local certificate
 * verification failure into buf, or "" if verification did not fail. */
void wrk_tls_verify_error(gnutls_session_t s, char *buf, size_t len);

#endif
