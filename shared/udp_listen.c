/* Exclusive UDP listeners for server pools, the sockets that join them for
 * the hand-off, and who holds an address when the bind fails
 * (udp_listen.h). */
#include "shared/udp_listen.h"

#include "shared/addr.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>

static int udp_socket(int family, int flags, int reuseport) {
  int fd = socket(family, SOCK_DGRAM | SOCK_CLOEXEC | flags, 0);
  if (fd < 0)
    return -errno;
  int one = 1;
  /* IPv6 listeners never take IPv4: [::]:P and 0.0.0.0:P are two pools */
  if ((family == AF_INET6 &&
       setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0) ||
      (reuseport &&
       setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0)) {
    int rc = -errno;
    close(fd);
    return rc;
  }
  return fd;
}

int qp_udp_group_socket(int family, int flags) {
  return udp_socket(family, flags, 1);
}

int qp_udp_listen(const struct sockaddr *sa, socklen_t len, char *err,
                  size_t errlen) {
  char a[QP_ADDR_STRLEN], who[200], holder[sizeof(who) + 3] = "";
  int one = 1;
  int fd = udp_socket(sa->sa_family, SOCK_NONBLOCK, 0);
  int rc = fd < 0 ? fd : 0;
  /* Exclusive: fails if anything at all holds a conflicting binding. Once
   * bound, no socket can join until SO_REUSEPORT is set, and then only
   * SO_REUSEPORT sockets of our effective uid (the kernel creates the
   * group when the first one binds): no window in which another server
   * could slip in between a check and the bind. */
  if (rc == 0 && bind(fd, sa, len) < 0)
    rc = -errno;
  if (rc == 0 &&
      setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0)
    rc = -errno;
  if (rc < 0) {
    if (fd >= 0)
      close(fd);
    if (rc == -EADDRINUSE && qp_udp_holder(sa, who, sizeof(who)))
      snprintf(holder, sizeof(holder), " (%s)", who);
    if (err)
      snprintf(err, errlen, "cannot listen on %s: %s%s",
               qp_addr_format(sa, a, sizeof(a)), strerror(-rc), holder);
    return rc;
  }
  int sz = 8 << 20;
  if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &sz, sizeof(sz)) < 0)
    (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
  return fd;
}

/* ---- who holds it: /proc/net/udp{,6} ------------------------------------ */

struct udp_entry {
  struct sockaddr_storage local;
  int connected;
  unsigned uid;
  unsigned long inode;
};

/* The kernel prints each 32-bit word of the address with %08X of its
 * in-memory value: read it back the same way. */
static int hex_words(const char *hex, unsigned char *out, size_t words) {
  if (strlen(hex) != words * 8)
    return -1;
  for (size_t i = 0; i < words; i++) {
    char w[9];
    memcpy(w, hex + i * 8, 8);
    w[8] = 0;
    uint32_t v = (uint32_t)strtoul(w, NULL, 16);
    memcpy(out + i * 4, &v, 4);
  }
  return 0;
}

static int parse_entry(const char *line, int family, struct udp_entry *e) {
  char la[33], ra[33];
  unsigned lport, rport, st;
  if (sscanf(line,
             " %*u: %32[0-9A-Fa-f]:%x %32[0-9A-Fa-f]:%x %x %*x:%*x %*x:%*x "
             "%*x %u %*d %lu",
             la, &lport, ra, &rport, &st, &e->uid, &e->inode) != 7)
    return -1;
  memset(&e->local, 0, sizeof(e->local));
  e->connected = rport != 0;
  if (family == AF_INET) {
    struct sockaddr_in *s = (struct sockaddr_in *)&e->local;
    s->sin_family = AF_INET;
    s->sin_port = htons((uint16_t)lport);
    return hex_words(la, (unsigned char *)&s->sin_addr, 1);
  }
  struct sockaddr_in6 *s = (struct sockaddr_in6 *)&e->local;
  s->sin6_family = AF_INET6;
  s->sin6_port = htons((uint16_t)lport);
  return hex_words(la, s->sin6_addr.s6_addr, 4);
}

static int is_wildcard(const struct sockaddr *sa) {
  if (sa->sa_family == AF_INET)
    return ((const struct sockaddr_in *)sa)->sin_addr.s_addr == INADDR_ANY;
  return IN6_IS_ADDR_UNSPECIFIED(&((const struct sockaddr_in6 *)sa)->sin6_addr);
}

static int same_ip(const struct sockaddr *a, const struct sockaddr *b) {
  if (a->sa_family != b->sa_family)
    return 0;
  if (a->sa_family == AF_INET)
    return ((const struct sockaddr_in *)a)->sin_addr.s_addr ==
           ((const struct sockaddr_in *)b)->sin_addr.s_addr;
  return !memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
                 &((const struct sockaddr_in6 *)b)->sin6_addr, 16);
}

