/* libFuzzer target: qpoold's configuration parsers (supervisor/config.c).
 *
 * Byte 0 picks what the rest of the input is:
 *   0: a whole config file (sup_config_load_string);
 *   1: lines appended to a valid server pool (so they land inside a pool);
 *   2: lines appended to a valid client pool;
 *   3: a command line, one argument per '\n'-separated word
 *      (sup_config_from_args; --help, --version and --config are left out:
 *      they print or read files).
 * Checks: an accepted config satisfies every documented rule and parses the
 * same way twice; a refused one has a message and leaves the output exactly
 * as it was. Host names never reach DNS: the parser keeps a client's
 * target name as written (qpoold resolves it at dial time). */
#include <errno.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "shared/addr.h"
#include "supervisor/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x)                                                               \
  do {                                                                         \
    if (!(x))                                                                  \
      __builtin_trap();                                                        \
  } while (0)

#define MAX_INPUT 65536
#define MAX_ARGS 64

static int name_ok(const char *s) {
  size_t n = strnlen(s, SUP_NAME_MAX);
  if (n == 0 || n >= SUP_NAME_MAX)
    return 0;
  for (size_t i = 0; i < n; i++) {
    char ch = s[i];
    if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
          (ch >= '0' && ch <= '9') || ch == '_' || ch == '.' || ch == '-'))
      return 0;
  }
  return 1;
}

static unsigned port_of(const struct sockaddr_storage *ss) {
  if (ss->ss_family == AF_INET)
    return ntohs(((const struct sockaddr_in *)ss)->sin_port);
  if (ss->ss_family == AF_INET6)
    return ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
  return 0;
}

#define TERMINATED(a) (strnlen((a), sizeof(a)) < sizeof(a))

static void check_valid(const struct sup_config *c, int from_file) {
  CHECK(c->npools <= SUP_POOLS_MAX);
  CHECK(from_file ? c->npools >= 1 : c->npools == 1);
  CHECK(c->workers >= 0 && c->workers <= SUP_WORKERS_MAX);
  CHECK(c->log_level >= 0 && c->log_level <= 3);
  CHECK(TERMINATED(c->control) && c->control[0] && strlen(c->control) < 108);
  CHECK(TERMINATED(c->user) && c->user[0] && c->user[0] != '-');
  CHECK(TERMINATED(c->chroot) && c->chroot[0] == '/');
  CHECK(c->chroot[strspn(c->chroot, "/")] != '\0');
  for (size_t i = 0; i < c->npools; i++) {
    const struct sup_pool_cfg *p = &c->pools[i];
    CHECK(name_ok(p->name));
    CHECK(sup_config_find(c, p->name) == p); /* names are unique */
    CHECK(TERMINATED(p->addr_text) && p->addr_text[0]);
    CHECK(TERMINATED(p->set.hostname) && TERMINATED(p->ca_file));
    CHECK(TERMINATED(p->cert_file) && TERMINATED(p->key_file));
    CHECK(p->addr_len <= sizeof(p->addr));
    if (p->addr_len > 0) { /* numeric: parsed; a name: 0, kept as text */
      CHECK(p->addr.ss_family == AF_INET || p->addr.ss_family == AF_INET6);
      CHECK(port_of(&p->addr) >= 1);
    } else {
      struct sockaddr_storage ss;
      socklen_t len;
      char host[256];
      unsigned port;
      CHECK(!p->server);
      CHECK(qp_addr_parse_numeric(p->addr_text, &ss, &len) < 0);
      CHECK(qp_addr_split(p->addr_text, host, sizeof(host), &port, 0) == 0);
      CHECK(port >= 1 && host[0]);
    }
    CHECK(p->set.max_cap >= 1 && p->set.max_cap <= QP_CAP_MAX);
    CHECK(p->set.keep_alive_ns <= QP_DURATION_MAX_NS);
    CHECK(p->set.setup_timeout_ns > 0 &&
          p->set.setup_timeout_ns <= QP_DURATION_MAX_NS);
    CHECK(p->set.tls_mode == '0' || p->set.tls_mode == '1' ||
          p->set.tls_mode == '2');
    CHECK(qp_cc_name(p->set.cc_algo) != NULL);
    CHECK(qp_stream_window_ok(p->set.max_stream_window));
    /* whatever qpoold accepts, its worker accepts too (the range check a
     * PoolAdd goes through) */
    char why[256];
    CHECK(qp_pool_settings_check(&p->set, why, sizeof(why)) == 0);
    CHECK(p->client_ip.n <= QP_IPFILTER_MAX);
    CHECK(p->worker == -1 || (p->worker >= 0 && p->worker < c->workers));
    CHECK(!p->cert_file[0] == !p->key_file[0]);
    if (p->server) {
      CHECK(!p->set.hostname[0] && !p->ca_file[0] && p->set.tls_mode == '1');
      for (size_t j = 0; j < i; j++)
        CHECK(!c->pools[j].server ||
              !qp_addr_equal((const struct sockaddr *)&p->addr,
                             (const struct sockaddr *)&c->pools[j].addr));
    } else {
      CHECK(p->client_ip.n == 0 && !p->cert_file[0]);
      CHECK(p->set.min_cap >= 1 && p->set.min_cap <= p->set.max_cap);
      CHECK(p->set.min_ivl_ns > 0 && p->set.min_ivl_ns <= p->set.max_ivl_ns &&
            p->set.max_ivl_ns <= QP_DURATION_MAX_NS);
      CHECK(p->set.tls_mode != '2' || p->set.hostname[0]);
      CHECK(!p->ca_file[0] || p->set.tls_mode == '2');
    }
  }
}

