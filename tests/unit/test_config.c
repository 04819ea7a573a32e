/* Unit tests for supervisor/config.c: qpoold's command line (both pool forms,
 * every refusal with its exact message), INI config strings and files
 * (multi-pool, file:line messages, unknown keys and sections, client_ip
 * lists), flags over the file, and "nothing half-done" on error. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "repo_file.h"

#include "shared/addr.h"
#include "shared/log.h"
#include "supervisor/config.h"

#define SEC UINT64_C(1000000000)
#define MS UINT64_C(1000000)

/* ---- helpers ------------------------------------------------------------- */

static int setup(void **state) {
  struct sup_config *c = malloc(sizeof(*c));
  assert_non_null(c);
  sup_config_defaults(c);
  *state = c;
  return 0;
}

static int teardown(void **state) {
  free(*state);
  return 0;
}

#define MAXARGS 40

/* Splits line at spaces into argv (after "qpoold") and parses it. */
static int args(struct sup_config *c, const char *line, char *err,
                size_t errlen) {
  static char buf[4096];
  char *av[MAXARGS + 2];
  int ac = 0;
  snprintf(buf, sizeof(buf), "%s", line);
  av[ac++] = "qpoold";
  for (char *t = strtok(buf, " "); t && ac < MAXARGS; t = strtok(NULL, " "))
    av[ac++] = t;
  av[ac] = NULL;
  char *copy[MAXARGS + 2];
  memcpy(copy, av, sizeof(av));
  int rc = sup_config_from_args(c, ac, av, err, errlen);
  /* argv is not reordered */
  for (int i = 0; i < ac; i++)
    assert_ptr_equal(av[i], copy[i]);
  return rc;
}

static void addr_is(const struct sup_pool_cfg *p, const char *want) {
  char buf[QP_ADDR_STRLEN];
  qp_addr_format((const struct sockaddr *)&p->addr, buf, sizeof(buf));
  assert_string_equal(buf, want);
}

/* A client target given as a host name: kept as written, not resolved. */
static void name_kept(const struct sup_pool_cfg *p, const char *want) {
  assert_string_equal(p->addr_text, want);
  assert_int_equal(p->addr_len, 0);
}

static int allows(const struct qp_ipfilter *f, const char *ip) {
  struct sockaddr_storage ss;
  memset(&ss, 0, sizeof(ss));
  if (strchr(ip, ':')) {
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
    sin6->sin6_family = AF_INET6;
    assert_int_equal(inet_pton(AF_INET6, ip, &sin6->sin6_addr), 1);
  } else {
    struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
    sin->sin_family = AF_INET;
    assert_int_equal(inet_pton(AF_INET, ip, &sin->sin_addr), 1);
  }
  return qp_ipfilter_allows(f, (const struct sockaddr *)&ss);
}

/* Runs fn with stdout sent to /dev/null. */
static int quiet_args(struct sup_config *c, const char *line) {
  char err[256];
  fflush(stdout);
  int saved = dup(1);
  int null = open("/dev/null", O_WRONLY);
  assert_true(saved >= 0 && null >= 0);
  dup2(null, 1);
  close(null);
  int rc = args(c, line, err, sizeof(err));
  fflush(stdout);
  dup2(saved, 1);
  close(saved);
  return rc;
}

/* A config that a failed parse must leave exactly as it was. */
static void canary(struct sup_config *c) {
  sup_config_defaults(c);
  c->npools = 1;
  memset(&c->pools[0], 0, sizeof(c->pools[0]));
  strcpy(c->pools[0].name, "canary");
  c->workers = 7;
  strcpy(c->user, "canary");
}

static void assert_canary(const struct sup_config *c) {
  assert_int_equal(c->npools, 1);
  assert_string_equal(c->pools[0].name, "canary");
  assert_int_equal(c->workers, 7);
  assert_string_equal(c->user, "canary");
  assert_string_equal(c->control, SUP_DEFAULT_CONTROL);
}

/* ---- defaults ------------------------------------------------------------ */

static void test_defaults(void **state) {
  struct sup_config *c = *state;
  sup_config_defaults(c);
  assert_int_equal(c->npools, 0);
  assert_int_equal(c->workers, 0);
  assert_string_equal(c->control, "/run/qpool/qpoold.sock");
  assert_string_equal(c->user, "nobody");
  assert_string_equal(c->chroot, "/run/qpool/empty");
  assert_string_equal(c->config_file, "");
  assert_int_equal(c->foreground, 0);
  assert_int_equal(c->log_level, QP_LOG_INFO);
}

/* ---- command line: good ---------------------------------------------------*/

static void test_args_server_minimal(void **state) {
  struct sup_config *c = *state;
  char err[256];
  assert_int_equal(
      args(c, "server --name tunnel --listen :4433", err, sizeof(err)), 0);
  assert_string_equal(err, "");
  assert_int_equal(c->npools, 1);
  const struct sup_pool_cfg *p = &c->pools[0];
  assert_string_equal(p->name, "tunnel");
  assert_int_equal(p->server, 1);
  addr_is(p, "0.0.0.0:4433");
  assert_string_equal(p->addr_text, ":4433");
  assert_int_equal(p->set.max_cap, 1);
  assert_int_equal(p->set.keep_alive_ns, 30 * SEC);
  assert_int_equal(p->set.setup_timeout_ns, 60 * SEC);
  assert_int_equal(p->set.tls_mode, '1');
  assert_string_equal(p->cert_file, "");
  assert_string_equal(p->key_file, "");
  assert_int_equal(p->client_ip.n, 0);
  assert_int_equal(p->worker, -1);
  assert_int_equal(c->workers, 0);
  assert_string_equal(c->config_file, "");
  assert_int_equal(c->log_level, QP_LOG_INFO);
}

static void test_args_server_full(void **state) {
  struct sup_config *c = *state;
  char err[256];
  assert_int_equal(
      args(c,
           "server --name tenant.a-1 --listen [::1]:8443 --cert /etc/c.pem "
           "--key=/etc/k.pem --max-cap 64 --client-ip 192.0.2.7 "
           "--client-ip 10.0.0.0/8,2001:db8::/32 --keep-alive 10s "
           "--setup-timeout 1m --control /tmp/q.sock --workers 2 "
           "--user qpool --chroot /var/empty/qpool --foreground "
           "--log-level debug",
           err, sizeof(err)),
      0);
  const struct sup_pool_cfg *p = &c->pools[0];
  assert_string_equal(p->name, "tenant.a-1");
  addr_is(p, "[::1]:8443");
  assert_string_equal(p->cert_file, "/etc/c.pem");
  assert_string_equal(p->key_file, "/etc/k.pem");
  assert_int_equal(p->set.max_cap, 64);
  assert_int_equal(p->client_ip.n, 3);
  assert_true(allows(&p->client_ip, "192.0.2.7"));
  assert_false(allows(&p->client_ip, "192.0.2.8"));
  assert_true(allows(&p->client_ip, "10.200.0.1"));
  assert_true(allows(&p->client_ip, "2001:db8:ffff::1"));
  assert_false(allows(&p->client_ip, "2001:db9::1"));
  assert_int_equal(p->set.keep_alive_ns, 10 * SEC);
  assert_int_equal(p->set.setup_timeout_ns, 60 * SEC);
  assert_string_equal(c->control, "/tmp/q.sock");
  assert_int_equal(c->workers, 2);
  assert_string_equal(c->user, "qpool");
  assert_string_equal(c->chroot, "/var/empty/qpool");
  assert_int_equal(c->foreground, 1);
  assert_int_equal(c->log_level, QP_LOG_DEBUG);
}

