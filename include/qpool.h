/* qpool.h: the application API of qpool (np-quic stream pools).
 *
 * A pool hands out streams as plain file descriptors: a connected AF_UNIX
 * SOCK_STREAM socket per stream, in blocking mode, close-on-exec. Read and
 * write it like a TCP socket; shutdown(fd, SHUT_WR) half-closes the QUIC
 * stream (the peer reads EOF); close(fd) ends it. The fd belongs to the
 * caller from the moment a get function returns it.
 *
 * Errors are negative errno values (see qp_strerror for the sentence):
 *   -ETIMEDOUT    no stream before the timeout
 *   -ENOENT       no pool of that name
 *   -ECONNREFUSED no qpoold listening on the control socket
 *   -ECONNRESET   qpoold closed the control connection (restart, crash)
 *   -EAGAIN       the pool's worker is restarting: try again
 *   -EBUSY        too many requests in flight
 *   -EACCES       this caller is not allowed to use the pool
 *   -ECANCELED    the handle is being closed (qp_close in another thread)
 *   -EINVAL       bad argument
 *   -ENOMEM       out of memory
 *   -ENOTCONN     an embedded pool whose manager has not been started
 *   -EALREADY     the manager is already running
 *   -ENOEXEC      embedded mode cannot find the qpoold program
 *   -ESRCH        qp_conn_info: no stream with that ID
 *   -ENOLINK      qp_conn_info: the pool has no connection now
 *
 * Modes. Embedded mode (the default, like using the Go package): make a
 * pool with qp_client_pool_new / qp_server_pool_new and start it with
 * qp_client_manager / qp_server_manager; the library starts a private qpoold
 * (with its sandboxed worker) for this pool, which stops when the pool is
 * closed or the application exits. Attached mode (qp_pool_attach) uses a
 * pool of a system-wide qpoold through its control socket; the pool keeps
 * running when the application detaches. Every other function works the
 * same in both modes.
 *
 * Taking a stream does not cross the supervisor: when a handle attaches,
 * qpoold checks the caller's credentials and hands it a session socket to
 * the pool's worker, which answers takes directly (should the worker
 * restart, the library asks qpoold for a new session and meanwhile goes
 * through qpoold). Setting QPOOL_NO_SESSION=1 in the environment makes every
 * take go through qpoold.
 *
 * Thread safety: every function may be called from any thread, and many
 * threads may block in qp_incoming_get / qp_outgoing_get on the same handle
 * at once (each call is a separate request; answers are matched to callers).
 * The one exception is qp_close: once it is called, no new call may start on
 * that handle (calls already blocked return -ECANCELED).
 *
 * Stream IDs are 4 bytes; this API passes them as a uint32_t whose big-endian
 * bytes are the ID's bytes (so "0a1b2c3d" is 0x0a1b2c3d); the text form is 8
 * lowercase hex digits (qp_id_format / qp_id_parse). ID 0 ("00000000") is the
 * first stream a server pool assigns: applications use it as their control
 * stream.
 */
#ifndef QPOOL_H
#define QPOOL_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* An opaque handle on one pool. */
typedef struct qp_pool qp_pool;

/* Marks the library's exported symbols. */
#if defined(__GNUC__)
#define QP_API __attribute__((visibility("default")))
#else
#define QP_API
#endif

/* Default control socket of a system-wide qpoold (when neither socket_path
 * nor $QPOOL_CONTROL is given). */
#define QP_DEFAULT_CONTROL "/run/qpool/qpoold.sock"

/* Durations are nanoseconds (like Go's time.Duration). */
#define QP_MILLISECOND INT64_C(1000000)
#define QP_SECOND INT64_C(1000000000)

/* TLS files, read and checked by qpoold when the manager starts it (a file
 * that is missing, empty, a directory, not PEM, or a key that does not
 * match its certificate makes the manager fail with -EINVAL; qpoold's
 * message, naming the file, is on stderr). Initialise every field you do
 * not use to NULL (e.g. `struct qp_tls t = {.ca_file = "ca.pem"};`). */
