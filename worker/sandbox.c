/* Sandbox of a worker: the fixed sequence of wrk_sandbox_enter() and the
 * seccomp allowlist of its event loop (libuv/epoll, ngtcp2, GnuTLS,
 * protobuf-c), found by tracing np-peer and the sandbox-check helper. */
#include "worker/sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <seccomp.h>

#define TRAP_EXIT_STATUS 159 /* 128 + SIGSYS, as if the kernel had killed */

/* LeakSanitizer stops the world with a clone that ptrace()s the process:
 * impossible once sandboxed (RLIMIT_NPROC, dumpable 0, seccomp). In ASan
 * builds its end-of-process check is moved to the sandbox entry. */
#if defined(__SANITIZE_ADDRESS__)
#define SB_HAVE_LSAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(leak_sanitizer)
#define SB_HAVE_LSAN 1
#endif
#endif
#ifdef SB_HAVE_LSAN
void __lsan_do_leak_check(void) __attribute__((weak));
#endif

__attribute__((format(printf, 4, 5))) static int
fail(char *err, size_t errlen, int rc, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(err, errlen, fmt, ap);
  va_end(ap);
  if (n >= 0 && (size_t)n < errlen)
    snprintf(err + n, errlen - (size_t)n, ": %s", strerror(-rc));
  return rc;
}

static int enter_chroot(const char *dir, char *err, size_t errlen) {
  if (!dir)
    return 0;
  if (chroot(dir) < 0)
    return fail(err, errlen, -errno, "cannot chroot into %s", dir);
  if (chdir("/") < 0)
    return fail(err, errlen, -errno, "cannot chdir to / inside %s", dir);
  return 0;
}

static int is_root(void) {
  uid_t r, e, s;
  return getresuid(&r, &e, &s) < 0 || r == 0 || e == 0 || s == 0;
}

/* As OpenSSH's permanently_set_uid(): drop, then prove root is gone. Only
 * root may raise a hard limit: RLIMIT_NOFILE is raised here if max_fds asks
 * for more, and fixed to exactly max_fds with the other limits later. */
static int drop_ids(uid_t uid, gid_t gid, rlim_t max_fds, char *err,
                    size_t errlen) {
  if (!is_root())
    return 0;
  if (uid == 0 || gid == 0)
    return fail(err, errlen, -EINVAL,
                "refusing to run the worker as root (uid %u, gid %u)",
                (unsigned)uid, (unsigned)gid);
  struct rlimit rl;
  if (max_fds && getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_max < max_fds) {
    rlim_t hard = rl.rlim_max;
    rl.rlim_max = max_fds;
    if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
      return fail(err, errlen, -errno,
                  "cannot raise RLIMIT_NOFILE to %llu (hard limit %llu)",
                  (unsigned long long)max_fds, (unsigned long long)hard);
  }
  if (setgroups(0, NULL) < 0)
    return fail(err, errlen, -errno, "cannot drop supplementary groups");
  if (setresgid(gid, gid, gid) < 0)
    return fail(err, errlen, -errno, "cannot set gid %u", (unsigned)gid);
  if (setresuid(uid, uid, uid) < 0)
    return fail(err, errlen, -errno, "cannot set uid %u", (unsigned)uid);
  uid_t ru, eu, su;
  gid_t rg, eg, sg;
  if (getresuid(&ru, &eu, &su) < 0 || getresgid(&rg, &eg, &sg) < 0 ||
      ru != uid || eu != uid || su != uid || rg != gid || eg != gid ||
      sg != gid || getgroups(0, NULL) != 0 || setuid(0) != -1 ||
      setgid(0) != -1)
    return fail(err, errlen, -EPERM, "ids were not dropped to %u:%u",
                (unsigned)uid, (unsigned)gid);
  return 0;
}

static int set_limit(int res, const char *name, rlim_t v, char *err,
                     size_t errlen) {
  struct rlimit rl = {v, v};
  if (setrlimit(res, &rl) == 0)
    return 0;
  int rc = -errno;
  struct rlimit cur = {0, 0};
  (void)getrlimit(res, &cur);
  return fail(err, errlen, rc, "cannot set %s to %llu (hard limit %llu)", name,
              (unsigned long long)v, (unsigned long long)cur.rlim_max);
}

