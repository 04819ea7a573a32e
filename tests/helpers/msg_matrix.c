/* The request tables at the qpoold <-> worker boundary, tried from both
 * sides with real processes:
 *
 *   msg-matrix worker QPOOL_WORKER_PATH DIR
 *     starts a real qpool-worker once per case on a socket pair (as qpoold
 *     does), brings it to a state (configuring: after its Hello; running:
 *     after ConfigDone, in its sandbox), sends one message and watches:
 *     the worker must serve it (stay up, or stop cleanly on Shutdown) when
 *     the expected table below allows the type in that state, and end,
 *     naming the rule, when it does not. Every supervisor -> worker type,
 *     each with and without an fd, a type of the other direction and an
 *     unknown one, in both states; Probe with and without
 *     QPOOL_ALLOW_PROBES=1.
 *
 *   msg-matrix fake-worker
 *     run by qpoold as its "worker" (QPOOL_WORKER): reads MSGM_TYPE,
 *     MSGM_FD (1: attach an fd) and MSGM_HELLO (1: send Hello first) from
 *     the environment, sends that message to qpoold and waits to be ended.
 *     The shell test (msg_tables.sh) reads qpoold's log.
 *
 * The expectations are written here on their own, from the protocol
 * (docs/runtime.md), not taken from the tables they check. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <netinet/in.h>

#include "ipc.pb-c.h"
#include "shared/frame.h"
#include "shared/settings.h"

#define M(t) QPOOL__MSG_TYPE__MSG_##t

enum { CONFIG, RUNNING, NSTATES };
static const char *const state_name[] = {"configuring", "running"};

/* What qpoold may send a worker: fd rule (0 none, 1 may, 2 must) and the
 * states that serve it. */
static const struct {
  int type;
  const char *name;
  int fd;
  int ok[NSTATES];
} spec[] = {
    /* PoolAdd's fd (a CA bundle) is for client pools in TLS mode 2 only;
     * the one sent here is a server pool's: no fd */
    {M(POOL_ADD), "PoolAdd", 0, {1, 1}},
    {M(CONFIG_DONE), "ConfigDone", 0, {1, 0}},
    {M(HANDOFF), "HandOff", 2, {0, 1}},
    {M(DATAGRAM), "Datagram", 0, {0, 1}},
    {M(DIAL_REPLY), "DialReply", 1, {0, 1}},
    {M(POOL_REMOVE), "PoolRemove", 0, {1, 1}},
    {M(PROBE), "Probe", 0, {0, 1}}, /* and only with probes enabled */
    {M(SHUTDOWN), "Shutdown", 0, {1, 1}},
    {M(GET), "Get", 0, {0, 1}},
    {M(FLUSH), "Flush", 0, {0, 1}},
    {M(SESSION), "Session", 2, {0, 1}},
    {M(CANCEL), "Cancel", 0, {0, 1}},
    {M(CONN_INFO), "ConnInfoGet", 0, {0, 1}},
    {M(REPORT), "Report (the other direction)", 0, {0, 0}},
    {150, "an unknown type", 0, {0, 0}},
};
#define NSPEC (sizeof(spec) / sizeof(spec[0]))