static void check_same(const struct sup_config *a, const struct sup_config *b) {
  CHECK(a->npools == b->npools && a->workers == b->workers);
  CHECK(a->log_level == b->log_level && a->foreground == b->foreground);
  CHECK(strcmp(a->control, b->control) == 0);
  CHECK(strcmp(a->user, b->user) == 0);
  CHECK(strcmp(a->chroot, b->chroot) == 0);
  for (size_t i = 0; i < a->npools; i++)
    CHECK(sup_pool_cfg_equal(&a->pools[i], &b->pools[i]));
}

static void canary(struct sup_config *c) {
  sup_config_defaults(c);
  c->npools = 1;
  memcpy(c->pools[0].name, "canary", 7);
  c->workers = 4242;
}

static void check_canary(const struct sup_config *c) {
  CHECK(c->npools == 1 && c->workers == 4242);
  CHECK(strcmp(c->pools[0].name, "canary") == 0);
}

static const char server_prefix[] = "[global]\nworkers = 4\n"
                                    "[pool fz]\nmode = server\n"
                                    "listen = 127.0.0.1:4433\n";
static const char client_prefix[] = "[pool up]\nmode = client\n"
                                    "target = relay.test:443\n";

static struct sup_config *out, *again;

static void run_text(const char *text) {
  char err[256];
  canary(out);
  int rc = sup_config_load_string(out, text, "fuzz.conf", err, sizeof(err));
  CHECK(rc == 0 || rc == -EINVAL);
  CHECK(strnlen(err, sizeof(err)) < sizeof(err));
  if (rc < 0) {
    CHECK(err[0] != '\0');
    check_canary(out);
    return;
  }
  CHECK(err[0] == '\0');
  check_valid(out, 1);
  CHECK(sup_config_load_string(again, text, "fuzz.conf", err, sizeof(err)) ==
        0);
  check_same(out, again);
}

static int skipped_arg(const char *a) {
  return strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0 ||
         strcmp(a, "--version") == 0 || strcmp(a, "-V") == 0 ||
         strncmp(a, "--config", 8) == 0;
}

static void run_args(char *words) {
  char *argv[MAX_ARGS + 2];
  int argc = 0;
  argv[argc++] = "qpoold";
  for (char *w = words; argc < MAX_ARGS;) {
    char *nl = strchr(w, '\n');
    if (nl)
      *nl = '\0';
    if (skipped_arg(w))
      return;
    argv[argc++] = w;
    if (!nl)
      break;
    w = nl + 1;
  }
  argv[argc] = NULL;
  char *copy[MAX_ARGS + 2];
  memcpy(copy, argv, sizeof(copy));
  char err[256];
  canary(out);
  int rc = sup_config_from_args(out, argc, argv, err, sizeof(err));
  CHECK(rc == 0 || rc == -EINVAL);
  for (int i = 0; i < argc; i++)
    CHECK(argv[i] == copy[i]); /* argv is never reordered */
  if (rc < 0) {
    CHECK(err[0] != '\0' && strnlen(err, sizeof(err)) < sizeof(err));
    check_canary(out);
    return;
  }
  check_valid(out, 0);
  CHECK(sup_config_from_args(again, argc, argv, err, sizeof(err)) == 0);
  check_same(out, again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size == 0 || size > MAX_INPUT)
    return 0;
  if (!out) {
    out = malloc(sizeof(*out));
    again = malloc(sizeof(*again));
    if (!out || !again)
      __builtin_trap();
  }
  unsigned what = data[0] & 3;
  const char *prefix = what == 1   ? server_prefix
                       : what == 2 ? client_prefix
                                   : "";
  size_t plen = strlen(prefix);
  char *text = malloc(plen + size);
  if (!text)
    return 0;
  memcpy(text, prefix, plen);
  memcpy(text + plen, data + 1, size - 1);
  text[plen + size - 1] = '\0';
  if (what == 3)
    run_args(text);
  else
    run_text(text);
  free(text);
  return 0;
}