static int is_regular_file(int fd) {
  struct stat st;
  return fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
}

static int set_limits(rlim_t max_fds, char *err, size_t errlen) {
  int rc;
  if ((rc = set_limit(RLIMIT_NPROC, "RLIMIT_NPROC", 0, err, errlen)) < 0 ||
      (rc = set_limit(RLIMIT_CORE, "RLIMIT_CORE", 0, err, errlen)) < 0)
    return rc;
  if (max_fds && (rc = set_limit(RLIMIT_NOFILE, "RLIMIT_NOFILE", max_fds, err,
                                 errlen)) < 0)
    return rc;
  /* With RLIMIT_FSIZE 0 the first log line into an inherited stdout/stderr
   * that is a regular file (qpoold 2>log) would raise SIGXFSZ and kill the
   * worker: keep the limit then; nothing else can be opened anyway. */
  if (is_regular_file(STDOUT_FILENO) || is_regular_file(STDERR_FILENO))
    return 0;
  return set_limit(RLIMIT_FSIZE, "RLIMIT_FSIZE", 0, err, errlen);
}

/* setresuid() cleared any earlier PR_SET_PDEATHSIG: set it now, then make
 * sure the parent did not die before it was armed. */
static int arm_parent_death(pid_t parent, char *err, size_t errlen) {
  if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0)
    return fail(err, errlen, -errno, "cannot set PR_SET_PDEATHSIG");
  pid_t now = getppid();
  if (now != parent)
    return fail(err, errlen, -ESRCH,
                "parent %ld is gone (parent is now %ld) before the sandbox "
                "was entered",
                (long)parent, (long)now);
  return 0;
}

/* --- seccomp ------------------------------------------------------------ */

struct sb_rule {
  int nr;           /* SCMP_SYS(name): a typo does not compile */
  const char *name; /* for error messages */
  int err;          /* 0: allow; otherwise fail with this errno */
  unsigned ncmp;    /* 0: any arguments; 1: only if cmp holds */
  struct scmp_arg_cmp cmp;
};

#define ALLOW(s)                                                               \
  {                                                                            \
    SCMP_SYS(s), #s, 0, 0, {                                                   \
      0, 0, 0, 0                                                               \
    }                                                                          \
  }
#define ALLOW_IF(s, arg, op, a, b)                                             \
  {                                                                            \
    SCMP_SYS(s), #s, 0, 1, {                                                   \
      arg, op, a, b                                                            \
    }                                                                          \
  }
#define DENY(s, e)                                                             \
  {                                                                            \
    SCMP_SYS(s), #s, e, 0, {                                                   \
      0, 0, 0, 0                                                               \
    }                                                                          \
  }
#define DENY_IF(s, e, arg, op, a, b)                                           \
  {                                                                            \
    SCMP_SYS(s), #s, e, 1, {                                                   \
      arg, op, a, b                                                            \
    }                                                                          \
  }

/* Debug mode: which syscall the filter refused. Async-signal-safe. */
static void on_sigsys(int sig, siginfo_t *si, void *uc) {
  static const char pre[] = "qpool sandbox: seccomp trapped syscall ";
  char buf[sizeof(pre) + 24];
  size_t n = sizeof(pre) - 1;
  memcpy(buf, pre, n);
  char digits[16];
  size_t nd = 0;
  unsigned v = si->si_syscall < 0 ? 0 : (unsigned)si->si_syscall;
  do {
    digits[nd++] = (char)('0' + v % 10);
    v /= 10;
  } while (v && nd < sizeof(digits));
  while (nd)
    buf[n++] = digits[--nd];
  buf[n++] = '\n';
  ssize_t w = write(STDERR_FILENO, buf, n);
  (void)w;
  _exit(TRAP_EXIT_STATUS);
}