static void test_args_client(void **state) {
  struct sup_config *c = *state;
  char err[256];
  assert_int_equal(
      args(c,
           "client --name up --target relay.example.com:4433 --min-cap 2 "
           "--max-cap 16 --min-interval 100ms --max-interval 5s "
           "--keep-alive 0 --tls-mode 2 --hostname relay.example.com "
           "--ca /etc/ca.pem --control /tmp/c.sock",
           err, sizeof(err)),
      0);
  assert_string_equal(err, "");
  const struct sup_pool_cfg *p = &c->pools[0];
  assert_string_equal(p->name, "up");
  assert_int_equal(p->server, 0);
  assert_string_equal(p->addr_text, "relay.example.com:4433");
  name_kept(p, "relay.example.com:4433");
  assert_int_equal(p->set.min_cap, 2);
  assert_int_equal(p->set.max_cap, 16);
  assert_int_equal(p->set.min_ivl_ns, 100 * MS);
  assert_int_equal(p->set.max_ivl_ns, 5 * SEC);
  assert_int_equal(p->set.keep_alive_ns, 0);
  assert_int_equal(p->set.tls_mode, '2');
  assert_string_equal(p->set.hostname, "relay.example.com");
  assert_string_equal(p->ca_file, "/etc/ca.pem");
  assert_string_equal(c->control, "/tmp/c.sock");
}

static void test_args_client_defaults(void **state) {
  struct sup_config *c = *state;
  char err[256];
  assert_int_equal(
      args(c, "client --name up --target 127.0.0.1:4433", err, sizeof(err)), 0);
  const struct sup_pool_cfg *p = &c->pools[0];
  addr_is(p, "127.0.0.1:4433");
  assert_int_equal(p->set.min_cap, 1);
  assert_int_equal(p->set.max_cap, 1);
  assert_int_equal(p->set.min_ivl_ns, SEC);
  assert_int_equal(p->set.max_ivl_ns, SEC);
  assert_int_equal(p->set.keep_alive_ns, 30 * SEC);
  assert_int_equal(p->set.tls_mode, '1');
  assert_string_equal(p->set.hostname, "");
  /* an unset bound follows the set one across its default */
  assert_int_equal(args(c, "client --name up --target 127.0.0.1:1 --min-cap 5",
                        err, sizeof(err)),
                   0);
  assert_int_equal(p->set.min_cap, 5);
  assert_int_equal(p->set.max_cap, 5);
  assert_int_equal(args(c,
                        "client --name up --target 127.0.0.1:1 "
                        "--max-interval 500ms",
                        err, sizeof(err)),
                   0);
  assert_int_equal(p->set.min_ivl_ns, 500 * MS);
  assert_int_equal(p->set.max_ivl_ns, 500 * MS);
  assert_int_equal(args(c,
                        "client --name up --target 127.0.0.1:1 "
                        "--min-interval 3s",
                        err, sizeof(err)),
                   0);
  assert_int_equal(p->set.min_ivl_ns, 3 * SEC);
  assert_int_equal(p->set.max_ivl_ns, 3 * SEC);
}

/* Host names are never resolved by the parser: qpoold resolves them at each
 * dial, so neither a start nor --check depends on DNS, and a name that does
 * not resolve (yet) is accepted. Numeric targets are parsed. */
static void test_args_target_names(void **state) {
  struct sup_config *c = *state;
  char err[256];
  static const char *const names[] = {"localhost:4433", "nowhere.invalid:443",
                                      "a_b-c.example:1"};
  for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
    char line[128];
    snprintf(line, sizeof(line), "client --name up --target %s", names[i]);
    assert_int_equal(args(c, line, err, sizeof(err)), 0);
    name_kept(&c->pools[0], names[i]);
  }
  assert_int_equal(
      args(c, "client --name up --target [::1]:4433", err, sizeof(err)), 0);
  assert_int_equal(c->pools[0].addr_len, sizeof(struct sockaddr_in6));
  addr_is(&c->pools[0], "[::1]:4433");
  assert_int_equal(
      args(c, "client --name up --target 127.0.0.1:0", err, sizeof(err)),
      -EINVAL);
  assert_string_equal(err,
                      "--target: \"127.0.0.1:0\" has a bad port (1-65535)");
  assert_int_equal(
      args(c, "client --name up --target bad!name:1", err, sizeof(err)),
      -EINVAL);
  assert_string_equal(err, "--target: \"bad!name:1\" is not an address "
                           "(host:port or [v6]:port)");
}

/* One capacity limit (QP_CAP_MAX, shared/pool_params.h), the same for flags
 * and the file, at the boundary. */
static void test_cap_limit(void **state) {
  struct sup_config *c = *state;
  char err[256], line[160];
  snprintf(line, sizeof(line),
           "client --name up --target 127.0.0.1:1 --min-cap %d --max-cap %d",
           QP_CAP_MAX, QP_CAP_MAX);
  assert_int_equal(args(c, line, err, sizeof(err)), 0);
  assert_int_equal(c->pools[0].set.min_cap, QP_CAP_MAX);
  assert_int_equal(c->pools[0].set.max_cap, QP_CAP_MAX);
  snprintf(line, sizeof(line), "server --name s --listen :1 --max-cap %d",
           QP_CAP_MAX + 1);
  assert_int_equal(args(c, line, err, sizeof(err)), -EINVAL);
  assert_int_equal(QP_CAP_MAX, 65535);
  assert_string_equal(err, "--max-cap: \"65536\" is too large (max 65535)");
  snprintf(line, sizeof(line),
           "[pool a]\nmode = server\nlisten = :1\n"
           "max_cap = %d\n",
           QP_CAP_MAX);
  assert_int_equal(sup_config_load_string(c, line, "t.conf", err, sizeof(err)),
                   0);
  assert_int_equal(c->pools[0].set.max_cap, QP_CAP_MAX);
  snprintf(line, sizeof(line),
           "[pool a]\nmode = server\nlisten = :1\n"
           "max_cap = %d\n",
           QP_CAP_MAX + 1);
  assert_int_equal(sup_config_load_string(c, line, "t.conf", err, sizeof(err)),
                   -EINVAL);
  assert_string_equal(err, "t.conf:4: max_cap: \"65536\" is too large "
                           "(max 65535)");
}