/* Sends one minimal, well-formed message of type on sock. */
static int send_type(int sock, int type, int fd, const char *chroot_dir) {
  uint8_t secret[32] = {0}, peer[sizeof(struct sockaddr_in)] = {0};
  ((struct sockaddr_in *)(void *)peer)->sin_family = AF_INET;
  switch (type) {
  case M(POOL_ADD): {
    Qpool__PoolAdd m = QPOOL__POOL_ADD__INIT;
    struct qp_pool_settings st;
    struct qp_settings_pb_scratch scratch;
    qp_pool_settings_defaults(&st);
    qp_pool_settings_to_pb(&st, &m, &scratch);
    m.name = "q";
    m.server = 1;
    m.has_reset_secret = 1;
    m.reset_secret.data = secret;
    m.reset_secret.len = sizeof(secret);
    return qp_frame_send(sock, (uint16_t)type, &m.base, fd);
  }
  case M(CONFIG_DONE): {
    Qpool__ConfigDone m = QPOOL__CONFIG_DONE__INIT;
    int root = geteuid() == 0;
    m.uid = root ? 65534 : getuid();
    m.gid = root ? 65534 : getgid();
    m.chroot = root ? (char *)chroot_dir : "";
    return qp_frame_send(sock, (uint16_t)type, &m.base, fd);
  }
  case M(HANDOFF): {
    Qpool__HandOff m = QPOOL__HAND_OFF__INIT;
    m.pool = "zz";
    m.peer.data = peer;
    m.peer.len = sizeof(peer);
    m.local.data = peer;
    m.local.len = sizeof(peer);
    return qp_frame_send(sock, (uint16_t)type, &m.base, fd);
  }
  case M(DATAGRAM): {
    Qpool__Datagram m = QPOOL__DATAGRAM__INIT;
    m.pool = "zz";
    m.peer.data = peer;
    m.peer.len = sizeof(peer);
    m.data.data = peer;
    m.data.len = 1;
    return qp_frame_send(sock, (uint16_t)type, &m.base, fd);
  }
  case M(DIAL_REPLY): {
    Qpool__DialReply m = QPOOL__DIAL_REPLY__INIT;
    m.pool = "zz";
    m.seq = 1;
    return qp_frame_send(sock, (uint16_t)type, &m.base, fd);
  }
  case M(POOL_REMOVE): {
    Qpool__PoolRemove m = QPOOL__POOL_REMOVE__INIT;
    m.name = "zz";
    return qp_frame_send(sock, (uint16_t)type, &m.base, fd);
  }
  case M(PROBE): {
    Qpool__Probe m = QPOOL__PROBE__INIT;
    m.what = "open";
    return qp_frame_send(sock, (uint16_t)type, &m.base, fd);
  }
  case M(SHUTDOWN): {
    Qpool__Shutdown m = QPOOL__SHUTDOWN__INIT;
    m.reason = "test";
    return qp_frame_send(sock, (uint16_t)type, &m.base, fd);
  }
  case M(GET): {
    Qpool__Get m = QPOOL__GET__INIT;
    m.token = 1;
    m.pool = "zz";
    m.any = 1;
    return qp_frame_send(sock, (uint16_t)type, &m.base, fd);
  }
  case M(FLUSH): {
    Qpool__Flush m = QPOOL__FLUSH__INIT;
    m.pool = "zz";
    return qp_frame_send(sock, (uint16_t)type, &m.base, fd);
  }
  case M(SESSION): {
    Qpool__Session m = QPOOL__SESSION__INIT;
    m.pool = "zz";
    return qp_frame_send(sock, (uint16_t)type, &m.base, fd);
  }
  case M(CANCEL): {
    Qpool__Cancel m = QPOOL__CANCEL__INIT;
    m.token = 1;
    return qp_frame_send(sock, (uint16_t)type, &m.base, fd);
  }
  case M(CONN_INFO): {
    Qpool__ConnInfoGet m = QPOOL__CONN_INFO_GET__INIT;
    m.token = 1;
    m.pool = "zz";
    return qp_frame_send(sock, (uint16_t)type, &m.base, fd);
  }
  case M(REPORT): {
    Qpool__Report m = QPOOL__REPORT__INIT;
    m.name = "zz";
    return qp_frame_send(sock, (uint16_t)type, &m.base, fd);
  }
  case M(HELLO): {
    Qpool__Hello m = QPOOL__HELLO__INIT;
    m.pid = (uint32_t)getpid();
    m.version = QP_VERSION;
    return qp_frame_send(sock, (uint16_t)type, &m.base, fd);
  }
  case M(DIAL_REQUEST): {
    Qpool__DialRequest m = QPOOL__DIAL_REQUEST__INIT;
    m.pool = "zz";
    m.seq = 1;
    return qp_frame_send(sock, (uint16_t)type, &m.base, fd);
  }
  case M(PROBE_RESULT): {
    Qpool__ProbeResult m = QPOOL__PROBE_RESULT__INIT;
    m.what = "open";
    return qp_frame_send(sock, (uint16_t)type, &m.base, fd);
  }
  case M(BYE): {
    Qpool__Bye m = QPOOL__BYE__INIT;
    m.reason = "test";
    return qp_frame_send(sock, (uint16_t)type, &m.base, fd);
  }
  case M(GET_RESULT): {
    Qpool__GetResult m = QPOOL__GET_RESULT__INIT;
    m.token = 7;
    m.status = -ETIMEDOUT;
    return qp_frame_send(sock, (uint16_t)type, &m.base, fd);
  }
  case M(CONN_INFO_RESULT): {
    Qpool__ConnInfoResult m = QPOOL__CONN_INFO_RESULT__INIT;
    m.token = 7;
    m.status = -ENOENT;
    return qp_frame_send(sock, (uint16_t)type, &m.base, fd);
  }
  default: { /* an unknown type: an empty Shutdown-shaped payload */
    Qpool__Bye m = QPOOL__BYE__INIT;
    m.reason = "";
    return qp_frame_send(sock, (uint16_t)type, &m.base, fd);
  }
  }
}