static int seccomp_install(int mode, char *err, size_t errlen) {
  const scmp_datum_t self = (scmp_datum_t)getpid();
  /* clang-format off */
  const struct sb_rule rules[] = {
    /* Soft denials: an errno instead of death, so that libraries fail
     * gracefully and wrk_sandbox_probe() can observe them. */
    /* files: nothing is there (empty chroot); sanitizer reports try
     * /proc/self/maps and /proc/self/exe and carry on without them */
    DENY(creat,             EACCES),
    DENY(open,              EACCES),
    DENY(openat,            EACCES),
    DENY(openat2,           EACCES),
    DENY(readlink,          EACCES),
    DENY(readlinkat,        EACCES),
    /* network: only sockets handed over, and AF_UNIX pairs */
    DENY(accept,            EPERM),
    DENY(accept4,           EPERM),
    DENY(bind,              EPERM),
    DENY(connect,           EPERM),
    DENY(listen,            EPERM),
    DENY(socket,            EPERM),
    DENY_IF(socketpair,     EPERM, 0, SCMP_CMP_NE, AF_UNIX, 0),
    /* processes; clone3 passes its flags in memory the filter cannot
     * read: ENOSYS makes glibc fall back to clone, whose flags it can */
    DENY_IF(clone,          EPERM, 0, SCMP_CMP_MASKED_EQ, CLONE_THREAD, 0),
    DENY(clone3,            ENOSYS),
    DENY(execve,            EPERM),
    DENY(execveat,          EPERM),
    DENY(fork,              EPERM),
    DENY(process_vm_readv,  EPERM),
    DENY(process_vm_writev, EPERM),
    DENY(ptrace,            EPERM),
    DENY(vfork,             EPERM),
    /* isatty(): stdio, sanitizer reports */
    DENY_IF(ioctl,          ENOTTY, 1, SCMP_CMP_EQ, TCGETS, 0),
    /* no new executable memory */
    DENY_IF(mmap,           EACCES, 2, SCMP_CMP_MASKED_EQ, PROT_EXEC,
            PROT_EXEC),
    DENY_IF(mprotect,       EACCES, 2, SCMP_CMP_MASKED_EQ, PROT_EXEC,
            PROT_EXEC),

    /* Allowed, alphabetically: what the loop was seen to call. */
    ALLOW(brk),                 /* malloc */
    ALLOW(clock_gettime),       /* ASan; the vDSO's fallback */
    ALLOW_IF(clone, 0, SCMP_CMP_MASKED_EQ, CLONE_THREAD, CLONE_THREAD),
                                /* threads (RLIMIT_NPROC still says no) */
    ALLOW(close),               /* fds of ended streams and connections */
    ALLOW(epoll_create1),       /* uv_loop_init */
    ALLOW(epoll_ctl),           /* libuv */
    ALLOW(epoll_pwait),         /* libuv (epoll_wait on arm64) */
    ALLOW(epoll_wait),          /* libuv */
    ALLOW(eventfd2),            /* uv_async_init */
    ALLOW(exit),                /* a thread ends */
    ALLOW(exit_group),          /* exit(), _exit() */
    ALLOW(fcntl),               /* O_NONBLOCK */
    ALLOW(futex),               /* pthread_once, libuv and GnuTLS locks */
    ALLOW(getpeername),         /* adopted sockets */
    ALLOW(getpid),              /* log lines */
    ALLOW(getppid),             /* parent checks, the ptrace probe */
    ALLOW(getrandom),           /* GnuTLS, ngtcp2's rand callback */
    ALLOW(getsockname),         /* adopted sockets */
    ALLOW(getsockopt),          /* SO_TYPE, IP_MTU */
    ALLOW(gettid),              /* abort() */
    ALLOW(gettimeofday),        /* the vDSO's fallback */
    ALLOW_IF(ioctl, 1, SCMP_CMP_EQ, FIONBIO, 0),  /* libuv */
    ALLOW_IF(ioctl, 1, SCMP_CMP_EQ, FIONREAD, 0), /* stream relay */
    ALLOW(madvise),             /* ASan, glibc free() */
    ALLOW_IF(mmap, 2, SCMP_CMP_MASKED_EQ, PROT_EXEC, 0),     /* malloc */
    ALLOW_IF(mprotect, 2, SCMP_CMP_MASKED_EQ, PROT_EXEC, 0), /* guard pages */
    ALLOW(mremap),              /* realloc() > 128 KiB (libuv watchers) */
    ALLOW(munmap),              /* free() > 128 KiB */
    ALLOW(newfstatat),          /* fstat(): stdio */
    ALLOW(pipe2),               /* uv_signal_init */
    ALLOW(poll),                /* POLLRDHUP checks on stream fds */
    ALLOW(ppoll),               /* poll() on arm64 */
    ALLOW(read),                /* stream relay, libuv pipes */
    ALLOW(recvfrom),            /* recv(): stream relay */
    ALLOW(recvmmsg),            /* QUIC datagrams */
    ALLOW(recvmsg),             /* supervisor frames with fds */
    ALLOW(restart_syscall),     /* after a signal */
    ALLOW(rt_sigaction),        /* uv_signal, abort() */
    ALLOW(rt_sigprocmask),      /* libuv signal handling */
    ALLOW(rt_sigreturn),        /* the end of any signal handler */
    ALLOW(sendmsg),             /* QUIC datagrams (GSO), frames with fds */
    ALLOW(sendto),              /* send(): stream relay */
    ALLOW(setsockopt),          /* buffer sizes, UDP_GRO */
    ALLOW(shutdown),            /* half-close of streams */
    ALLOW(sigaltstack),         /* ASan */
    ALLOW_IF(socketpair, 0, SCMP_CMP_EQ, AF_UNIX, 0), /* stream fds */
    ALLOW_IF(tgkill, 0, SCMP_CMP_EQ, self, 0),        /* abort(), raise() */
    ALLOW(time),                /* the vDSO's fallback */
    ALLOW(write),               /* logs, stream relay */
  };
  /* clang-format on */

  uint32_t deflt = SCMP_ACT_TRAP;
  if (mode == WRK_SECCOMP_KILL)
    deflt = seccomp_api_get() >= 3 ? SCMP_ACT_KILL_PROCESS : SCMP_ACT_KILL;
  scmp_filter_ctx ctx = seccomp_init(deflt);
  if (!ctx)
    return fail(err, errlen, -ENOMEM, "cannot create the seccomp filter");
  int rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 1);
  if (rc < 0) {
    seccomp_release(ctx);
    return fail(err, errlen, rc, "cannot ask seccomp to sync threads");
  }
  for (size_t i = 0; i < sizeof(rules) / sizeof(rules[0]); i++) {
    const struct sb_rule *r = &rules[i];
    uint32_t act = r->err ? SCMP_ACT_ERRNO((uint32_t)r->err) : SCMP_ACT_ALLOW;
    rc = seccomp_rule_add_array(ctx, act, r->nr, r->ncmp, &r->cmp);
    if (rc < 0) {
      seccomp_release(ctx);
      return fail(err, errlen, rc, "cannot add the seccomp rule for %s",
                  r->name);
    }
  }
  if (mode == WRK_SECCOMP_TRAP) {
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_sigaction = on_sigsys;
    sa.sa_flags = SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    sigset_t sys;
    sigemptyset(&sys);
    sigaddset(&sys, SIGSYS);
    if (sigaction(SIGSYS, &sa, NULL) < 0 ||
        sigprocmask(SIG_UNBLOCK, &sys, NULL) < 0) {
      rc = -errno;
      seccomp_release(ctx);
      return fail(err, errlen, rc, "cannot install the SIGSYS handler");
    }
  }
  rc = seccomp_load(ctx);
  seccomp_release(ctx);
  if (rc < 0)
    return fail(err, errlen, rc, "cannot load the seccomp filter");
  return 0;
}

