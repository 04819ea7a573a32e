/* Sandbox of a worker: chroot, unprivileged ids, resource limits,
 * no_new_privs, parent-death signal and a seccomp allowlist, in that order. */
#ifndef QP_WORKER_SANDBOX_H
#define QP_WORKER_SANDBOX_H

#include <stddef.h>
#include <sys/resource.h>
#include <sys/types.h>

#define WRK_SECCOMP_OFF 0  /* null backend: every other step still applies */
#define WRK_SECCOMP_KILL 1 /* unlisted syscall: SIGSYS kills the process */
#define WRK_SECCOMP_TRAP 2 /* debug: log the syscall number, _exit(159) */

struct wrk_sandbox_opts {
  uid_t uid; /* drop to these when running as root (never 0) */
  gid_t gid;
  const char *chroot_dir; /* an empty directory; NULL = skip (non-root) */
  int seccomp_mode;       /* WRK_SECCOMP_*; 0 off, 1 kill, 2 trap+log */
  rlim_t max_fds;         /* RLIMIT_NOFILE soft = hard; 0 = keep */
};

/* Enters the sandbox in this fixed order:
 *   chroot(chroot_dir) + chdir("/")
 *   -> setgroups(0) + setresgid + setresuid, only when running as root
 *      (a real, effective or saved uid of 0); then checked, as OpenSSH does
 *   -> rlimits: NPROC 0, CORE 0, NOFILE max_fds, FSIZE 0 (FSIZE is left
 *      alone when stdout or stderr is a regular file: the first log line
 *      would raise SIGXFSZ). NPROC 0 also refuses new threads.
 *   -> PR_SET_DUMPABLE 0 -> PR_SET_NO_NEW_PRIVS
 *   -> PR_SET_PDEATHSIG(SIGKILL) (after the id change, which clears it),
 *      then getppid() must still be `parent` (or, if parent <= 0, the
 *      parent seen on entry): otherwise the parent already died
 *   -> seccomp filter.
 * Everything that opens files (GnuTLS, trust store) must be set up before.
 * A max_fds above the hard limit is raised while still root (before the ids
 * change); otherwise it fails. In ASan builds the leak check runs at entry
 * (LeakSanitizer cannot work inside), so leaks are not reported at exit.
 * Returns 0, or a negative errno with a sentence in err (e.g. "cannot chroot
 * into /var/empty/qpool: No such file or directory"); the process is then
 * half-sandboxed and the caller must exit. */
int wrk_sandbox_enter(const struct wrk_sandbox_opts *o, pid_t parent, char *err,
                      size_t errlen);

/* Test support: tries one forbidden operation — "open", "socket", "bind",
 * "connect", "fork", "execve" or "ptrace" — and returns 0 if it SUCCEEDED (a
 * hole in the sandbox; whatever it created is closed or reaped again), the
 * negative errno it failed with, or -EINVAL for an unknown name. The filter
 * answers EACCES for open and EPERM for the others. execve targets "/",
 * which the kernel refuses by itself (EACCES), so the process is never
 * replaced; ptrace attaches to the parent and detaches at once. */
int wrk_sandbox_probe(const char *what);

#endif