static unsigned port_of(const struct sockaddr *sa) {
  return ntohs(sa->sa_family == AF_INET
                   ? ((const struct sockaddr_in *)sa)->sin_port
                   : ((const struct sockaddr_in6 *)sa)->sin6_port);
}

/* How well e explains a failed bind of want: 0 the same address (an
 * unconnected socket: a listener), 2 an overlapping one (wildcard on either
 * side), 4 an IPv6 wildcard that may be dual-stack; +1 if connected.
 * -1: no conflict. */
static int conflict_rank(const struct sockaddr *want,
                         const struct udp_entry *e) {
  const struct sockaddr *have = (const struct sockaddr *)&e->local;
  if (port_of(have) != port_of(want))
    return -1;
  int rank;
  if (have->sa_family == want->sa_family)
    rank = same_ip(have, want)                      ? 0
           : is_wildcard(have) || is_wildcard(want) ? 2
                                                    : -1;
  else
    rank = want->sa_family == AF_INET && is_wildcard(have) ? 4 : -1;
  return rank < 0 ? -1 : rank + e->connected;
}

static int find_entry(const struct sockaddr *want, struct udp_entry *best) {
  static const struct {
    const char *path;
    int family;
  } tables[] = {{"/proc/net/udp", AF_INET}, {"/proc/net/udp6", AF_INET6}};
  int best_rank = -1;
  for (size_t t = 0; t < sizeof(tables) / sizeof(tables[0]); t++) {
    FILE *f = fopen(tables[t].path, "re");
    if (!f)
      continue;
    char line[512];
    struct udp_entry e;
    while (fgets(line, sizeof(line), f)) {
      int rank;
      if (parse_entry(line, tables[t].family, &e) < 0 ||
          (rank = conflict_rank(want, &e)) < 0 ||
          (best_rank >= 0 && rank >= best_rank))
        continue;
      *best = e;
      best_rank = rank;
    }
    fclose(f);
  }
  return best_rank >= 0;
}

/* The first process with that socket among its fds (only processes we may
 * look into: all of them as root). Returns the pid or -1. */
static long pid_of_socket(unsigned long inode) {
  char want[64];
  snprintf(want, sizeof(want), "socket:[%lu]", inode);
  DIR *proc = opendir("/proc");
  if (!proc)
    return -1;
  long found = -1;
  struct dirent *p;
  while (found < 0 && (p = readdir(proc))) {
    if (!isdigit((unsigned char)p->d_name[0]))
      continue;
    char dir[300];
    snprintf(dir, sizeof(dir), "/proc/%s/fd", p->d_name);
    DIR *fds = opendir(dir);
    if (!fds)
      continue;
    struct dirent *f;
    while ((f = readdir(fds))) {
      char link[600], target[64];
      snprintf(link, sizeof(link), "%s/%s", dir, f->d_name);
      ssize_t n = readlink(link, target, sizeof(target) - 1);
      if (n > 0 && (target[n] = 0, !strcmp(target, want))) {
        found = strtol(p->d_name, NULL, 10);
        break;
      }
    }
    closedir(fds);
  }
  closedir(proc);
  return found;
}

static void comm_of(long pid, char *buf, size_t len) {
  char path[64];
  snprintf(path, sizeof(path), "/proc/%ld/comm", pid);
  FILE *f = fopen(path, "re");
  buf[0] = 0;
  if (f) {
    if (!fgets(buf, (int)len, f))
      buf[0] = 0;
    fclose(f);
  }
  buf[strcspn(buf, "\n")] = 0;
  if (!buf[0])
    snprintf(buf, len, "?");
}

int qp_udp_holder(const struct sockaddr *sa, char *buf, size_t len) {
  struct udp_entry e;
  char where[QP_ADDR_STRLEN + 32] = "", comm[32], a[QP_ADDR_STRLEN];
  if (len)
    buf[0] = 0;
  if ((sa->sa_family != AF_INET && sa->sa_family != AF_INET6) ||
      !find_entry(sa, &e))
    return 0;
  const struct sockaddr *have = (const struct sockaddr *)&e.local;
  if (!same_ip(have, sa))
    snprintf(where, sizeof(where), "%s overlaps it, ",
             qp_addr_format(have, a, sizeof(a)));
  long pid = pid_of_socket(e.inode);
  if (pid < 0) {
    snprintf(buf, len,
             "%sheld by a socket of uid %u (its process is not "
             "visible)",
             where, e.uid);
    return 1;
  }
  comm_of(pid, comm, sizeof(comm));
  const char *kind = pid == (long)getpid() ? "this process: "
                     : !strcmp(comm, "qpoold") || !strcmp(comm, "qpool-worker")
                         ? "another qpool server: "
                         : "";
  snprintf(buf, len, "%sheld by %s%s, pid %ld, uid %u", where, kind, comm, pid,
           e.uid);
  return 1;
}