int wrk_sandbox_enter(const struct wrk_sandbox_opts *o, pid_t parent, char *err,
                      size_t errlen) {
  char dummy[1];
  if (!err || !errlen) {
    err = dummy;
    errlen = sizeof(dummy);
  }
  if (!o || o->seccomp_mode < WRK_SECCOMP_OFF ||
      o->seccomp_mode > WRK_SECCOMP_TRAP)
    return fail(err, errlen, -EINVAL, "bad sandbox options");
  if (parent <= 0)
    parent = getppid();
#ifdef SB_HAVE_LSAN
  if (__lsan_do_leak_check)
    __lsan_do_leak_check(); /* leaks so far; none reported at exit */
#endif
  int rc;
  if ((rc = enter_chroot(o->chroot_dir, err, errlen)) < 0 ||
      (rc = drop_ids(o->uid, o->gid, o->max_fds, err, errlen)) < 0 ||
      (rc = set_limits(o->max_fds, err, errlen)) < 0)
    return rc;
  if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
    return fail(err, errlen, -errno, "cannot clear PR_SET_DUMPABLE");
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
    return fail(err, errlen, -errno, "cannot set PR_SET_NO_NEW_PRIVS");
  if ((rc = arm_parent_death(parent, err, errlen)) < 0)
    return rc;
  if (o->seccomp_mode != WRK_SECCOMP_OFF &&
      (rc = seccomp_install(o->seccomp_mode, err, errlen)) < 0)
    return rc;
  return 0;
}

