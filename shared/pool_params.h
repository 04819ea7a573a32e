/* Limits and derived values of a pool's settings that more than one binary
 * needs (qpoold's config, the engine, libqpool's embedded constructors): each
 * fact is written here once. */
#ifndef QP_SHARED_POOL_PARAMS_H
#define QP_SHARED_POOL_PARAMS_H

#include <stddef.h>
#include <stdint.h>

#include <ngtcp2/ngtcp2.h> /* NGTCP2_CC_ALGO_* */

/* Largest min_cap / max_cap anywhere (flags, config file, qpool.h). */
#define QP_CAP_MAX 65535
/* The interval of a client pool's rounds when none is given, and what an
 * interval of 0 or less becomes (docs/protocol.md). */
#define QP_INTERVAL_DEFAULT_NS UINT64_C(1000000000) /* 1s */
/* Longest host name (RFC 1035: 253 characters of text). */
#define QP_HOSTNAME_MAX 253
/* Longest duration setting (intervals, keep-alive, setup timeout): bigger
 * values are typos, and 3 x keep-alive must not overflow. */
#define QP_DURATION_MAX_NS UINT64_C(86400000000000) /* 24h */
/* Idle timeout when the keep-alive is 0: quic-go's default, which the
 * reference gets when it passes KeepAlivePeriod = MaxIdleTimeout = 0. */
#define QP_IDLE_TIMEOUT_DEFAULT_NS UINT64_C(30000000000) /* 30s */

/* The idle timeout a pool advertises (QUIC max_idle_timeout) for its
 * keep-alive period, as the reference computes it: 3 x keep_alive_ns, or
 * QP_IDLE_TIMEOUT_DEFAULT_NS when keep_alive_ns is 0 (no PINGs then, but
 * still an idle timeout). Saturates instead of overflowing. Returns ns. */
uint64_t qp_idle_timeout_ns(uint64_t keep_alive_ns);

/* The idle timeout a connection ends up with (RFC 9000 10.1): the smaller
 * of both sides' advertised values, where 0 means "none". Returns ns, 0 if
 * neither side has one. */
uint64_t qp_idle_timeout_effective(uint64_t ours_ns, uint64_t peers_ns);

/* Congestion controllers a pool may use (congestion_control = NAME,
 * --congestion-control NAME, qp_pool_congestion_control): each name with
 * the ngtcp2_cc_algo it selects and a few words for help texts. This table
 * is the only list of them; parsers, messages and help are made from it. */
struct qp_cc {
  const char *name; /* "cubic", "bbr", "bbr2" */
  int algo;         /* NGTCP2_CC_ALGO_CUBIC, ... (ngtcp2_settings.cc_algo) */
  const char *what; /* one line for --help */
};
extern const struct qp_cc qp_cc_table[];
extern const size_t qp_cc_count;

/* Flow-control windows (docs/performance.md, "windows"): each stream starts
 * with QP_STREAM_WINDOW_INIT of receive credit, which is all an idle stream
 * can hold; ngtcp2 doubles a window each time its credit runs out within
 * two round trips, up to the pool's max_stream_window (default
 * QP_STREAM_WINDOW_MAX_DEFAULT, limits QP_STREAM_WINDOW_MIN..MAX). The
 * connection's window starts at QP_CONN_WINDOW_INIT and grows up to
 * qp_conn_window_max(). A sender reads ahead of the network up to twice its
 * congestion window, within the same bounds. */
#define QP_STREAM_WINDOW_INIT (1u << 20)                  /* 1 MiB */
#define QP_STREAM_WINDOW_MIN (64u << 10)                  /* 64 KiB */
#define QP_STREAM_WINDOW_MAX_DEFAULT (UINT64_C(16) << 20) /* 16 MiB */
#define QP_STREAM_WINDOW_MAX (UINT64_C(1) << 30)          /* 1 GiB */
#define QP_CONN_WINDOW_INIT (16u << 20)                   /* 16 MiB */

/* The connection window's cap for a pool's max_stream_window: room for
 * QP_CONN_WINDOW_FACTOR streams at full speed, never below
 * QP_CONN_WINDOW_INIT. */
uint64_t qp_conn_window_max(uint64_t max_stream_window);
/* the streams at full speed that qp_conn_window_max makes room for */
#define QP_CONN_WINDOW_FACTOR 4

/* A stream's first receive window (and first read-ahead) for a pool's
 * max_stream_window: QP_STREAM_WINDOW_INIT, or the cap when it is lower. */
uint64_t qp_stream_window_init(uint64_t max_stream_window);

/* 1 when bytes is a max_stream_window pools take (QP_STREAM_WINDOW_MIN..
 * QP_STREAM_WINDOW_MAX), else 0. */
int qp_stream_window_ok(uint64_t bytes);

/* The controller of a pool that names none. The measurements behind the
 * choice: docs/performance.md, "congestion control". */
#define QP_CC_DEFAULT NGTCP2_CC_ALGO_BBR

/* name -> its ngtcp2_cc_algo in *out. Exact, lowercase names only. Returns
 * 0, or -EINVAL (name NULL or not in the table; *out untouched). Pure. */
int qp_cc_parse(const char *name, int *out);

/* algo -> its name (a static string), or NULL when algo is none of the
 * table's. Pure. */
const char *qp_cc_name(int algo);

/* The names for messages, "cubic, bbr or bbr2", into buf (always
 * NUL-terminated when len > 0). Returns buf. */
char *qp_cc_names(char *buf, size_t len);

#endif
