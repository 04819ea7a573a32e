/* nfq-delay: holds every packet of an NFQUEUE queue for a fixed delay (plus
 * optional jitter and reordering), then accepts it. The kernel of the test
 * machines has no `tc netem` and nftables' `queue` statement is missing, so
 * the impaired-path harness (bench/netpath.sh) sends packets here with
 * iptables-nft's NFQUEUE target, one queue per network namespace.
 *
 *   nfq-delay --queue N --delay-ms D [--jitter-ms J] [--reorder-pct P
 *             --reorder-ms R] [--seed S] [--max-held M] [--stats FILE]
 *
 * Every packet is released at arrival + D (+ a uniform -J..+J, at least 0);
 * with --reorder-pct, that share of the packets is held R ms longer, so
 * packets sent after it overtake it. Up to --max-held packets are held
 * (default 200000); the queue in the kernel is as long, and packets beyond
 * it are dropped by the kernel (counted there as queue drops). Only packet
 * metadata is copied to user space.
 *
 * SIGTERM/SIGINT: releases every held packet at once, writes its counters
 * (to --stats FILE, else stderr) and exits 0. SIGUSR1 writes the counters.
 */
#include <endian.h>
#include <errno.h>
#include <getopt.h>
#include <linux/netfilter.h> /* NF_ACCEPT; not with netinet/in.h */
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <libnetfilter_queue/libnetfilter_queue.h>

struct held {
  uint64_t due; /* CLOCK_MONOTONIC ns */
  uint64_t seq; /* arrival order: equal due times leave in order */
  uint32_t id;
};

static struct {
  unsigned queue;
  uint64_t delay_ns, jitter_ns, reorder_ns;
  double reorder_p;
  size_t max_held;
  const char *stats;
} O = {.max_held = 200000};

static struct held *heap;
static size_t nheld, peak;
static uint64_t seq, received, released, reordered, verdict_err, overruns;
static struct nfq_q_handle *qh;
static volatile sig_atomic_t stop_req, stats_req;
static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t next_rand(void) { /* xorshift64* */
  rng ^= rng >> 12;
  rng ^= rng << 25;
  rng ^= rng >> 27;
  return rng * 2685821657736338717ull;
}

static double rand01(void) {
  return (double)(next_rand() >> 11) / (double)(1ull << 53);
}

static int before(const struct held *a, const struct held *b) {
  return a->due < b->due || (a->due == b->due && a->seq < b->seq);
}

static void heap_push(struct held h) {
  size_t i = nheld++;
  heap[i] = h;
  while (i > 0) {
    size_t p = (i - 1) / 2;
    if (!before(&heap[i], &heap[p]))
      break;
    struct held t = heap[p];
    heap[p] = heap[i];
    heap[i] = t;
    i = p;
  }
  if (nheld > peak)
    peak = nheld;
}

static struct held heap_pop(void) {
  struct held top = heap[0];
  heap[0] = heap[--nheld];
  size_t i = 0;
  for (;;) {
    size_t l = 2 * i + 1, r = l + 1, m = i;
    if (l < nheld && before(&heap[l], &heap[m]))
      m = l;
    if (r < nheld && before(&heap[r], &heap[m]))
      m = r;
    if (m == i)
      break;
    struct held t = heap[m];
    heap[m] = heap[i];
    heap[i] = t;
    i = m;
  }
  return top;
}

static void accept_pkt(uint32_t id) {
  if (nfq_set_verdict(qh, id, NF_ACCEPT, 0, NULL) < 0)
    verdict_err++;
  else
    released++;
}

static int on_packet(struct nfq_q_handle *q, struct nfgenmsg *msg,
                     struct nfq_data *nfa, void *data) {
  (void)q, (void)msg, (void)data;
  struct nfqnl_msg_packet_hdr *ph = nfq_get_msg_packet_hdr(nfa);
  if (!ph)
    return 0;
  uint32_t id = be32toh(ph->packet_id);
  received++;
  if (nheld >= O.max_held) { /* cannot happen with the kernel queue as long */
    accept_pkt(id);
    return 0;
  }
  int64_t d = (int64_t)O.delay_ns;
  if (O.jitter_ns)
    d += (int64_t)(rand01() * 2.0 * (double)O.jitter_ns) - (int64_t)O.jitter_ns;
  if (O.reorder_p > 0 && rand01() < O.reorder_p) {
    d += (int64_t)O.reorder_ns;
    reordered++;
  }
  if (d < 0)
    d = 0;
  heap_push((struct held){now_ns() + (uint64_t)d, seq++, id});
  return 0;
}

static void write_stats(void) {
  FILE *f = O.stats ? fopen(O.stats, "w") : stderr;
  if (!f)
    return;
  fprintf(f,
          "queue %u received %llu released %llu held %zu peak_held %zu "
          "reordered %llu verdict_errors %llu overruns %llu\n",
          O.queue, (unsigned long long)received, (unsigned long long)released,
          nheld, peak, (unsigned long long)reordered,
          (unsigned long long)verdict_err, (unsigned long long)overruns);
  if (f != stderr)
    fclose(f);
}

static void on_signal(int sig) {
  if (sig == SIGUSR1)
    stats_req = 1;
  else
    stop_req = 1;
}