struct qp_tls {
  const char *cert_file; /* server: certificate chain (PEM) */
  const char *key_file;  /* server: its private key (PEM) */
  /* client, tls_mode "2" (qp_client_pool_tls): the CA bundle (PEM) that
   * replaces the system trust store. Server pools do not read it. */
  const char *ca_file;
};

/* Embedded mode, client side (the reference's NewClientPool): a pool that
 * dials `target` ("host:port", "[v6]:port"; a host name is resolved at each
 * connection attempt, so a name that does not resolve yet is retried and a
 * changed address is followed) and keeps between min_cap and max_cap idle
 * streams ready, adjusting its capacity and its interval between rounds
 * (min_ivl <= interval <= max_ivl) by the rules of the protocol. As the
 * reference, it fixes up rather than refuses: a capacity below 1 becomes 1,
 * an interval of 0 or less 1 s, a min above its max is swapped (a warning
 * on stderr names the argument and the value used). Capacities above 65535
 * are refused. A failed connection is retried after 500 ms, then 1 s, 2 s,
 * 4 s, 5 s (reset once connected).
 * keep_alive: PING period, idle timeout 3x; 0 = no PINGs and quic-go's
 * default idle timeout of 30 s (as the reference with 0); qp_pool_set(p,
 * "idle_timeout", ...) sets the idle timeout outright. tls_mode: "0" no
 * verification, "1" (NULL too) the server's self-signed certificate, not
 * verified, "2" verified against the system trust store ($SSL_CERT_FILE,
 * else /etc/ssl/certs/ca-certificates.crt; or the CA file given with
 * qp_client_pool_tls) and `hostname` (required for "2"; sent as SNI in any
 * mode when given). Durations are at most 24 h; keep_alive >= 0.
 * Returns 0 and a new handle in *out, or -EINVAL (out NULL, target not
 * "host:port" with a port 1-65535, unknown tls_mode, a hostname that is not
 * a host name or IP literal, a value out of range) / -ENOMEM.
 * Nothing runs yet: start it with qp_client_manager. Not blocking. */
QP_API int qp_client_pool_new(int min_cap, int max_cap, int64_t min_ivl,
                              int64_t max_ivl, int64_t keep_alive,
                              const char *tls_mode, const char *hostname,
                              const char *target, qp_pool **out);

/* Embedded mode, client side: TLS files for a pool made by
 * qp_client_pool_new with tls_mode "2", before its manager starts.
 * tls->ca_file names the PEM CA bundle the server's certificate must chain
 * to, instead of the system trust store; cert_file and key_file must be
 * NULL (client certificates are not supported). The path is copied.
 * Returns 0, or -EINVAL (p is not an embedded client pool in tls_mode "2",
 * its manager already started, ca_file NULL or empty, cert_file or key_file
 * set) / -ENOMEM. The file is read when the manager starts (see struct
 * qp_tls). Not blocking. */
QP_API int qp_client_pool_tls(qp_pool *p, const struct qp_tls *tls);

/* Embedded mode, server side (the reference's NewServerPool): a pool that
 * listens on UDP `listen_addr` ("host:port", ":port" every IPv4 address,
 * "[::]:port"; numeric) and holds at most max_cap idle streams (below 1:
 * 1, with a warning on stderr, as the reference; above 65535: refused).
 * client_ip: NULL or "" for anyone, else a comma list of addresses and
 * CIDRs ("192.0.2.7,2001:db8::/32") allowed to connect; others are refused
 * before the handshake. tls: NULL for a self-signed certificate made in
 * memory at start, else both PEM files (checked when the manager starts:
 * a bad one is an error, never replaced by a self-signed certificate).
 * keep_alive as for clients.
 * Returns 0 and *out, or -EINVAL (out NULL, listen_addr not a numeric
 * address with a port 1-65535, a value out of range) / -ENOMEM. Start it
 * with qp_server_manager. Not blocking. */
QP_API int qp_server_pool_new(int max_cap, const char *client_ip,
                              const struct qp_tls *tls, const char *listen_addr,
                              int64_t keep_alive, qp_pool **out);