/* --- probes: each returns 0 if the operation succeeded ------------------ */

static int probe_open(void) {
  int fd = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    return -errno;
  close(fd);
  return 0;
}

static int probe_socket(void) {
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return -errno;
  close(fd);
  return 0;
}

/* bind and connect use an AF_UNIX pair (still allowed), so that without the
 * filter both calls would succeed: an abstract name, and AF_UNSPEC. */
static int probe_on_pair(int (*op)(int fd)) {
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sv) < 0)
    return -errno;
  int rc = op(sv[0]);
  close(sv[0]);
  close(sv[1]);
  return rc;
}

static int bind_abstract(int fd) {
  struct sockaddr_un sa;
  memset(&sa, 0, sizeof(sa));
  sa.sun_family = AF_UNIX;
  int n = snprintf(sa.sun_path + 1, sizeof(sa.sun_path) - 1,
                   "qpool-sandbox-probe-%ld", (long)getpid());
  socklen_t len =
      (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)n);
  return bind(fd, (struct sockaddr *)&sa, len) < 0 ? -errno : 0;
}

static int connect_unspec(int fd) {
  struct sockaddr sa;
  memset(&sa, 0, sizeof(sa));
  sa.sa_family = AF_UNSPEC;
  return connect(fd, &sa, sizeof(sa)) < 0 ? -errno : 0;
}

static int probe_bind(void) {
  return probe_on_pair(bind_abstract);
}

static int probe_connect(void) {
  return probe_on_pair(connect_unspec);
}

static int probe_fork(void) {
  pid_t pid = fork();
  if (pid < 0)
    return -errno;
  if (pid == 0)
    _exit(0);
  while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
    ;
  return 0;
}

static int probe_execve(void) {
  static char root[] = "/";
  char *const argv[] = {root, NULL};
  char *const envp[] = {NULL};
  execve(root, argv, envp);
  return -errno;
}

static int probe_ptrace(void) {
  pid_t pp = getppid();
  if (ptrace(PTRACE_ATTACH, pp, NULL, NULL) < 0)
    return -errno;
  int st;
  (void)waitpid(pp, &st, __WALL);
  (void)ptrace(PTRACE_DETACH, pp, NULL, NULL);
  return 0;
}

int wrk_sandbox_probe(const char *what) {
  static const struct {
    const char *name;
    int (*run)(void);
  } probes[] = {
      {"bind", probe_bind},     {"connect", probe_connect},
      {"execve", probe_execve}, {"fork", probe_fork},
      {"open", probe_open},     {"ptrace", probe_ptrace},
      {"socket", probe_socket},
  };
  for (size_t i = 0; what && i < sizeof(probes) / sizeof(probes[0]); i++)
    if (strcmp(what, probes[i].name) == 0)
      return probes[i].run();
  return -EINVAL;
}