static uint64_t ms_arg(const char *name, const char *v) {
  char *end;
  errno = 0;
  double ms = strtod(v, &end);
  if (errno || end == v || *end || ms < 0 || ms > 60000) {
    fprintf(stderr, "nfq-delay: %s: '%s' is not 0..60000 (milliseconds)\n",
            name, v);
    exit(2);
  }
  return (uint64_t)(ms * 1e6);
}

static void usage(FILE *f) {
  fprintf(f,
          "usage: nfq-delay --queue N --delay-ms D [--jitter-ms J]\n"
          "                 [--reorder-pct P --reorder-ms R] [--seed S]\n"
          "                 [--max-held M] [--stats FILE]\n"
          "Holds each packet of NFQUEUE queue N for D ms (+-J, and R ms more\n"
          "for P%% of them), then accepts it. SIGTERM: release all, write\n"
          "counters, exit 0.\n");
}

int main(int argc, char **argv) {
  static const struct option opts[] = {
      {"queue", required_argument, 0, 'q'},
      {"delay-ms", required_argument, 0, 'd'},
      {"jitter-ms", required_argument, 0, 'j'},
      {"reorder-pct", required_argument, 0, 'p'},
      {"reorder-ms", required_argument, 0, 'r'},
      {"seed", required_argument, 0, 's'},
      {"max-held", required_argument, 0, 'm'},
      {"stats", required_argument, 0, 'S'},
      {"help", no_argument, 0, 'h'},
      {0, 0, 0, 0}};
  int have_q = 0, c;
  char *end;
  while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
    switch (c) {
    case 'q':
      O.queue = (unsigned)strtoul(optarg, &end, 10);
      if (*end || O.queue > 65535) {
        fprintf(stderr, "nfq-delay: --queue: '%s' is not 0..65535\n", optarg);
        return 2;
      }
      have_q = 1;
      break;
    case 'd':
      O.delay_ns = ms_arg("--delay-ms", optarg);
      break;
    case 'j':
      O.jitter_ns = ms_arg("--jitter-ms", optarg);
      break;
    case 'r':
      O.reorder_ns = ms_arg("--reorder-ms", optarg);
      break;
    case 'p':
      O.reorder_p = strtod(optarg, &end) / 100.0;
      if (*end || O.reorder_p < 0 || O.reorder_p > 1) {
        fprintf(stderr, "nfq-delay: --reorder-pct: '%s' is not 0..100\n",
                optarg);
        return 2;
      }
      break;
    case 's':
      rng = strtoull(optarg, NULL, 0) | 1;
      break;
    case 'm':
      O.max_held = strtoul(optarg, &end, 10);
      if (*end || O.max_held < 16 || O.max_held > 10000000) {
        fprintf(stderr, "nfq-delay: --max-held: '%s' is not 16..10000000\n",
                optarg);
        return 2;
      }
      break;
    case 'S':
      O.stats = optarg;
      break;
    case 'h':
      usage(stdout);
      return 0;
    default:
      usage(stderr);
      return 2;
    }
  }
  if (!have_q || optind != argc) {
    usage(stderr);
    return 2;
  }
  heap = calloc(O.max_held, sizeof(*heap));
  struct nfq_handle *h = nfq_open();
  if (!heap || !h) {
    fprintf(stderr, "nfq-delay: cannot open NFQUEUE (root? nfnetlink_queue "
                    "in the kernel?)\n");
    return 1;
  }
  qh = nfq_create_queue(h, (uint16_t)O.queue, on_packet, NULL);
  if (!qh) {
    fprintf(stderr, "nfq-delay: cannot bind queue %u: %s (another reader?)\n",
            O.queue, strerror(errno));
    return 1;
  }
  if (nfq_set_mode(qh, NFQNL_COPY_META, 0) < 0 ||
      nfq_set_queue_maxlen(qh, (uint32_t)O.max_held) < 0) {
    fprintf(stderr, "nfq-delay: cannot configure queue %u: %s\n", O.queue,
            strerror(errno));
    return 1;
  }
  int fd = nfq_fd(h);
  int rcvbuf = 32 << 20; /* a burst of verdict requests must not overrun */
  if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof(rcvbuf)) < 0)
    (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));

  struct sigaction sa = {.sa_handler = on_signal};
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGUSR1, &sa, NULL);
  printf("nfq-delay: queue %u ready\n", O.queue);
  fflush(stdout);

  static char buf[1 << 16] __attribute__((aligned(8)));
  while (!stop_req) {
    if (stats_req) {
      stats_req = 0;
      write_stats();
    }
    uint64_t now = now_ns();
    while (nheld && heap[0].due <= now)
      accept_pkt(heap_pop().id);
    struct timespec ts = {1, 0};
    if (nheld) {
      uint64_t wait = heap[0].due - now;
      ts.tv_sec = (time_t)(wait / 1000000000ull);
      ts.tv_nsec = (long)(wait % 1000000000ull);
    }
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    int n = ppoll(&pfd, 1, &ts, NULL);
    if (n <= 0)
      continue;
    /* drain what is there without blocking */
    for (int i = 0; i < 256; i++) {
      ssize_t r = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
      if (r < 0) {
        if (errno == ENOBUFS) { /* lost requests: their packets stay queued */
          overruns++;
          continue;
        }
        break;
      }
      nfq_handle_packet(h, buf, (int)r);
    }
  }
  while (nheld)
    accept_pkt(heap_pop().id);
  write_stats();
  nfq_destroy_queue(qh);
  nfq_close(h);
  free(heap);
  return 0;
}