/* Embedded mode: sets one setting of the pool, before its manager starts,
 * by its qpoold config key and a value as the config file takes it
 * (docs/qpoold-config.md, "[pool NAME]"): for example
 *   qp_pool_set(p, "idle_timeout", "2m");
 *   qp_pool_set(p, "congestion_control", "cubic");
 *   qp_pool_set(p, "max_stream_window", "4MiB");
 * Keys: the settings that are one value (min_cap, max_cap, min_interval,
 * max_interval, keep_alive, idle_timeout, setup_timeout,
 * congestion_control, max_stream_window, tls_mode, hostname); the flag name
 * ("--idle-timeout") works too. A later call replaces the value; what the
 * constructor set can be changed this way. Checks that span settings
 * (idle_timeout longer than keep_alive, tls_mode 2 with a hostname, a
 * min_cap or min_interval above the max one when both were given: a
 * constructor gives both) are
 * made when the manager starts its qpoold, which then fails with -EINVAL.
 * Returns 0, or -EINVAL (p is not an embedded pool, its manager already
 * started, key or value NULL, no such key, a setting of the other side's
 * pools, a bad value). Not blocking. */
QP_API int qp_pool_set(qp_pool *p, const char *key, const char *value);

/* Embedded mode, either side: the congestion controller of the pool's QUIC
 * connections, before its manager starts. name: "cubic" (loss-based, ngtcp2's
 * own default), "bbr" (BBR v1: paces at its model of the bottleneck
 * bandwidth and RTT) or "bbr2" (BBR v2, IETF draft). Without this call a
 * pool uses "bbr", as qpoold does. A later call replaces the name. The same
 * as qp_pool_set(p, "congestion_control", name).
 * Returns 0, or -EINVAL (p is not an embedded pool, its manager already
 * started, name NULL or none of those) / -ENOMEM. Not blocking. */
QP_API int qp_pool_congestion_control(qp_pool *p, const char *name);

/* Embedded mode, either side: how far the receive window of each stream of
 * the pool's QUIC connections may grow (ngtcp2 doubles a window while it is
 * used up within two round trips, from 1 MiB), and the most a stream reads
 * ahead of the network from its application, in bytes, before the manager
 * starts. From 65536 (64 KiB) to 1073741824 (1 GiB); the connection's window
 * may grow to 4 times it (at least 16 MiB). Without this call a pool uses
 * 16 MiB, as qpoold does. A later call replaces the value. The same as
 * qp_pool_set(p, "max_stream_window", ...).
 * Returns 0, or -EINVAL (p is not an embedded pool, its manager already
 * started, bytes out of range). Not blocking. */
QP_API int qp_pool_max_stream_window(qp_pool *p, uint64_t bytes);

/* Start an embedded pool (the reference's ClientManager / ServerManager,
 * which Go programs run in a goroutine): starts the pool's private qpoold,
 * waits until it runs and attaches to it, then returns; the pool fills (or
 * accepts) in the background from then on. Call once per pool.
 * Returns 0, or a negative errno: -EINVAL (not an embedded pool of that
 * side), -EALREADY (already started), -ENOEXEC (qpoold not found: it is
 * looked for in $QPOOL_QPOOLD, beside libqpool, then in the installed
 * sbin directory), -EADDRINUSE and other errors qpoold reported at start
 * (its log, on the application's stderr, says more), -EINVAL also when a
 * TLS file named in the settings (certificate, key, CA bundle; in tls_mode
 * "2" without one, the system bundle) cannot be read, is empty, is not PEM
 * or holds a key that does not match the certificate, or when the pool
 * cannot start in qpoold's worker,
 * -EIO (qpoold exited during its start), -ETIMEDOUT (qpoold did not start
 * within 15 s), -ECANCELED (qp_close was called meanwhile). A failed call
 * may be retried. qpoold and its worker log warnings and errors to
 * the application's stderr ($QPOOL_LOG=error|warn|info|debug changes that).
 * Blocking: yes, until qpoold is up (typically a few ms). */
QP_API int qp_client_manager(qp_pool *p);
QP_API int qp_server_manager(qp_pool *p);