static void test_args_help_version(void **state) {
  struct sup_config *c = *state;
  canary(c);
  assert_int_equal(quiet_args(c, "--help"), 1);
  assert_int_equal(quiet_args(c, "-h"), 1);
  assert_int_equal(quiet_args(c, "server --name a --help"), 1);
  assert_int_equal(quiet_args(c, "--version"), 1);
  assert_int_equal(quiet_args(c, "client -V"), 1);
  assert_canary(c);

  /* the text teaches every flag and both syntaxes */
  char *text = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&text, &len);
  assert_non_null(f);
  sup_usage(f);
  fclose(f);
  static const char *const must[] = {
      "qpoold server",  "qpoold client", "--config FILE",   "--name",
      "--listen",       "--target",      "--cert",          "--key",
      "--min-cap",      "--max-cap",     "--client-ip",     "--min-interval",
      "--max-interval", "--keep-alive",  "--setup-timeout", "--tls-mode",
      "--hostname",     "--ca",          "--control",       "--workers",
      "--user",         "--chroot",      "--log-level",     "--foreground",
      "500ms",          "[IPv6]:port",   "[pool ",          "[global]",
      "default 30s",    "default 1m)",   "default 1s",      "default 1)",
  };
  for (size_t i = 0; i < sizeof(must) / sizeof(must[0]); i++)
    if (!strstr(text, must[i]))
      fail_msg("usage lacks %s", must[i]);
  free(text);
}

/* getopt state is reset between calls, also after an error midway. */
static void test_args_twice(void **state) {
  struct sup_config *c = *state;
  char err[256];
  for (int i = 0; i < 3; i++) {
    assert_int_equal(
        args(c, "server --name a --listen :1 --max-cap x", err, sizeof(err)),
        -EINVAL);
    assert_int_equal(
        args(c, "server --name b --listen :2 --max-cap 3", err, sizeof(err)),
        0);
    assert_string_equal(c->pools[0].name, "b");
    assert_int_equal(c->pools[0].set.max_cap, 3);
    assert_int_equal(
        args(c, "client --name c --target 127.0.0.1:3", err, sizeof(err)), 0);
    assert_string_equal(c->pools[0].name, "c");
  }
}

/* ---- command line: every refusal ------------------------------------------*/

struct bad {
  const char *line, *msg;
};

