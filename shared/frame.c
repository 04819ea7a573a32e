/* SOCK_SEQPACKET frames with fd passing (see frame.h). */
#include "shared/frame.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>

int qp_frame_parse(const uint8_t *buf, size_t n, struct qp_frame *f) {
  if (n < QP_FRAME_HDR)
    return -EPROTO;
  uint32_t len = (uint32_t)buf[0] << 24 | (uint32_t)buf[1] << 16 |
                 (uint32_t)buf[2] << 8 | buf[3];
  if (len > QP_FRAME_MAX)
    return -EMSGSIZE;
  if ((size_t)len != n - QP_FRAME_HDR)
    return -EPROTO;
  f->type = (uint16_t)(buf[4] << 8 | buf[5]);
  f->payload = buf + QP_FRAME_HDR;
  f->len = len;
  return 0;
}

static void put_header(uint8_t *buf, size_t len, uint16_t type) {
  buf[0] = (uint8_t)(len >> 24);
  buf[1] = (uint8_t)(len >> 16);
  buf[2] = (uint8_t)(len >> 8);
  buf[3] = (uint8_t)len;
  buf[4] = (uint8_t)(type >> 8);
  buf[5] = (uint8_t)type;
}

long qp_frame_pack(uint16_t type, const ProtobufCMessage *msg, uint8_t **out) {
  size_t len = protobuf_c_message_get_packed_size(msg);
  if (len > QP_FRAME_MAX)
    return -EMSGSIZE;
  uint8_t *buf = malloc(len + QP_FRAME_HDR);
  if (!buf)
    return -ENOMEM;
  put_header(buf, len, type);
  protobuf_c_message_pack(msg, buf + QP_FRAME_HDR);
  *out = buf;
  return (long)(len + QP_FRAME_HDR);
}

int qp_frame_send_raw(int sock, const uint8_t *frame, size_t len, int fd) {
  struct iovec iov = {(void *)frame, len};
  union {
    char b[CMSG_SPACE(sizeof(int))];
    struct cmsghdr align;
  } u;
  struct msghdr mh = {0};
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  if (fd >= 0) {
    memset(&u, 0, sizeof(u));
    mh.msg_control = u.b;
    mh.msg_controllen = sizeof(u.b);
    struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(cm), &fd, sizeof(int));
  }
  ssize_t n;
  do
    n = sendmsg(sock, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
  while (n < 0 && errno == EINTR);
  return n < 0 ? (errno == EWOULDBLOCK ? -EAGAIN : -errno) : 0;
}

int qp_frame_send(int sock, uint16_t type, const ProtobufCMessage *msg,
                  int fd) {
  size_t len = protobuf_c_message_get_packed_size(msg);
  if (len > QP_FRAME_MAX)
    return -EMSGSIZE;
  uint8_t stackbuf[4096];
  uint8_t *buf = len + QP_FRAME_HDR <= sizeof(stackbuf)
                     ? stackbuf
                     : malloc(len + QP_FRAME_HDR);
  if (!buf)
    return -ENOMEM;
  put_header(buf, len, type);
  protobuf_c_message_pack(msg, buf + QP_FRAME_HDR);
  int rc = qp_frame_send_raw(sock, buf, len + QP_FRAME_HDR, fd);
  if (buf != stackbuf)
    free(buf);
  return rc;
}

static void close_passed_fds(struct msghdr *mh) {
  for (struct cmsghdr *cm = CMSG_FIRSTHDR(mh); cm; cm = CMSG_NXTHDR(mh, cm)) {
    if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
      continue;
    size_t n = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < n; i++) {
      int fd;
      memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
      close(fd);
    }
  }
}

int qp_frame_recv(int sock, uint8_t *buf, size_t cap, struct qp_frame *f) {
  union {
    char b[CMSG_SPACE(4 * sizeof(int))];
    struct cmsghdr align;
  } u;
  struct iovec iov = {buf, cap};
  struct msghdr mh = {0};
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  mh.msg_control = u.b;
  mh.msg_controllen = sizeof(u.b);
  ssize_t n;
  do
    n = recvmsg(sock, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
  while (n < 0 && errno == EINTR);
  if (n < 0)
    return errno == EWOULDBLOCK ? -EAGAIN : -errno;
  if (n == 0 && mh.msg_controllen == 0)
    return 0;
  f->fd = -1;
  f->fd_lost = 0;
  int rc = 0;
  if (mh.msg_flags & MSG_TRUNC)
    rc = -EMSGSIZE;
  else
    rc = qp_frame_parse(buf, (size_t)n, f);
  if (rc == 0 && (mh.msg_flags & MSG_CTRUNC))
    f->fd_lost = 1; /* out of fds: the frame stands, its fd is gone */
  if (rc == 0) {
    int nfds = 0;
    for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm))
      if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS) {
        nfds += (int)((cm->cmsg_len - CMSG_LEN(0)) / sizeof(int));
        if (nfds == 1)
          memcpy(&f->fd, CMSG_DATA(cm), sizeof(int));
      }
    if (nfds > 1) { /* at most one fd per frame */
      rc = -EPROTO;
      f->fd = -1;
    }
  }
  if (rc < 0)
    close_passed_fds(&mh);
  return rc == 0 ? 1 : rc;
}
