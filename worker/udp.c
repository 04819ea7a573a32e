/* UDP datagram I/O with GSO/GRO for QUIC connections. */
#include "worker/udp.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <netinet/in.h>
#include <netinet/udp.h>

#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif
#ifndef UDP_GRO
#define UDP_GRO 104
#endif

int wrk_udp_setup(int fd) {
  int fl = fcntl(fd, F_GETFL);
  if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
    return -errno;
  int one = 1;
  (void)setsockopt(fd, IPPROTO_UDP, UDP_GRO, &one, sizeof(one));
  int sz = 8 << 20;
  if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &sz, sizeof(sz)) < 0)
    (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
  if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &sz, sizeof(sz)) < 0)
    (void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
  return 0;
}

size_t wrk_udp_max_payload(int fd) {
  struct sockaddr_storage ss;
  socklen_t len = sizeof(ss);
  int mtu = 0;
  socklen_t ml = sizeof(mtu);
  if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
    return 1252;
  if (ss.ss_family == AF_INET6) {
    if (getsockopt(fd, IPPROTO_IPV6, IPV6_MTU, &mtu, &ml) < 0 || mtu < 1280)
      return 1252;
    mtu -= 48;
  } else {
    if (getsockopt(fd, IPPROTO_IP, IP_MTU, &mtu, &ml) < 0 || mtu < 1280)
      return 1252;
    mtu -= 28;
  }
  return mtu > 65527 ? 65527 : (size_t)mtu;
}

int wrk_udp_send(int fd, const uint8_t *buf, size_t len, size_t segsize) {
  struct iovec iov = {(void *)buf, len};
  union {
    char buf[CMSG_SPACE(sizeof(uint16_t))];
    struct cmsghdr align;
  } u;
  struct msghdr mh = {0};
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  if (len > segsize) {
    memset(&u, 0, sizeof(u));
    mh.msg_control = u.buf;
    mh.msg_controllen = sizeof(u.buf);
    struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
    cm->cmsg_level = SOL_UDP;
    cm->cmsg_type = UDP_SEGMENT;
    cm->cmsg_len = CMSG_LEN(sizeof(uint16_t));
    uint16_t seg = (uint16_t)segsize;
    memcpy(CMSG_DATA(cm), &seg, sizeof(seg));
  }
  for (;;) {
    ssize_t n = sendmsg(fd, &mh, MSG_DONTWAIT);
    if (n >= 0)
      return 0;
    if (errno == EINTR)
      continue;
    if (errno == EWOULDBLOCK)
      return -EAGAIN;
    return -errno;
  }
}

static size_t gro_size(struct msghdr *mh) {
  for (struct cmsghdr *cm = CMSG_FIRSTHDR(mh); cm; cm = CMSG_NXTHDR(mh, cm)) {
    if (cm->cmsg_level == SOL_UDP && cm->cmsg_type == UDP_GRO) {
      int v;
      memcpy(&v, CMSG_DATA(cm), sizeof(v));
      return v > 0 ? (size_t)v : 0;
    }
  }
  return 0;
}

int wrk_udp_recv(int fd, struct wrk_udp_rx *rx, int rounds, wrk_udp_pkt_cb cb,
                 void *arg) {
  struct mmsghdr msgs[WRK_UDP_RX_BATCH];
  struct iovec iov[WRK_UDP_RX_BATCH];
  int total = 0;
  for (int r = 0; r < rounds; r++) {
    memset(msgs, 0, sizeof(msgs));
    for (int i = 0; i < WRK_UDP_RX_BATCH; i++) {
      iov[i].iov_base = rx->buf[i];
      iov[i].iov_len = WRK_UDP_RX_BUFSZ;
      msgs[i].msg_hdr.msg_iov = &iov[i];
      msgs[i].msg_hdr.msg_iovlen = 1;
      msgs[i].msg_hdr.msg_name = &rx->src[i];
      msgs[i].msg_hdr.msg_namelen = sizeof(rx->src[i]);
      msgs[i].msg_hdr.msg_control = rx->ctl[i];
      msgs[i].msg_hdr.msg_controllen = sizeof(rx->ctl[i]);
    }
    int n = recvmmsg(fd, msgs, WRK_UDP_RX_BATCH, MSG_DONTWAIT, NULL);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK)
        return total;
      /* ICMP errors (ECONNREFUSED...) surface here: report, keep socket */
      return total ? total : -errno;
    }
    for (int i = 0; i < n; i++) {
      size_t len = msgs[i].msg_len;
      size_t seg = gro_size(&msgs[i].msg_hdr);
      if (seg == 0 || seg > len)
        seg = len;
      for (size_t off = 0; off < len; off += seg) {
        size_t l = len - off < seg ? len - off : seg;
        int rc = cb(arg, rx->buf[i] + off, l, (struct sockaddr *)&rx->src[i],
                    msgs[i].msg_hdr.msg_namelen);
        if (rc < 0)
          return rc;
        total++;
      }
    }
    if (n < WRK_UDP_RX_BATCH)
      return total;
  }
  return total;
}

int wrk_udp_socket_error(int fd) {
  int e = 0;
  socklen_t len = sizeof(e);
  if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &len) < 0)
    return -errno;
  return -e;
}

int wrk_udp_is_unreachable(int err) {
  return err == -ECONNREFUSED || err == -EHOSTUNREACH || err == -ENETUNREACH ||
         err == -EHOSTDOWN || err == -ENETDOWN;
}

const char *wrk_udp_error_text(int err) {
  switch (err) {
  case -ECONNREFUSED:
    return "connection refused (no server at that address)";
  case -EHOSTUNREACH:
    return "host unreachable";
  case -ENETUNREACH:
    return "network unreachable";
  case -EHOSTDOWN:
    return "host is down";
  case -ENETDOWN:
    return "network is down";
  default:
    return strerror(-err);
  }
}