/* Attached mode: uses pool `pool_name` of a running qpoold. socket_path is
 * its control socket; NULL means $QPOOL_CONTROL, or QP_DEFAULT_CONTROL when
 * that is unset or empty. Connects and checks that the pool exists (one
 * round trip, at most 5 s).
 * Returns 0 and a new handle in *out (free it with qp_close), or a negative
 * errno with *out untouched: -ENOENT no such pool, -ECONNREFUSED no qpoold at
 * that path (also when the socket file does not exist), -EACCES not allowed,
 * -ETIMEDOUT qpoold did not answer, -EINVAL bad argument, -ENOMEM.
 * Blocking: yes (connect + two requests: the check and the worker
 * session), at most 5 s. The library starts no thread: callers waiting on
 * a handle take turns reading its sockets. */
QP_API int qp_pool_attach(const char *socket_path, const char *pool_name,
                          qp_pool **out);

/* Server side: takes any idle stream (the oldest first). Waits up to
 * timeout_ms for one to arrive; 0 = only if one is idle now.
 * Returns 0 with *id = the stream's ID and *fd = the stream (owned by the
 * caller: close it), or a negative errno with *fd = -1: -ETIMEDOUT (nothing
 * in time), -ECANCELED, -EAGAIN, -EBUSY, -ECONNRESET, ...
 * Blocking: yes, until a stream is taken or the timeout passes (qpoold
 * enforces the timeout; the library gives up on its own 5 s later, should
 * qpoold not answer). Wakes at once when a stream arrives. */
QP_API int qp_incoming_get(qp_pool *p, uint32_t timeout_ms, uint32_t *id,
                           int *fd);

/* Client side: takes the stream with ID `id`, waiting up to timeout_ms for
 * it to arrive (0 = only if it is idle now). Returns 0 with *fd = the stream
 * (owned by the caller), or a negative errno with *fd = -1 (-ETIMEDOUT: no
 * such stream in time). Blocking and wake-up as qp_incoming_get. */
QP_API int qp_outgoing_get(qp_pool *p, uint32_t id, uint32_t timeout_ms,
                           int *fd);

/* One certificate: its DER bytes. */
struct qp_cert {
  const uint8_t *der;
  size_t len;
};

/* A QUIC connection of a pool as Go's ConnectionState() and
 * LocalAddr()/RemoteAddr() describe it. Every pointer points into the same
 * allocation, which qp_conn_info_free releases; strings are never NULL ("" if
 * unknown). The library allocates it: fields may be added at the end. */
struct qp_conn_info {
  const char *local;   /* this side's UDP address: "127.0.0.1:4433",
                          "[::1]:4433" (a server listening on a wildcard
                          address shows it: "0.0.0.0:4433") */
  const char *remote;  /* the peer's UDP address */
  const char *alpn;    /* the negotiated ALPN: "np-quic" */
  const char *version; /* "TLS1.3" */
  const char *cipher;  /* the IANA cipher suite: "TLS_AES_128_GCM_SHA256" */
  int64_t rtt_ns;      /* smoothed round-trip time (ns) */
  /* the peer's certificate chain as it sent it, leaf first: certs[0] is
   * the server's certificate, whose SHA-256 over der is its fingerprint.
   * Not verified in tls_mode "0"/"1". Empty on a server pool (clients send
   * no certificate). */
  size_t ncerts;
  const struct qp_cert *certs;
  /* 1 when the chain had more than 16 certificates or 64 KiB: certs holds
   * the first ones */
  int truncated;
  /* the congestion controller the pool's worker gave this connection:
   * "cubic", "bbr" or "bbr2" ("" if unknown), and its state now */
  const char *congestion_control;
  uint64_t cwnd;              /* congestion window (bytes) */
  uint64_t bytes_in_flight;   /* sent and not yet acknowledged (bytes) */
  uint64_t pacing_rate_sec;   /* the controller's pacing rate (bytes/s); 0
                                 when it sets none (CUBIC) */
  uint64_t delivery_rate_sec; /* measured delivery rate (bytes/s) */
  /* pacing: write passes that stopped at ngtcp2's pacing deadline with
   * data, congestion window and credit left, and the most bytes sent with
   * no gap of 100 us between two sends */
  uint64_t pacing_waits;
  uint64_t max_burst; /* bytes */
  /* the connection's read-ahead now, shared by its streams: twice the
   * congestion window, within 1 MiB and the pool's max_stream_window (which
   * may be lower); each stream reads from its application up to its share
   * of it (at least 64 KiB) ahead of the network */
  uint64_t read_ahead;
};