static const struct bad bad_args[] = {
    {"", "missing command: qpoold server ..., qpoold client ... or qpoold "
         "--config FILE (see qpoold --help)"},
    {"--foreground", "missing command: qpoold server ..., qpoold client ... "
                     "or qpoold --config FILE (see qpoold --help)"},
    {"serve --name a",
     "unknown command \"serve\" (expected server, client or --config FILE)"},
    {"server --listen :1", "--name is required"},
    {"server --name a", "--listen is required for qpoold server"},
    {"client --name a", "--target is required for qpoold client"},
    {"server --name a/b --listen :1",
     "--name: \"a/b\" is not a valid pool name (1-63 characters of A-Z a-z "
     "0-9 _ . -)"},
    {"server --name "
     "a123456789012345678901234567890123456789012345678901234567890123 "
     "--listen :1",
     "--name: \"a1234567890123456789012345678901234567890123456789012345678"
     "9...\" is not a valid pool name (1-63 characters of A-Z a-z 0-9 _ . "
     "-)"},
    {"server --name a --name b --listen :1", "--name: given twice"},
    {"server --name a --listen 1.2.3.4",
     "--listen: \"1.2.3.4\" needs a port (host:port)"},
    {"server --name a --listen [::1]",
     "--listen: \"[::1]\" needs a port ([v6]:port)"},
    {"server --name a --listen 1.2.3.4:",
     "--listen: \"1.2.3.4:\" needs a port (host:port)"},
    {"server --name a --listen ::1:443",
     "--listen: \"::1:443\": an IPv6 address needs brackets ([v6]:port)"},
    {"server --name a --listen 1.2.3.4:0",
     "--listen: \"1.2.3.4:0\" has a bad port (1-65535)"},
    {"server --name a --listen 1.2.3.4:65536",
     "--listen: \"1.2.3.4:65536\" has a bad port (1-65535)"},
    {"server --name a --listen 1.2.3.4:http",
     "--listen: \"1.2.3.4:http\" is not an address (host:port or "
     "[v6]:port)"},
    {"server --name a --listen localhost:443",
     "--listen: \"localhost:443\" must be a numeric address (IPv4:port, "
     "[IPv6]:port or :port for every IPv4 address)"},
    {"server --name a --listen 1.2.3.4:1 --listen 1.2.3.4:2",
     "--listen: given twice"},
    {"server --name a --listen :1 --max-cap abc",
     "--max-cap: \"abc\" is not a number"},
    {"server --name a --listen :1 --max-cap 0",
     "--max-cap: \"0\" must be a positive number"},
    {"server --name a --listen :1 --max-cap -3",
     "--max-cap: \"-3\" must be a positive number"},
    {"server --name a --listen :1 --max-cap 65536",
     "--max-cap: \"65536\" is too large (max 65535)"},
    {"server --name a --listen :1 --max-cap 99999999999999999999999",
     "--max-cap: \"99999999999999999999999\" is too large (max 65535)"},
    {"server --name a --listen :1 --max-cap 2 --max-cap 3",
     "--max-cap: given twice"},
    {"server --name a --listen :1 --max-cap 1x",
     "--max-cap: \"1x\" is not a number"},
    {"client --name a --target 1.2.3.4:5 --min-cap 5 --max-cap 2",
     "--min-cap: 5 is greater than --max-cap 2"},
    {"client --name a --target 1.2.3.4:5 --min-interval 5s --max-interval "
     "1s",
     "--min-interval: 5s is longer than --max-interval 1s"},
    {"client --name a --target 1.2.3.4:5 --min-interval 0s",
     "--min-interval: \"0s\" must be longer than 0"},
    {"client --name a --target 1.2.3.4:5 --max-interval -1s",
     "--max-interval: \"-1s\" is not a duration (e.g. 500ms, 5s, 1m30s)"},
    {"server --name a --listen :1 --keep-alive 5",
     "--keep-alive: \"5\" is not a duration (e.g. 500ms, 5s, 1m30s)"},
    {"server --name a --listen :1 --keep-alive 25h",
     "--keep-alive: \"25h\" is too long (max 24h)"},
    {"server --name a --listen :1 --keep-alive 9999999999h",
     "--keep-alive: \"9999999999h\" is too long (max 24h)"},
    {"server --name a --listen :1 --setup-timeout 0",
     "--setup-timeout: \"0\" must be longer than 0"},
    {"client --name a --target 1.2.3.4:5 --tls-mode 3",
     "--tls-mode: must be 0, 1 or 2"},
    {"client --name a --target 1.2.3.4:5 --tls-mode 11",
     "--tls-mode: must be 0, 1 or 2"},
    {"client --name a --target 1.2.3.4:5 --tls-mode 2",
     "--tls-mode: 2 needs --hostname (the name the server certificate is "
     "checked against)"},
    {"client --name a --target 1.2.3.4:5 --ca /etc/ca.pem",
     "--ca: only used with --tls-mode 2"},
    {"client --name a --target 1.2.3.4:5 --hostname bad/name",
     "--hostname: \"bad/name\" is not a valid host name"},
    {"server --name a --listen :1 --cert /c.pem",
     "--cert: \"/c.pem\" needs --key too"},
    {"server --name a --listen :1 --key /k.pem",
     "--key: \"/k.pem\" needs --cert too"},
    {"server --name a --listen :1 --cert=", "--cert: must not be empty"},
    {"server --name a --listen :1 --client-ip nope",
     "--client-ip: \"nope\" is not an IP address or CIDR prefix"},
    {"server --name a --listen :1 --client-ip 10.0.0.1/8",
     "--client-ip: \"10.0.0.1/8\" has host bits set (did you mean "
     "10.0.0.0/8?)"},
    {"server --name a --listen :1 --client-ip 2001:db8::1/32",
     "--client-ip: \"2001:db8::1/32\" has host bits set (did you mean "
     "2001:db8::/32?)"},
    {"server --name a --listen :1 --client-ip 10.0.0.0/33",
     "--client-ip: \"10.0.0.0/33\" is not an IP address or CIDR prefix"},
    {"server --name a --listen :1 --client-ip 1.2.3.4,,5.6.7.8",
     "--client-ip: \"1.2.3.4,,5.6.7.8\" has an empty item"},
    {"server --name a --listen :1 --client-ip=",
     "--client-ip: must not be empty (leave it out to allow every address)"},
    {"server --name a --listen :1 --target 1.2.3.4:5",
     "--target: only for qpoold client"},
    {"server --name a --listen :1 --tls-mode 0",
     "--tls-mode: only for qpoold client"},
    {"client --name a --target 1.2.3.4:5 --client-ip 1.2.3.4",
     "--client-ip: only for qpoold server"},
    {"client --name a --target 1.2.3.4:5 --cert /c.pem",
     "--cert: only for qpoold server"},
    {"client --name a --target :443", "--target: \":443\" needs a host "
                                      "(host:port)"},
    {"client --name a --target [nope]:443",
     "--target: \"[nope]:443\": brackets hold an IPv6 address only"},
    {"client --name a --target bad!host:443",
     "--target: \"bad!host:443\" is not an address (host:port or "
     "[v6]:port)"},
    {"server --name a --listen :1 --foo", "unknown option --foo"},
    {"server --name a --listen :1 --foo=bar", "unknown option --foo"},
    {"server --name a --list :1",
     "unknown option --list (did you mean --listen?)"},
    {"server --name a --listen :1 --max_cap 3",
     "unknown option --max_cap (did you mean --max-cap?)"},
    {"server --name a --listen :1 -x", "unknown option -x"},
    {"server --name a --listen", "--listen: needs a value"},
    {"server --name a --listen --max-cap 3", "--listen: needs a value"},
    {"server --name a --listen :1 --foreground=yes",
     "--foreground: takes no value"},
    {"server --name a --listen :1 stray", "unexpected argument \"stray\""},
    {"server --name a --listen :1 -- --max-cap 3",
     "unexpected argument \"--max-cap\""},
    {"server --name a --listen :1 --config /etc/q.conf",
     "--config: not with qpoold server (a config file describes every pool: "
     "qpoold --config FILE)"},
    {"--config /etc/q.conf --max-cap 3",
     "--max-cap: not with --config (set max_cap in the file)"},
    {"--config /etc/q.conf --name a",
     "--name: not with --config (the file names its pools: [pool NAME])"},
    {"--config /etc/q.conf --config /etc/r.conf", "--config: given twice"},
    {"--config /nonexistent/qpoold.conf",
     "/nonexistent/qpoold.conf: cannot open: No such file or directory"},
    {"server --name a --listen :1 --workers -1",
     "--workers: \"-1\" must be a number from 0 to 256"},
    {"server --name a --listen :1 --workers 257",
     "--workers: \"257\" is too large (max 256)"},
    {"server --name a --listen :1 --workers 1 --workers 2",
     "--workers: given twice"},
    {"server --name a --listen :1 --log-level verbose",
     "--log-level: must be error, warn, info or debug"},
    {"server --name a --listen :1 --user bad/user",
     "--user: \"bad/user\" is not a valid user name"},
    {"server --name a --listen :1 --user -root",
     "--user: \"-root\" is not a valid user name"},
    {"server --name a --listen :1 --chroot relative",
     "--chroot: \"relative\" must be an absolute path"},
    {"server --name a --listen :1 --chroot //",
     "--chroot: \"//\" is no sandbox (the worker would see every file)"},
    {"server --name a --listen :1 --control "
     "/run/qpool/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
     "--control: \"/run/qpool/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
     "aaaa...\" is too long for a Unix socket path (max 107 bytes)"},
};

static void test_args_bad(void **state) {
  struct sup_config *c = *state;
  char err[512];
  for (size_t i = 0; i < sizeof(bad_args) / sizeof(bad_args[0]); i++) {
    canary(c);
    strcpy(err, "(not set)");
    int rc = args(c, bad_args[i].line, err, sizeof(err));
    if (rc != -EINVAL || strcmp(err, bad_args[i].msg) != 0)
      fail_msg("qpoold %s\n  rc %d, message:\n  %s\n  wanted:\n  %s",
               bad_args[i].line, rc, err, bad_args[i].msg);
    assert_canary(c); /* nothing half-done */
  }
}

/* A short error buffer truncates the message, never overflows. */
static void test_args_small_err(void **state) {
  struct sup_config *c = *state;
  char err[12];
  memset(err, 'x', sizeof(err));
  assert_int_equal(
      args(c, "server --name a --listen :1 --max-cap abc", err, sizeof(err)),
      -EINVAL);
  assert_string_equal(err, "--max-cap: ");
  assert_int_equal(
      args(c, "server --name a --listen :1 --max-cap abc", NULL, 0), -EINVAL);
}

/* ---- config strings ------------------------------------------------------ */