/* An fd worth attaching: a UDP socket. */
static int some_fd(void) {
  return socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
}

/* Waits up to ms for the frame of type on sock (skipping others). 1 found,
 * 0 not (EOF or time). */
static int wait_frame(int sock, int type, int ms) {
  static uint8_t buf[QP_FRAME_HDR + QP_FRAME_MAX];
  for (int t = 0; t < ms; t += 10) {
    struct qp_frame f;
    int rc = qp_frame_recv(sock, buf, sizeof(buf), &f);
    if (rc == 1) {
      if (f.fd >= 0)
        close(f.fd);
      if (f.type == type)
        return 1;
      continue;
    }
    if (rc == 0 || (rc < 0 && rc != -EAGAIN))
      return 0;
    usleep(10000);
  }
  return 0;
}

/* One case: 0 as expected, 1 not. */
static int one_case(const char *worker, const char *dir, size_t k, int state,
                    int with_fd, int probes) {
  char log[512];
  snprintf(log, sizeof(log), "%s/w-%zu-%d-%d-%d.log", dir, k, state, with_fd,
           probes);
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
    return 1;
  pid_t pid = fork();
  if (pid == 0) {
    int lf = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(lf, 2);
    dup2(sv[1], 3);
    for (int fd = 4; fd < 64; fd++)
      close(fd);
    if (probes)
      setenv("QPOOL_ALLOW_PROBES", "1", 1);
    else
      unsetenv("QPOOL_ALLOW_PROBES");
    setenv("QPOOL_LOG", "info", 1);
    execl(worker, "qpool-worker", (char *)NULL);
    _exit(127);
  }
  close(sv[1]);
  fcntl(sv[0], F_SETFL, O_NONBLOCK);
  int bad = 0;
  if (!wait_frame(sv[0], M(HELLO), 5000)) {
    printf("not ok - %s: no Hello from the worker\n", spec[k].name);
    bad = 1;
  }
  char chroot_dir[600];
  snprintf(chroot_dir, sizeof(chroot_dir), "%s/empty", dir);
  if (!bad && state == RUNNING &&
      (send_type(sv[0], M(CONFIG_DONE), -1, chroot_dir) < 0 ||
       send_type(sv[0], M(CONN_INFO), -1, chroot_dir) < 0 ||
       !wait_frame(sv[0], M(CONN_INFO_RESULT), 5000))) {
    printf("not ok - %s: the worker did not start running\n", spec[k].name);
    bad = 1;
  }
  int fd = with_fd ? some_fd() : -1;
  int expect_ok = spec[k].ok[state] &&
                  (spec[k].fd == 1 || (spec[k].fd == 2) == with_fd) &&
                  (spec[k].type != M(PROBE) || probes);
  if (!bad && send_type(sv[0], spec[k].type, fd, chroot_dir) < 0) {
    printf("not ok - could not send %s\n", spec[k].name);
    bad = 1;
  }
  if (fd >= 0)
    close(fd);
  /* served: the worker answers a message that has an answer in this state
   * after it (running: ConnInfoGet; configuring: PoolAdd, which is
   * reported) */
  int answered = 0;
  if (!bad && spec[k].type != M(SHUTDOWN)) { /* Shutdown: it exits, 0 */
    int follow = state == RUNNING ? M(CONN_INFO) : M(POOL_ADD);
    if (send_type(sv[0], follow, -1, chroot_dir) == 0)
      answered = wait_frame(
          sv[0], state == RUNNING ? M(CONN_INFO_RESULT) : M(REPORT), 3000);
  }
  int st = 0, exited = 0;
  for (int t = 0; t < 3000 && !exited && !answered; t += 10) {
    if (waitpid(pid, &st, WNOHANG) == pid)
      exited = 1;
    else
      usleep(10000);
  }
  if (!exited) { /* still up: served */
    kill(pid, SIGKILL);
    waitpid(pid, &st, 0);
  }
  char text[4096] = "";
  FILE *f = fopen(log, "r");
  if (f) {
    size_t n = fread(text, 1, sizeof(text) - 1, f);
    text[n] = 0;
    fclose(f);
  }
  /* ended by a rule: status 1 and the rule named in the log */
  int refused = exited && WIFEXITED(st) && WEXITSTATUS(st) == 1 &&
                strstr(text, "ERROR: ");
  int served = answered || (exited && WIFEXITED(st) && WEXITSTATUS(st) == 0 &&
                            spec[k].type == M(SHUTDOWN));
  int pass = expect_ok ? served && !refused : refused;
  if (!bad)
    printf("%s - worker, %s: %s%s%s -> %s\n", pass ? "ok" : "not ok",
           state_name[state], spec[k].name, with_fd ? " with an fd" : "",
           spec[k].type == M(PROBE)
               ? (probes ? " (probes on)" : " (probes off)")
               : "",
           refused  ? "refused"
           : served ? "served"
                    : "other");
  if (!pass && !bad)
    fprintf(stderr, "  worker log %s:\n%s\n", log, text);
  close(sv[0]);
  return bad || !pass;
}

