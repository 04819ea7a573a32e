/* qpoold's configuration: one pool from command-line flags (`qpoold server
 * ...`, `qpoold client ...`) or many pools from an INI file (`qpoold --config
 * FILE`, parsed with libinih). Both paths share the value parsers and the
 * final checks, so a value means the same and is refused with the same words
 * in either place. Reference: docs/qpoold-config.md. */
#ifndef QP_SUPERVISOR_CONFIG_H
#define QP_SUPERVISOR_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>

#include "shared/ipfilter.h"
#include "shared/settings.h" /* the pool settings, their limits */

#define SUP_POOLS_MAX 256
#define SUP_ACL_MAX 32         /* entries in allow_users / allow_groups */
#define SUP_NAME_MAX 64        /* pool name buffer: at most 63 characters */
#define SUP_WORKERS_MAX 256    /* largest `workers` */
#define SUP_CONFIG_MAX 1048576 /* largest config file, bytes */
#define SUP_LINE_MAX 8190      /* longest config line, bytes */

#define SUP_DEFAULT_CONTROL "/run/qpool/qpoold.sock"
#define SUP_DEFAULT_USER "nobody"
#define SUP_DEFAULT_CHROOT "/run/qpool/empty"

struct sup_pool_cfg {
  char name[SUP_NAME_MAX]; /* [A-Za-z0-9_.-]{1,63}, unique */
  int server;              /* 1 server pool, 0 client pool */
  /* server: the listen address (numeric); client: a numeric target, or
   * addr_len 0 for a host name (resolved by qpoold on every dial) */
  struct sockaddr_storage addr;
  socklen_t addr_len;
  char addr_text[128]; /* as the user wrote it */
  /* every setting of shared/settings.h's table */
  struct qp_pool_settings set;
  /* "" = unset */
  char ca_file[4096], cert_file[4096], key_file[4096];
  struct qp_ipfilter client_ip; /* server; empty: anyone */
  /* who may take streams from this pool or change it (Flush, AddError,
   * ResetError) over the control socket, besides root and qpoold's own
   * user: these uids, and callers whose groups include these gids */
  uint32_t allow_uid[SUP_ACL_MAX], allow_gid[SUP_ACL_MAX];
  size_t n_allow_uid, n_allow_gid;
  int worker; /* -1 = automatic assignment */
};

struct sup_config {
  /* Allocate sup_config on the heap: it is about 5 MB. Entries past npools
   * are unspecified. */
  struct sup_pool_cfg pools[SUP_POOLS_MAX];
  size_t npools;
  int workers;           /* 0 = one per pool (tenant isolation) */
  char control[4096];    /* control socket path (fits sun_path: < 108 bytes) */
  char metrics_text[64]; /* metrics_listen as written; "" = off */
  struct sockaddr_storage metrics_addr; /* its numeric address */
  socklen_t metrics_len;
  char user[64];          /* worker user (default "nobody") */
  char chroot[4096];      /* workers' chroot, an empty directory */
  char config_file[4096]; /* absolute path of the file read, "" = flags */
  int foreground;         /* --foreground */
  int check;              /* --check: validate, print, exit */
  int lifeline;           /* --lifeline FD: stop at its EOF; -1 = none */
  int log_level;          /* enum qp_log_level, default QP_LOG_INFO */
};

/* Parses argv: `qpoold server ...`, `qpoold client ...`, `qpoold --config
 * FILE [global flags]` (flags override the file's [global] keys), `--help`,
 * `--version`. Returns 0 (run), 1 (printed help or version on stdout: exit
 * 0), or -EINVAL with a message naming the bad flag or value in err (e.g.
 * `--max-cap: "abc" is not a number`). On error *c is untouched. Callable
 * any number of times in one process (SIGHUP: call it again with the same
 * argv to reload the file). */
int sup_config_from_args(struct sup_config *c, int argc, char **argv, char *err,
                         size_t errlen);

/* Parses an INI file: [global] and [pool NAME] sections (keys in
 * docs/qpoold-config.md). Errors name file:line and the key, e.g.
 * `qpoold.conf:12: max_cap: "-3" must be a positive number`. Unknown keys and
 * sections are errors. Returns 0 or -EINVAL (*c untouched then). */
int sup_config_load_file(struct sup_config *c, const char *path, char *err,
                         size_t errlen);

/* Same, from a NUL-terminated string; name_for_errors stands in for the file
 * name in messages. */
int sup_config_load_string(struct sup_config *c, const char *text,
                           const char *name_for_errors, char *err,
                           size_t errlen);

/* Global defaults, no pools. Does not touch pools[]. */
void sup_config_defaults(struct sup_config *c);

/* The --help text. */
void sup_usage(FILE *f);

/* The pool called name, or NULL. */
const struct sup_pool_cfg *sup_config_find(const struct sup_config *c,
                                           const char *name);

/* 1 if a and b describe the same pool (for SIGHUP: an unchanged pool is left
 * alone). Client pools compare the target as written (a host name is
 * resolved again at every dial anyway). */
int sup_pool_cfg_equal(const struct sup_pool_cfg *a,
                       const struct sup_pool_cfg *b);

#endif