static const char good_conf[] =
    "# two tenants and an upstream\n"
    "[global]\n"
    "workers = 2\n"
    "control = /run/qpool/t.sock\n"
    "user = qpool\n"
    "chroot = /var/empty/qpool\n"
    "log_level = warn\n"
    "\n"
    "[pool tenant-a]\n"
    "  mode = server\n"
    "  listen = [::]:4433          ; every IPv6 address\n"
    "  max_cap = 64\n"
    "  client_ip = 198.51.100.0/24, 2001:db8:a::/48\n"
    "  client_ip = 192.0.2.7\n"
    "  cert = /etc/qpool/a.crt\n"
    "  key = /etc/qpool/a.key\n"
    "  keep_alive = 15s\n"
    "  worker = 0\n"
    "\n"
    "[pool tenant-b]\n"
    "mode = server\n"
    "listen = 0.0.0.0:4434\n"
    "client_ip = 203.0.113.0/24   # tenant b's office\n"
    "setup_timeout = 5s\n"
    "worker = 1\n"
    "\n"
    "[pool upstream]\n"
    "mode = client\n"
    "target = relay.example.com:4433\n"
    "min_cap = 4\n"
    "max_cap = 32\n"
    "min_interval = 100ms\n"
    "max_interval = 2s\n"
    "tls_mode = 2\n"
    "hostname = relay.example.com\n"
    "ca = /etc/qpool/ca.pem\n"
    "worker = auto\n";

static void test_string_good(void **state) {
  struct sup_config *c = *state;
  char err[256];
  assert_int_equal(
      sup_config_load_string(c, good_conf, "t.conf", err, sizeof(err)), 0);
  assert_string_equal(err, "");
  assert_int_equal(c->npools, 3);
  assert_int_equal(c->workers, 2);
  assert_string_equal(c->control, "/run/qpool/t.sock");
  assert_string_equal(c->user, "qpool");
  assert_string_equal(c->chroot, "/var/empty/qpool");
  assert_int_equal(c->log_level, QP_LOG_WARN);
  assert_string_equal(c->config_file, "");

  const struct sup_pool_cfg *a = &c->pools[0], *b = &c->pools[1],
                            *u = &c->pools[2];
  assert_string_equal(a->name, "tenant-a");
  assert_int_equal(a->server, 1);
  addr_is(a, "[::]:4433");
  assert_string_equal(a->addr_text, "[::]:4433");
  assert_int_equal(a->set.max_cap, 64);
  assert_int_equal(a->client_ip.n, 3);
  assert_true(allows(&a->client_ip, "198.51.100.200"));
  assert_true(allows(&a->client_ip, "2001:db8:a:ffff::1"));
  assert_true(allows(&a->client_ip, "192.0.2.7"));
  assert_true(allows(&a->client_ip, "::ffff:192.0.2.7"));
  assert_false(allows(&a->client_ip, "2001:db8:b::1"));
  assert_false(allows(&a->client_ip, "203.0.113.1"));
  assert_string_equal(a->cert_file, "/etc/qpool/a.crt");
  assert_string_equal(a->key_file, "/etc/qpool/a.key");
  assert_int_equal(a->set.keep_alive_ns, 15 * SEC);
  assert_int_equal(a->worker, 0);

  assert_string_equal(b->name, "tenant-b");
  addr_is(b, "0.0.0.0:4434");
  assert_int_equal(b->set.max_cap, 1);
  assert_int_equal(b->client_ip.n, 1);
  assert_true(allows(&b->client_ip, "203.0.113.9"));
  assert_false(allows(&b->client_ip, "198.51.100.1"));
  assert_int_equal(b->set.setup_timeout_ns, 5 * SEC);
  assert_int_equal(b->set.keep_alive_ns, 30 * SEC);
  assert_int_equal(b->worker, 1);

  assert_string_equal(u->name, "upstream");
  assert_int_equal(u->server, 0);
  name_kept(u, "relay.example.com:4433");
  assert_int_equal(u->set.min_cap, 4);
  assert_int_equal(u->set.max_cap, 32);
  assert_int_equal(u->set.min_ivl_ns, 100 * MS);
  assert_int_equal(u->set.max_ivl_ns, 2 * SEC);
  assert_int_equal(u->set.tls_mode, '2');
  assert_string_equal(u->set.hostname, "relay.example.com");
  assert_string_equal(u->ca_file, "/etc/qpool/ca.pem");
  assert_int_equal(u->worker, -1);

  assert_ptr_equal(sup_config_find(c, "tenant-b"), b);
  assert_null(sup_config_find(c, "tenant-c"));
}

/* Same text twice: same pools; one value changed: that pool differs. */
static void test_string_equal(void **state) {
  struct sup_config *c = *state;
  struct sup_config *d = malloc(sizeof(*d));
  assert_non_null(d);
  char err[256];
  assert_int_equal(sup_config_load_string(c, good_conf, "t", err, 256), 0);
  assert_int_equal(sup_config_load_string(d, good_conf, "t", err, 256), 0);
  for (size_t i = 0; i < c->npools; i++)
    assert_true(sup_pool_cfg_equal(&c->pools[i], &d->pools[i]));
  assert_false(sup_pool_cfg_equal(&c->pools[0], &d->pools[1]));
  d->pools[0].client_ip.e[1].prefix = 47;
  assert_false(sup_pool_cfg_equal(&c->pools[0], &d->pools[0]));
  d->pools[2].set.max_cap++;
  assert_false(sup_pool_cfg_equal(&c->pools[2], &d->pools[2]));
  free(d);
}

static void test_string_syntax(void **state) {
  struct sup_config *c = *state;
  char err[256];
  /* BOM, CRLF, indentation, comments both ways, ':' as separator */
  const char *text = "\xEF\xBB\xBF; leading comment\r\n"
                     "   [ pool  x ]   \r\n"
                     "\tmode: server\r\n"
                     "    listen = 127.0.0.1:9\t# trailing\r\n"
                     "\r\n";
  assert_int_equal(sup_config_load_string(c, text, "t", err, sizeof(err)), 0);
  assert_int_equal(c->npools, 1);
  assert_string_equal(c->pools[0].name, "x");
  addr_is(&c->pools[0], "127.0.0.1:9");

  /* a 63-character name: longer than libinih's section buffer */
  const char *longname =
      "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_";
  char buf[256];
  snprintf(buf, sizeof(buf), "[pool %s]\nmode = server\nlisten = :1\n",
           longname);
  assert_int_equal(sup_config_load_string(c, buf, "t", err, sizeof(err)), 0);
  assert_string_equal(c->pools[0].name, longname);

  /* a long path on one line (libinih's default line limit is 200) */
  char *big = malloc(8192);
  assert_non_null(big);
  int n = snprintf(big, 8192,
                   "[pool p]\nmode = server\nlisten = :1\nkey = /k\ncert = /");
  memset(big + n, 'c', 4000);
  strcpy(big + n + 4000, "\n");
  assert_int_equal(sup_config_load_string(c, big, "t", err, sizeof(err)), 0);
  assert_int_equal(strlen(c->pools[0].cert_file), 4001);
  free(big);
}