static int run_worker_matrix(const char *worker, const char *dir) {
  char empty[600];
  snprintf(empty, sizeof(empty), "%s/empty", dir);
  mkdir(empty, 0755);
  int failed = 0, n = 0;
  for (size_t k = 0; k < NSPEC; k++)
    for (int state = 0; state < NSTATES; state++)
      for (int with_fd = 0; with_fd <= 1; with_fd++)
        for (int probes = 0; probes <= (spec[k].type == M(PROBE)); probes++) {
          failed += one_case(worker, dir, k, state, with_fd, probes);
          n++;
        }
  printf("%d cases, %d failed\n", n, failed);
  return failed ? 1 : 0;
}

/* qpoold's fake worker: one message, then wait to be ended. */
static int fake_worker(void) {
  const char *t = getenv("MSGM_TYPE");
  int type = t ? atoi(t) : 0;
  int with_fd = getenv("MSGM_FD") && !strcmp(getenv("MSGM_FD"), "1");
  int hello = getenv("MSGM_HELLO") && !strcmp(getenv("MSGM_HELLO"), "1");
  if (hello)
    send_type(3, M(HELLO), -1, "");
  usleep(100000); /* qpoold has sent the settings */
  int fd = with_fd ? some_fd() : -1;
  send_type(3, type, fd, "");
  fprintf(stderr, "msg-matrix: sent type %d%s\n", type,
          with_fd ? " with an fd" : "");
  /* then a type no table allows: qpoold ending us for that one says it
   * served the first */
  usleep(50000);
  send_type(3, 250, -1, "");
  for (int i = 0; i < 100; i++) { /* ended by qpoold, or 10 s */
    char b[8];
    if (recv(3, b, sizeof(b), MSG_DONTWAIT) == 0)
      break;
    usleep(100000);
  }
  return 0;
}

int main(int argc, char **argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  signal(SIGPIPE, SIG_IGN);
  if (argc == 4 && !strcmp(argv[1], "worker"))
    return run_worker_matrix(argv[2], argv[3]);
  if (argc >= 1 && getenv("MSGM_TYPE"))
    return fake_worker();
  fprintf(stderr, "usage: msg-matrix worker QPOOL_WORKER DIR | (as "
                  "QPOOL_WORKER, with MSGM_TYPE set)\n");
  return 2;
}
