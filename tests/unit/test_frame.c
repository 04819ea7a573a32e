/* Frame codec on real SOCK_SEQPACKET socketpairs: round trip with and
 * without an fd, size cap, lying length fields, extra fds, peer close. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <cmocka.h>

#include "ipc.pb-c.h"
#include "shared/frame.h"

static uint8_t buf[QP_FRAME_HDR + QP_FRAME_MAX];

static void pair(int sv[2]) {
  assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), 0);
}

static int open_fds(void) {
  int n = 0;
  for (int fd = 0; fd < 1024; fd++)
    n += fcntl(fd, F_GETFD) >= 0;
  return n;
}

static void test_round_trip(void **state) {
  (void)state;
  int sv[2];
  pair(sv);
  Qpool__Hello h = QPOOL__HELLO__INIT;
  h.pid = 42;
  h.version = "x";
  assert_int_equal(
      qp_frame_send(sv[0], QPOOL__MSG_TYPE__MSG_HELLO, &h.base, -1), 0);
  struct qp_frame f;
  assert_int_equal(qp_frame_recv(sv[1], buf, sizeof(buf), &f), 1);
  assert_int_equal(f.type, QPOOL__MSG_TYPE__MSG_HELLO);
  assert_int_equal(f.fd, -1);
  Qpool__Hello *m = qpool__hello__unpack(NULL, f.len, f.payload);
  assert_non_null(m);
  assert_int_equal(m->pid, 42);
  qpool__hello__free_unpacked(m, NULL);
  assert_int_equal(qp_frame_recv(sv[1], buf, sizeof(buf), &f), -EAGAIN);
  close(sv[0]);
  assert_int_equal(qp_frame_recv(sv[1], buf, sizeof(buf), &f), 0);
  close(sv[1]);
}

static void test_fd_passing(void **state) {
  (void)state;
  int sv[2], p[2];
  pair(sv);
  assert_int_equal(pipe(p), 0);
  Qpool__DialReply r = QPOOL__DIAL_REPLY__INIT;
  r.pool = "a";
  r.seq = 7;
  r.ok = 1;
  assert_int_equal(
      qp_frame_send(sv[0], QPOOL__MSG_TYPE__MSG_DIAL_REPLY, &r.base, p[1]), 0);
  close(p[1]);
  struct qp_frame f;
  assert_int_equal(qp_frame_recv(sv[1], buf, sizeof(buf), &f), 1);
  assert_true(f.fd >= 0);
  assert_int_equal(write(f.fd, "z", 1), 1); /* it is the pipe's write end */
  char c;
  assert_int_equal(read(p[0], &c, 1), 1);
  assert_int_equal(c, 'z');
  close(f.fd);
  close(p[0]);
  close(sv[0]);
  close(sv[1]);
}

static void raw_send(int s, const void *data, size_t len, int nfds) {
  int fds[4];
  union {
    char b[CMSG_SPACE(4 * sizeof(int))];
    struct cmsghdr a;
  } u;
  struct iovec iov = {(void *)data, len};
  struct msghdr mh = {0};
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  if (nfds) {
    for (int i = 0; i < nfds; i++)
      fds[i] = dup(0);
    mh.msg_control = u.b;
    mh.msg_controllen = CMSG_SPACE(nfds * sizeof(int));
    struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(nfds * sizeof(int));
    memcpy(CMSG_DATA(cm), fds, nfds * sizeof(int));
  }
  assert_true(sendmsg(s, &mh, 0) >= 0);
  for (int i = 0; i < nfds; i++)
    close(fds[i]);
}

static void test_hostile_frames(void **state) {
  (void)state;
  int sv[2];
  pair(sv);
  int before = open_fds();
  struct qp_frame f;
  /* length field larger than the datagram */
  raw_send(sv[0],
           "\x00\x00\x00\x09\x00\xc9"
           "abc",
           9, 1);
  assert_int_equal(qp_frame_recv(sv[1], buf, sizeof(buf), &f), -EPROTO);
  /* length over the cap */
  raw_send(sv[0], "\x00\x10\x00\x00\x00\xc9", 6, 0);
  assert_int_equal(qp_frame_recv(sv[1], buf, sizeof(buf), &f), -EMSGSIZE);
  /* shorter than a header */
  raw_send(sv[0], "\x00\x00", 2, 0);
  assert_int_equal(qp_frame_recv(sv[1], buf, sizeof(buf), &f), -EPROTO);
  /* two fds in one frame */
  raw_send(sv[0], "\x00\x00\x00\x00\x00\xc9", 6, 2);
  assert_int_equal(qp_frame_recv(sv[1], buf, sizeof(buf), &f), -EPROTO);
  /* a datagram larger than the receive buffer */
  static uint8_t big[8192];
  raw_send(sv[0], big, sizeof(big), 1);
  assert_int_equal(qp_frame_recv(sv[1], buf, 100, &f), -EMSGSIZE);
  /* every fd that arrived with a bad frame was closed */
  assert_int_equal(open_fds(), before);
  close(sv[0]);
  close(sv[1]);
}

static void test_send_limits(void **state) {
  (void)state;
  int sv[2];
  pair(sv);
  Qpool__Datagram d = QPOOL__DATAGRAM__INIT;
  static uint8_t data[QP_FRAME_MAX + 1];
  d.pool = "p";
  d.peer.data = data;
  d.peer.len = 1;
  d.data.data = data;
  d.data.len = sizeof(data);
  assert_int_equal(
      qp_frame_send(sv[0], QPOOL__MSG_TYPE__MSG_DATAGRAM, &d.base, -1),
      -EMSGSIZE);
  close(sv[1]);
  d.data.len = 10;
  assert_int_equal(
      qp_frame_send(sv[0], QPOOL__MSG_TYPE__MSG_DATAGRAM, &d.base, -1), -EPIPE);
  close(sv[0]);
}

/* The largest frame the codec accepts fits a SOCK_SEQPACKET pair with the
 * kernel's default send buffer (net.core.wmem_default, 212992 bytes on
 * Linux), so no accepted message can fail with "Message too long". */
static void test_largest_frame_fits(void **state) {
  (void)state;
  int sv[2];
  pair(sv);
  int sz = 212992 / 2; /* the kernel doubles it: the default buffer,
                          whatever this machine's sysctl says */
  assert_int_equal(setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz)),
                   0);
  Qpool__Datagram d = QPOOL__DATAGRAM__INIT;
  static uint8_t data[QP_FRAME_MAX];
  d.pool = "p";
  d.peer.data = data;
  d.peer.len = 1;
  d.data.data = data;
  d.data.len = QP_FRAME_MAX - 16; /* packed: just under QP_FRAME_MAX */
  assert_true(qpool__datagram__get_packed_size(&d) <= QP_FRAME_MAX);
  assert_int_equal(
      qp_frame_send(sv[0], QPOOL__MSG_TYPE__MSG_DATAGRAM, &d.base, -1), 0);
  struct qp_frame f;
  assert_true(qp_frame_recv(sv[1], buf, sizeof(buf), &f) > 0);
  assert_int_equal(f.len, qpool__datagram__get_packed_size(&d));
  close(sv[0]);
  close(sv[1]);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_largest_frame_fits),
      cmocka_unit_test(test_round_trip),
      cmocka_unit_test(test_fd_passing),
      cmocka_unit_test(test_hostile_frames),
      cmocka_unit_test(test_send_limits),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