static const struct bad bad_strings[] = {
    {"[pool a]\nmode = server\nlisten = :1\nmax_cap = -3\n",
     "t.conf:4: max_cap: \"-3\" must be a positive number"},
    {"[pool a]\nmode = server\nlisten = :1\n\nmax_cap = many\n",
     "t.conf:5: max_cap: \"many\" is not a number"},
    {"[pool a]\nmode = client\ntarget = 1.2.3.4:1\nmin_interval = 1\n",
     "t.conf:4: min_interval: \"1\" is not a duration (e.g. 500ms, 5s, "
     "1m30s)"},
    {"[pool a]\nmode = server\nlisten = 1.2.3.4\n",
     "t.conf:3: listen: \"1.2.3.4\" needs a port (host:port)"},
    {"[pool a]\nmode = client\ntarget = 1.2.3.4:1\ntls_mode = x\n",
     "t.conf:4: tls_mode: must be 0, 1 or 2"},
    {"[pool a]\nmode = client\ntarget = 1.2.3.4:1\ntls_mode = 2\n",
     "t.conf:4: tls_mode: 2 needs hostname (the name the server certificate "
     "is checked against)"},
    {"[pool a]\nmode = proxy\n", "t.conf:2: mode: must be server or client"},
    {"[pool a]\nlisten = :1\n",
     "t.conf:1: [pool a]: mode is required (mode = server or mode = client)"},
    {"[pool a]\n[pool b]\nmode = server\nlisten = :1\n",
     "t.conf:1: [pool a]: mode is required (mode = server or mode = client)"},
    {"[pool b]\nmode = server\nlisten = :1\n[pool a]\n",
     "t.conf:4: [pool a]: mode is required (mode = server or mode = client)"},
    {"[pool a]\nmode = server\n",
     "t.conf:1: [pool a]: listen is required for a server pool"},
    {"[pool a]\nmode = client\n",
     "t.conf:1: [pool a]: target is required for a client pool"},
    {"[pool a]\nlisten = :1\nmode = client\n",
     "t.conf:2: listen: only for server pools (this pool has mode = client)"},
    {"[pool a]\nmode = server\nlisten = :1\nmin_cap = 2\n",
     "t.conf:4: min_cap: only for client pools (this pool has mode = "
     "server)"},
    {"[pool a]\nmode = server\nlisten = :1\ncert = /c\n",
     "t.conf:4: cert: \"/c\" needs key too"},
    {"[pool a]\nmode = server\nlisten = :1\nkey = /k\n",
     "t.conf:4: key: \"/k\" needs cert too"},
    {"[pool a]\nmode = client\ntarget = 1.2.3.4:1\nmin_cap = 9\nmax_cap = 3\n",
     "t.conf:4: min_cap: 9 is greater than max_cap 3"},
    {"[pool a]\nmode = server\nlisten = :1\nmax_cap = 1\nmax_cap = 2\n",
     "t.conf:5: max_cap: set twice in [pool a] (first on line 4)"},
    {"[pool a]\nmode = server\nlisten = :1\nfoo = 1\n",
     "t.conf:4: foo: unknown key"},
    {"[pool a]\nmode = server\nlisten = :1\nmax-cap = 1\n",
     "t.conf:4: max-cap: unknown key (did you mean max_cap?)"},
    {"[pool a]\nmode = server\nlisten = :1\nMode = server\n",
     "t.conf:4: Mode: unknown key (did you mean mode?)"},
    {"[pool a]\nmode = server\nlisten = :1\n[tenant]\nworkers = 1\n",
     "t.conf:4: [tenant]: unknown section (expected [global] or [pool "
     "NAME])"},
    {"[pool a]\nmode = server\nlisten = :1\n[tenant]\n",
     "t.conf:4: [tenant]: unknown section (expected [global] or [pool "
     "NAME])"},
    {"[pool]\nmode = server\n", "t.conf:1: [pool]: needs a name: [pool NAME]"},
    {"[pool a/b]\nmode = server\n",
     "t.conf:1: [pool a/b]: not a valid pool name (1-63 characters of A-Z "
     "a-z 0-9 _ . -)"},
    {"[pool a]\nmode = server\nlisten = :1\n[pool b]\nmode = server\nlisten "
     "= :2\n[pool a]\nmode = server\nlisten = :3\n",
     "t.conf:7: [pool a]: duplicate pool name (first on line 1)"},
    {"[pool a]\nmode = server\nlisten = :1\n[pool a]\n",
     "t.conf:4: [pool a]: duplicate pool name (first on line 1)"},
    {"[pool a]\nmode = server\nlisten = :1\n[pool b]\nmode = server\nlisten "
     "= 0.0.0.0:1\n",
     "t.conf:6: listen: 0.0.0.0:1 is already the address of pool a"},
    {"workers = 2\n", "t.conf:1: workers: outside any section (put it under "
                      "[global] or [pool NAME])"},
    {"[global]\nmax_cap = 2\n",
     "t.conf:2: max_cap: not a [global] key (it belongs in a [pool NAME] "
     "section)"},
    {"[pool a]\nmode = server\nworkers = 2\n",
     "t.conf:3: workers: not a pool key (it belongs in [global])"},
    {"[global]\nworkers = 1\n[global]\nuser = x\n",
     "t.conf:3: [global]: appears twice (first on line 1)"},
    {"[global]\nworkers = 1\nworkers = 2\n",
     "t.conf:3: workers: set twice in [global] (first on line 2)"},
    {"[global]\nworkers = 2\n", "t.conf: no pools (add a [pool NAME] section)"},
    {"", "t.conf: no pools (add a [pool NAME] section)"},
    {"[pool a]\nmode = server\nlisten = :1\nworker = 0\n",
     "t.conf:4: worker: needs workers = N in [global] (workers = 0 gives "
     "every pool a worker of its own)"},
    {"[global]\nworkers = 2\n[pool a]\nmode = server\nlisten = :1\nworker = "
     "2\n",
     "t.conf:6: worker: 2 is out of range (workers = 2: 0 to 1)"},
    {"[pool a]\nmode = server\nlisten = :1\nworker = -1\n",
     "t.conf:4: worker: \"-1\" must be a number from 0 to 255"},
    {"[pool a]\nmode = server\nlisten = :1\nclient_ip = 10.1.0.0/8\n",
     "t.conf:4: client_ip: \"10.1.0.0/8\" has host bits set (did you mean "
     "10.0.0.0/8?)"},
    {"[pool a]\nmode = server\nlisten = :1\nclient_ip = 10.0.0.0/8, fd00::/"
     "8, fe80::1/129\n",
     "t.conf:4: client_ip: \"fe80::1/129\" is not an IP address or CIDR "
     "prefix"},
    {"[pool a]\nmode = server\nlisten = :1\nclient_ip =\n",
     "t.conf:4: client_ip: must not be empty (leave it out to allow every "
     "address)"},
    {"[pool a]\nmode = server\nlisten = :1\n[pool a\n",
     "t.conf:4: section header without a closing ]"},
    {"[pool a]\nmode = server\nlisten = :1\njust words\n",
     "t.conf:4: \"just words\" is not [section], key = value or a comment"},
    {"[pool a]\nmode = server\n= :1\n",
     "t.conf:3: a key is missing before '='"},
    {"[global]\nchroot = /\n",
     "t.conf:2: chroot: \"/\" is no sandbox (the worker would see every "
     "file)"},
    {"[global]\nlog_level = loud\n",
     "t.conf:2: log_level: must be error, warn, info or debug"},
    {"[pool a]\nmode = server\nlisten = :1\nkeep_alive = 1s \"x\\\"\n",
     "t.conf:4: keep_alive: \"1s \\\"x\\\\\\\"\" is not a duration (e.g. "
     "500ms, 5s, 1m30s)"},
    {"[pool a]\nmode = server\nlisten = :1\nkeep_alive = \x01\x7f\n",
     "t.conf:4: keep_alive: \"\\x01\\x7f\" is not a duration (e.g. 500ms, "
     "5s, 1m30s)"},
};

