/* A pool's TLS files, read and checked by qpoold with GnuTLS exactly as the
 * worker will use them (certificate + key that match, a CA bundle with
 * certificates in it), so that a bad file stops qpoold, or --check, with
 * the file's name instead of failing later in a sandboxed worker. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include "supervisor/sup.h"

const char *sup_tls_system_ca(int *from_env) {
  const char *env = getenv("SSL_CERT_FILE");
  if (from_env)
    *from_env = env && *env;
  return env && *env ? env : SUP_SYSTEM_CA_BUNDLE;
}

/* Reads a whole regular file of at most max bytes, NUL-terminated.
 * `what` names it in errors ("the certificate file /etc/x.pem"). */
static int read_whole(const char *path, const char *what, size_t max,
                      char **out, size_t *len, char *err, size_t errlen) {
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) {
    int e = errno;
    snprintf(err, errlen, "cannot read %s: %s", what, strerror(e));
    return -e;
  }
  struct stat st;
  int rc = 0;
  if (fstat(fd, &st) < 0) {
    rc = -errno;
    snprintf(err, errlen, "cannot read %s: %s", what, strerror(-rc));
  } else if (S_ISDIR(st.st_mode)) {
    rc = -EISDIR;
    snprintf(err, errlen, "%s is a directory", what);
  } else if (!S_ISREG(st.st_mode)) {
    rc = -EINVAL;
    snprintf(err, errlen, "%s is not a regular file", what);
  } else if ((uint64_t)st.st_size > max) {
    rc = -EINVAL;
    snprintf(err, errlen, "%s is too large (%lld bytes; at most %zu)", what,
             (long long)st.st_size, max);
  }
  char *buf = rc ? NULL : malloc(max + 1);
  if (!rc && !buf) {
    rc = -ENOMEM;
    snprintf(err, errlen, "out of memory");
  }
  size_t n = 0;
  while (!rc && n <= max) { /* the size may change while we read */
    ssize_t r = read(fd, buf + n, max + 1 - n);
    if (r < 0 && errno == EINTR)
      continue;
    if (r < 0) {
      rc = -errno;
      snprintf(err, errlen, "cannot read %s: %s", what, strerror(-rc));
    }
    if (r <= 0)
      break;
    n += (size_t)r;
  }
  close(fd);
  if (!rc && n > max) {
    rc = -EINVAL;
    snprintf(err, errlen, "%s is too large (more than %zu bytes)", what, max);
  } else if (!rc && n == 0) {
    rc = -EINVAL;
    snprintf(err, errlen, "%s is empty", what);
  }
  if (rc) {
    free(buf);
    return rc;
  }
  buf[n] = 0;
  *out = buf;
  *len = n;
  return 0;
}

static int gnutls_fail(char *err, size_t errlen, const char *what,
                       const char *problem, int grc) {
  snprintf(err, errlen, "%s %s (GnuTLS: %s)", what, problem,
           gnutls_strerror(grc));
  return -EINVAL;
}

/* Server: both files or neither (then the worker makes a self-signed
 * certificate in memory). The chain, the key and their match are checked
 * with the call the worker makes. */
static int load_cert_key(const struct sup_pool_cfg *pc, struct sup_tls *t,
                         char *err, size_t errlen) {
  if (!pc->cert_file[0] && !pc->key_file[0])
    return 0;
  char cwhat[4128], kwhat[4128];
  snprintf(cwhat, sizeof(cwhat), "the certificate file %s",
           pc->cert_file[0] ? pc->cert_file : "(none)");
  snprintf(kwhat, sizeof(kwhat), "the key file %s",
           pc->key_file[0] ? pc->key_file : "(none)");
  if (!pc->cert_file[0] || !pc->key_file[0]) {
    snprintf(err, errlen, "%s needs %s too", pc->cert_file[0] ? cwhat : kwhat,
             pc->cert_file[0] ? "a key file" : "a certificate file");
    return -EINVAL;
  }
  int rc = read_whole(pc->cert_file, cwhat, SUP_TLS_PEM_MAX, &t->cert_pem,
                      &t->cert_len, err, errlen);
  if (rc == 0)
    rc = read_whole(pc->key_file, kwhat, SUP_TLS_PEM_MAX, &t->key_pem,
                    &t->key_len, err, errlen);
  if (rc < 0)
    return rc;
  gnutls_datum_t c = {(unsigned char *)t->cert_pem, (unsigned)t->cert_len};
  gnutls_datum_t k = {(unsigned char *)t->key_pem, (unsigned)t->key_len};
  gnutls_x509_crt_t *crts = NULL;
  unsigned ncrts = 0;
  int grc =
      gnutls_x509_crt_list_import2(&crts, &ncrts, &c, GNUTLS_X509_FMT_PEM, 0);
  for (unsigned i = 0; grc >= 0 && i < ncrts; i++)
    gnutls_x509_crt_deinit(crts[i]);
  gnutls_free(crts);
  if (grc < 0 || ncrts == 0)
    return gnutls_fail(err, errlen, cwhat, "holds no PEM certificate",
                       grc < 0 ? grc : GNUTLS_E_NO_CERTIFICATE_FOUND);
  gnutls_x509_privkey_t key;
  if ((grc = gnutls_x509_privkey_init(&key)) < 0)
    return gnutls_fail(err, errlen, kwhat, "cannot be checked", grc);
  grc = gnutls_x509_privkey_import2(key, &k, GNUTLS_X509_FMT_PEM, NULL, 0);
  gnutls_x509_privkey_deinit(key);
  if (grc < 0)
    return gnutls_fail(err, errlen, kwhat,
                       "holds no PEM private key without a password", grc);
  gnutls_certificate_credentials_t cred;
  if ((grc = gnutls_certificate_allocate_credentials(&cred)) < 0)
    return gnutls_fail(err, errlen, cwhat, "cannot be checked", grc);
  grc = gnutls_certificate_set_x509_key_mem(cred, &c, &k, GNUTLS_X509_FMT_PEM);
  gnutls_certificate_free_credentials(cred);
  if (grc == GNUTLS_E_CERTIFICATE_KEY_MISMATCH) {
    snprintf(err, errlen, "%s does not match %s", kwhat, cwhat);
    return -EINVAL;
  }
  if (grc < 0)
    return gnutls_fail(err, errlen, cwhat, "cannot be used with its key", grc);
  return 0;
}

