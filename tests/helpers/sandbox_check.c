/* sandbox-check CHROOT_DIR [--trap] [--kill-probe]: enters the worker sandbox
 * as `nobody`, reports what each forbidden operation returned, proves that
 * what the event loop needs still works, then waits for EOF on stdin so that
 * tests/integration/sandbox.sh can inspect /proc/PID from outside. */
#include <errno.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <uv.h>

#include "worker/sandbox.h"

#define NOBODY_ID 65534

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vprintf(fmt, ap);
  va_end(ap);
  putchar('\n');
  fflush(stdout);
}

static void die(const char *what, int rc) {
  say("FAIL %s: %s", what, strerror(rc < 0 ? -rc : rc));
  exit(1);
}

/* Passes one end of a fresh AF_UNIX pair over chan (SCM_RIGHTS) and checks
 * that bytes written to the other end arrive through the received fd. */
static void check_fd_passing(const int chan[2]) {
  int sp[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) < 0)
    die("socketpair(AF_UNIX)", errno);
  char one = 'F';
  struct iovec iov = {&one, 1};
  union {
    struct cmsghdr h;
    char buf[CMSG_SPACE(sizeof(int))];
  } ctl;
  memset(&ctl, 0, sizeof(ctl));
  struct msghdr mh = {.msg_iov = &iov,
                      .msg_iovlen = 1,
                      .msg_control = ctl.buf,
                      .msg_controllen = sizeof(ctl)};
  struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  memcpy(CMSG_DATA(c), &sp[1], sizeof(int));
  if (sendmsg(chan[0], &mh, MSG_NOSIGNAL) != 1)
    die("sendmsg(SCM_RIGHTS)", errno);
  close(sp[1]);

  memset(&ctl, 0, sizeof(ctl));
  one = 0;
  mh.msg_controllen = sizeof(ctl);
  if (recvmsg(chan[1], &mh, MSG_CMSG_CLOEXEC) != 1 || one != 'F')
    die("recvmsg(SCM_RIGHTS)", errno);
  c = CMSG_FIRSTHDR(&mh);
  if (!c || c->cmsg_type != SCM_RIGHTS)
    die("recvmsg(SCM_RIGHTS): no fd", EPROTO);
  int got;
  memcpy(&got, CMSG_DATA(c), sizeof(int));
  char buf[4];
  if (write(sp[0], "ping", 4) != 4 || read(got, buf, 4) != 4 ||
      memcmp(buf, "ping", 4) != 0)
    die("I/O on the received fd", errno);
  close(got);
  close(sp[0]);
  say("ok fd passing");
}

struct loop_check {
  uv_timer_t timer;
  uv_poll_t poll;
  uint64_t started;
  int fired, readable;
};

static void on_timer(uv_timer_t *t) {
  struct loop_check *lc = t->data;
  if (uv_now(t->loop) - lc->started >= 10)
    lc->fired = 1;
  uv_close((uv_handle_t *)t, NULL);
}

static void on_readable(uv_poll_t *p, int status, int events) {
  struct loop_check *lc = p->data;
  lc->readable = status == 0 && (events & UV_READABLE);
  uv_close((uv_handle_t *)p, NULL);
}

/* A libuv loop created inside the sandbox: a 10 ms timer and a poll on an
 * AF_UNIX socket that becomes readable. */
static void check_loop(void) {
  uv_loop_t loop;
  struct loop_check lc;
  memset(&lc, 0, sizeof(lc));
  int sp[2], rc;
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) < 0)
    die("socketpair(AF_UNIX)", errno);
  if ((rc = uv_loop_init(&loop)) < 0)
    die("uv_loop_init", rc);
  lc.timer.data = lc.poll.data = &lc;
  lc.started = uv_now(&loop);
  if ((rc = uv_timer_init(&loop, &lc.timer)) < 0 ||
      (rc = uv_timer_start(&lc.timer, on_timer, 10, 0)) < 0)
    die("uv_timer_start", rc);
  if ((rc = uv_poll_init_socket(&loop, &lc.poll, sp[0])) < 0 ||
      (rc = uv_poll_start(&lc.poll, UV_READABLE, on_readable)) < 0)
    die("uv_poll_start", rc);
  if (write(sp[1], "x", 1) != 1)
    die("write", errno);
  uv_run(&loop, UV_RUN_DEFAULT);
  if (!lc.fired || !lc.readable)
    die("libuv loop (timer or poll did not fire)", EIO);
  if ((rc = uv_loop_close(&loop)) < 0)
    die("uv_loop_close", rc);
  close(sp[0]);
  close(sp[1]);
  say("ok libuv loop");
}

static void check_random(void) {
  unsigned char a[32], b[32];
  int rc = gnutls_rnd(GNUTLS_RND_RANDOM, a, sizeof(a));
  if (rc == 0)
    rc = gnutls_rnd(GNUTLS_RND_KEY, b, sizeof(b));
  if (rc != 0 || memcmp(a, b, sizeof(a)) == 0) {
    say("FAIL gnutls_rnd: %s", gnutls_strerror(rc));
    exit(1);
  }
  say("ok gnutls_rnd");
}

int main(int argc, char **argv) {
  int trap = 0, kill_probe = 0;
  const char *dir = NULL;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--trap") == 0)
      trap = 1;
    else if (strcmp(argv[i], "--kill-probe") == 0)
      kill_probe = 1;
    else if (!dir && argv[i][0] != '-')
      dir = argv[i];
    else {
      dir = NULL; /* unknown option: usage */
      break;
    }
  }
  if (!dir) {
    fprintf(stderr, "usage: sandbox-check CHROOT_DIR [--trap] "
                    "[--kill-probe]\n");
    return 2;
  }

  struct wrk_sandbox_opts o = {.uid = NOBODY_ID,
                               .gid = NOBODY_ID,
                               .chroot_dir = dir,
                               .seccomp_mode =
                                   trap ? WRK_SECCOMP_TRAP : WRK_SECCOMP_KILL,
                               .max_fds = 4096};
  const struct passwd *pw = getpwnam("nobody"); /* files: before the chroot */
  if (pw) {
    o.uid = pw->pw_uid;
    o.gid = pw->pw_gid;
  }
  int chan[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, chan) < 0)
    die("socketpair", errno);
  int rc = gnutls_global_init();
  if (rc < 0) {
    fprintf(stderr, "gnutls_global_init: %s\n", gnutls_strerror(rc));
    return 1;
  }

  char err[256];
  if ((rc = wrk_sandbox_enter(&o, getppid(), err, sizeof(err))) < 0) {
    fprintf(stderr, "sandbox-check: %s\n", err);
    return 1;
  }
  say("pid %ld", (long)getpid());
  say("entered");

  if (kill_probe) {
    say("kill-probe %d", (int)SYS_umask);
    syscall(SYS_umask, 022); /* not in the allowlist */
    say("FAIL survived an unlisted syscall");
    return 1;
  }

  static const char *const probes[] = {"open", "socket", "bind",  "connect",
                                       "fork", "execve", "ptrace"};
  for (size_t i = 0; i < sizeof(probes) / sizeof(probes[0]); i++)
    say("probe %s %d", probes[i], wrk_sandbox_probe(probes[i]));

  check_fd_passing(chan);
  check_loop();
  check_random();
  say("alive");

  char buf[256];
  ssize_t n;
  while ((n = read(STDIN_FILENO, buf, sizeof(buf))) != 0)
    if (n < 0 && errno != EINTR)
      die("read(stdin)", errno);
  close(chan[0]);
  close(chan[1]);
  gnutls_global_deinit();
  return 0;
}