static void test_string_bad(void **state) {
  struct sup_config *c = *state;
  char err[512];
  for (size_t i = 0; i < sizeof(bad_strings) / sizeof(bad_strings[0]); i++) {
    canary(c);
    strcpy(err, "(not set)");
    int rc = sup_config_load_string(c, bad_strings[i].line, "t.conf", err, 512);
    if (rc != -EINVAL || strcmp(err, bad_strings[i].msg) != 0)
      fail_msg("config:\n%s\n  rc %d, message:\n  %s\n  wanted:\n  %s",
               bad_strings[i].line, rc, err, bad_strings[i].msg);
    assert_canary(c);
  }
}

static void test_string_limits(void **state) {
  struct sup_config *c = *state;
  char err[256];
  size_t cap = (SUP_POOLS_MAX + 1) * 64 + 64;
  char *text = malloc(cap);
  assert_non_null(text);
  size_t n = 0;
  for (int i = 0; i < SUP_POOLS_MAX; i++)
    n +=
        (size_t)snprintf(text + n, cap - n,
                         "[pool p%d]\nmode = server\nlisten = :%d\n", i, i + 1);
  assert_int_equal(sup_config_load_string(c, text, "t", err, sizeof(err)), 0);
  assert_int_equal(c->npools, SUP_POOLS_MAX);
  assert_string_equal(c->pools[SUP_POOLS_MAX - 1].name, "p255");
  snprintf(text + n, cap - n, "[pool one-more]\nmode = server\n");
  canary(c);
  assert_int_equal(sup_config_load_string(c, text, "t", err, sizeof(err)),
                   -EINVAL);
  assert_string_equal(err, "t:769: [pool one-more]: too many pools (max 256)");
  assert_canary(c);
  free(text);

  /* a line longer than the limit is refused, not split */
  text = malloc(SUP_LINE_MAX + 64);
  assert_non_null(text);
  n = (size_t)snprintf(text, 64, "[pool a]\nmode = server\nca = ");
  memset(text + n, 'a', SUP_LINE_MAX);
  text[n + SUP_LINE_MAX] = '\0';
  assert_int_equal(sup_config_load_string(c, text, "t", err, sizeof(err)),
                   -EINVAL);
  assert_string_equal(err, "t:3: line is too long (max 8190 bytes)");

  /* a path longer than a path buffer */
  n = (size_t)snprintf(text, 64, "[pool a]\nmode = server\nca = /");
  memset(text + n, 'a', 5000);
  text[n + 5000] = '\0';
  assert_int_equal(sup_config_load_string(c, text, "t", err, sizeof(err)),
                   -EINVAL);
  assert_non_null(strstr(err, "t:3: ca: \"/aaaa"));
  assert_non_null(strstr(err, "...\" is too long (max 4095 bytes)"));

  /* 256 client_ip entries fit, the 257th does not */
  size_t cap2 = 256 * 32 + 128;
  char *ips = malloc(cap2);
  assert_non_null(ips);
  n = (size_t)snprintf(ips, cap2, "[pool a]\nmode=server\nlisten=:1\n");
  for (int i = 0; i < 256; i++)
    n += (size_t)snprintf(ips + n, cap2 - n, "client_ip = 10.0.%d.%d\n",
                          i / 256, i % 256);
  assert_int_equal(sup_config_load_string(c, ips, "t", err, sizeof(err)), 0);
  assert_int_equal(c->pools[0].client_ip.n, 256);
  snprintf(ips + n, cap2 - n, "client_ip = 10.1.0.0/16\n");
  assert_int_equal(sup_config_load_string(c, ips, "t", err, sizeof(err)),
                   -EINVAL);
  assert_string_equal(err, "t:260: client_ip: too many addresses (max 256 "
                           "per pool)");
  free(ips);
  free(text);
}

/* client_ip: several lines, comma lists, spaces, IPv4 and IPv6 exact
 * addresses and prefixes, IPv4-mapped peers. */
static void test_string_client_ip(void **state) {
  struct sup_config *c = *state;
  char err[256];
  const char *text = "[pool a]\n"
                     "mode = server\n"
                     "listen = [::1]:4433\n"
                     "client_ip = 10.0.0.0/8,192.0.2.1 , 2001:db8::/32\n"
                     "client_ip = fd00:1234::/32\n"
                     "client_ip = ::1, 2001:db8:ffff::/48\n"
                     "client_ip = ::ffff:198.51.100.0/120\n";
  assert_int_equal(sup_config_load_string(c, text, "t", err, sizeof(err)), 0);
  const struct qp_ipfilter *f = &c->pools[0].client_ip;
  assert_int_equal(f->n, 7);
  assert_true(allows(f, "10.255.0.1"));
  assert_true(allows(f, "192.0.2.1"));
  assert_false(allows(f, "192.0.2.2"));
  assert_true(allows(f, "2001:db8:1::1"));
  assert_true(allows(f, "fd00:1234:5678::9"));
  assert_false(allows(f, "fd00:1235::1"));
  assert_true(allows(f, "::1"));
  assert_false(allows(f, "::2"));
  assert_true(allows(f, "198.51.100.77"));
  assert_true(allows(f, "::ffff:10.1.2.3"));
  assert_false(allows(f, "11.0.0.1"));
}

/* ---- files --------------------------------------------------------------- */

static void write_file(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fputs(text, f);
  fclose(f);
}