/* The checked bytes in a sealed memfd: nobody can change them afterwards,
 * and the worker reads them from the fd, also once it can open no file. */
static int sealed_copy(const char *data, size_t len, char *err, size_t errlen) {
  int fd = memfd_create("qpool-ca", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  size_t off = 0;
  while (fd >= 0 && off < len) {
    ssize_t w = write(fd, data + off, len - off);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0)
      break;
    off += (size_t)w;
  }
  if (fd < 0 || off < len ||
      fcntl(fd, F_ADD_SEALS,
            F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) < 0) {
    int e = errno ? errno : EIO;
    snprintf(err, errlen, "cannot keep the CA bundle: %s", strerror(e));
    if (fd >= 0)
      close(fd);
    return -e;
  }
  return fd;
}

/* Client, tls_mode 2: the CA file, or the system bundle. */
static int load_ca(const struct sup_pool_cfg *pc, struct sup_tls *t, char *err,
                   size_t errlen) {
  if (pc->server || pc->set.tls_mode != '2')
    return 0;
  char what[4200];
  if (pc->ca_file[0]) {
    snprintf(what, sizeof(what), "the CA file %s", pc->ca_file);
  } else {
    int env;
    const char *path = sup_tls_system_ca(&env);
    snprintf(what, sizeof(what), "the system CA bundle %s%s", path,
             env ? " ($SSL_CERT_FILE)" : "");
  }
  char *pem = NULL;
  size_t len = 0;
  int rc = read_whole(pc->ca_file[0] ? pc->ca_file : sup_tls_system_ca(NULL),
                      what, SUP_TLS_CA_MAX, &pem, &len, err, errlen);
  if (rc < 0)
    return rc;
  gnutls_certificate_credentials_t cred;
  gnutls_datum_t d = {(unsigned char *)pem, (unsigned)len};
  int grc = gnutls_certificate_allocate_credentials(&cred);
  if (grc >= 0) {
    grc = gnutls_certificate_set_x509_trust_mem(cred, &d, GNUTLS_X509_FMT_PEM);
    gnutls_certificate_free_credentials(cred);
  }
  if (grc <= 0) {
    free(pem);
    return gnutls_fail(err, errlen, what, "holds no PEM CA certificate",
                       grc < 0 ? grc : GNUTLS_E_NO_CERTIFICATE_FOUND);
  }
  rc = sealed_copy(pem, len, err, errlen);
  free(pem);
  if (rc < 0)
    return rc;
  t->ca_fd = rc;
  t->ca_count = grc;
  return 0;
}

int sup_tls_load(const struct sup_pool_cfg *pc, struct sup_tls *t, char *err,
                 size_t errlen) {
  memset(t, 0, sizeof(*t));
  t->ca_fd = -1;
  char why[8448];
  int rc = load_cert_key(pc, t, why, sizeof(why));
  if (rc == 0)
    rc = load_ca(pc, t, why, sizeof(why));
  if (rc < 0) {
    snprintf(err, errlen, "pool %s: %s", pc->name, why);
    sup_tls_free(t);
  }
  return rc;
}

void sup_tls_free(struct sup_tls *t) {
  free(t->cert_pem);
  free(t->key_pem);
  if (t->ca_fd >= 0)
    close(t->ca_fd);
  memset(t, 0, sizeof(*t));
  t->ca_fd = -1;
}