/* Describes the QUIC connection that carries the stream with ID *id (idle
 * or taken, while its connection is open: a stream whose connection has
 * closed is not found), or with id NULL the pool's connection: a client
 * pool's current one, a server pool's newest. (A pointer, because every
 * 32-bit value is a valid stream ID.) Works the same in both modes.
 * Returns 0 and *out (free it with qp_conn_info_free), or a negative errno
 * with *out NULL: -ESRCH no stream with that ID, -ENOLINK no connection
 * now (a client pool connecting, a server pool nobody connected to),
 * -EAGAIN, -ECANCELED, -ENOTCONN, -EINVAL ...
 * Blocking: one round trip to the pool's worker, at most 5 s. */
QP_API int qp_conn_info(qp_pool *p, const uint32_t *id,
                        struct qp_conn_info **out);
/* Frees what qp_conn_info returned (NULL is a no-op). */
QP_API void qp_conn_info_free(struct qp_conn_info *ci);

/* The following ask qpoold for the pool's current report (one round trip,
 * at most 5 s; blocking). */

/* 1 when the pool's worker is up and the pool started, 0 when not, or a
 * negative errno. */
QP_API int qp_ready(qp_pool *p);
/* The number of idle streams in the pool (the reference's Active()), or a
 * negative errno. */
QP_API int qp_active(qp_pool *p);
/* Capacity(): a client pool's current target number of idle streams; for a
 * server pool its max_cap (the reference reports 0 there). Or a negative
 * errno. */
QP_API int qp_capacity(qp_pool *p);
/* Interval() of a client pool in nanoseconds (0 for a server pool), or a
 * negative errno. */
QP_API int64_t qp_interval(qp_pool *p);
/* The application-owned error counter (ErrorCount()), or a negative errno. */
QP_API int64_t qp_error_count(qp_pool *p);
/* Adds one to the error counter. Returns 0 or a negative errno. */
QP_API int qp_add_error(qp_pool *p);
/* Sets the error counter to 0. Returns 0 or a negative errno. */
QP_API int qp_reset_error(qp_pool *p);
/* Closes every idle stream of the pool (Flush()); the pool refills by its
 * own rules. Returns 0 or a negative errno (-EAGAIN: worker restarting). */
QP_API int qp_flush(qp_pool *p);

/* Closes the handle and frees p. Attached mode: detaches (the pool keeps
 * running in qpoold). Embedded mode: stops the pool's private qpoold; idle
 * streams close, streams already taken are delivered (their bytes in
 * flight too) and then closed by qpoold as it stops, within about 15 s
 * (after that it is killed). Calls blocked in other threads return
 * -ECANCELED before it returns; streams already taken stay the caller's
 * fds. Streams that arrive for cancelled requests are closed. NULL is a
 * no-op. Blocking: until those calls have left (embedded: and qpoold has
 * stopped). */
QP_API void qp_close(qp_pool *p);

/* The control socket of the qpoold that runs p's pool (embedded mode: the
 * private one, once the manager started it) and the pool's name there, for
 * qpoolctl (`qpoolctl --control PATH watch`). NULL when there is none yet.
 * The strings live as long as p. Not blocking. */
QP_API const char *qp_control_path(qp_pool *p);
QP_API const char *qp_pool_name(qp_pool *p);

/* A sentence for a negative errno value returned by this library (the sign
 * is ignored). Never NULL; the string is static. Thread-safe. */
QP_API const char *qp_strerror(int err);

/* Writes the 8-hex-digit text form of id and a NUL into buf. */
QP_API void qp_id_format(uint32_t id, char buf[9]);
/* Parses exactly 8 hex digits (either case) into *id. Returns 0, or -EINVAL
 * (and *id untouched) for anything else. */
QP_API int qp_id_parse(const char *s, uint32_t *id);

#ifdef __cplusplus
}
#endif

#endif