static void test_file(void **state) {
  struct sup_config *c = *state;
  char err[512], dir[] = "/tmp/qp-test-config-XXXXXX", path[600];
  assert_non_null(mkdtemp(dir));
  snprintf(path, sizeof(path), "%s/qpoold.conf", dir);
  write_file(path, good_conf);

  assert_int_equal(sup_config_load_file(c, path, err, sizeof(err)), 0);
  assert_int_equal(c->npools, 3);
  assert_string_equal(c->config_file, path);

  /* relative: made absolute */
  char cwd[512];
  assert_non_null(getcwd(cwd, sizeof(cwd)));
  assert_int_equal(chdir(dir), 0);
  assert_int_equal(sup_config_load_file(c, "qpoold.conf", err, sizeof(err)), 0);
  assert_int_equal(chdir(cwd), 0);
  assert_string_equal(c->config_file, path);

  /* qpoold --config FILE: global flags win over [global] */
  char line[800];
  snprintf(line, sizeof(line),
           "--config %s --workers 3 --user other --foreground", path);
  assert_int_equal(args(c, line, err, sizeof(err)), 0);
  assert_int_equal(c->npools, 3);
  assert_int_equal(c->workers, 3);
  assert_string_equal(c->user, "other");
  assert_string_equal(c->control, "/run/qpool/t.sock");
  assert_int_equal(c->foreground, 1);
  assert_string_equal(c->config_file, path);

  /* ... and a flag that makes a pool's worker index invalid is caught */
  snprintf(line, sizeof(line), "--config %s --workers 1", path);
  canary(c);
  assert_int_equal(args(c, line, err, sizeof(err)), -EINVAL);
  char want[800];
  snprintf(want, sizeof(want),
           "%s:25: worker: 1 is out of range (workers = 1: 0 to 0)", path);
  assert_string_equal(err, want);
  assert_canary(c);

  /* errors in the file name the file as given */
  write_file(path, "[pool a]\nmode = server\nlisten = :1\nmax_cap = -3\n");
  snprintf(line, sizeof(line), "--config %s", path);
  assert_int_equal(args(c, line, err, sizeof(err)), -EINVAL);
  snprintf(want, sizeof(want),
           "%s:4: max_cap: \"-3\" must be a positive number", path);
  assert_string_equal(err, want);
  assert_int_equal(sup_config_load_file(c, path, err, sizeof(err)), -EINVAL);
  assert_string_equal(err, want);

  /* binary junk */
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fwrite("[pool a]\n\0mode = server\n", 1, 24, f);
  fclose(f);
  assert_int_equal(sup_config_load_file(c, path, err, sizeof(err)), -EINVAL);
  snprintf(want, sizeof(want), "%s: contains a NUL byte (not a text file)",
           path);
  assert_string_equal(err, want);

  /* a directory */
  assert_int_equal(sup_config_load_file(c, dir, err, sizeof(err)), -EINVAL);
  snprintf(want, sizeof(want), "%s: not a regular file", dir);
  assert_string_equal(err, want);

  /* too big */
  f = fopen(path, "w");
  assert_non_null(f);
  for (int i = 0; i < SUP_CONFIG_MAX / 16 + 1; i++)
    fputs("; padding......\n", f);
  fclose(f);
  assert_int_equal(sup_config_load_file(c, path, err, sizeof(err)), -EINVAL);
  snprintf(want, sizeof(want), "%s: larger than %d bytes", path,
           SUP_CONFIG_MAX);
  assert_string_equal(err, want);

  unlink(path);
  assert_int_equal(sup_config_load_file(c, path, err, sizeof(err)), -EINVAL);
  snprintf(want, sizeof(want), "%s: cannot open: No such file or directory",
           path);
  assert_string_equal(err, want);
  rmdir(dir);
}

/* The shipped example and the documentation stay in step with the parser:
 * the example loads, and the reference names every key. */
#define source_file repo_file

static void test_example_and_docs(void **state) {
  struct sup_config *c = *state;
  char err[512];
  char *ex = source_file("examples/qpoold.conf");
  char *doc = source_file("docs/qpoold-config.md");
  if (!ex || !doc) {
    free(ex);
    free(doc);
    skip();
  }
  if (sup_config_load_string(c, ex, "examples/qpoold.conf", err, sizeof(err)) !=
      0)
    fail_msg("%s", err);
  assert_true(c->npools >= 3);
  int servers = 0, clients = 0, with_ip = 0;
  for (size_t i = 0; i < c->npools; i++) {
    servers += c->pools[i].server;
    clients += !c->pools[i].server;
    with_ip += c->pools[i].server && c->pools[i].client_ip.n > 0;
  }
  assert_true(servers >= 2 && clients >= 1 && with_ip >= 2);

  static const char *const keys[] = {
      "`mode`",          "`listen`",       "`target`",       "`min_cap`",
      "`max_cap`",       "`min_interval`", "`max_interval`", "`keep_alive`",
      "`setup_timeout`", "`tls_mode`",     "`hostname`",     "`ca`",
      "`cert`",          "`key`",          "`client_ip`",    "`worker`",
      "`workers`",       "`control`",      "`user`",         "`chroot`",
      "`log_level`",     "`--foreground`", "`--config`",     "`--name`",
  };
  for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
    if (!strstr(doc, keys[i]))
      fail_msg("docs/qpoold-config.md does not mention %s", keys[i]);
  free(ex);
  free(doc);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_defaults, setup, teardown),
      cmocka_unit_test_setup_teardown(test_args_server_minimal, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_args_server_full, setup, teardown),
      cmocka_unit_test_setup_teardown(test_args_client, setup, teardown),
      cmocka_unit_test_setup_teardown(test_args_client_defaults, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_args_target_names, setup, teardown),
      cmocka_unit_test_setup_teardown(test_cap_limit, setup, teardown),
      cmocka_unit_test_setup_teardown(test_args_help_version, setup, teardown),
      cmocka_unit_test_setup_teardown(test_args_twice, setup, teardown),
      cmocka_unit_test_setup_teardown(test_args_bad, setup, teardown),
      cmocka_unit_test_setup_teardown(test_args_small_err, setup, teardown),
      cmocka_unit_test_setup_teardown(test_string_good, setup, teardown),
      cmocka_unit_test_setup_teardown(test_string_equal, setup, teardown),
      cmocka_unit_test_setup_teardown(test_string_syntax, setup, teardown),
      cmocka_unit_test_setup_teardown(test_string_bad, setup, teardown),
      cmocka_unit_test_setup_teardown(test_string_limits, setup, teardown),
      cmocka_unit_test_setup_teardown(test_string_client_ip, setup, teardown),
      cmocka_unit_test_setup_teardown(test_file, setup, teardown),
      cmocka_unit_test_setup_teardown(test_example_and_docs, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
