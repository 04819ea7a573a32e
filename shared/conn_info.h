/* Limits of a connection's description (control.proto ConnInfo) and their
 * check: the worker cuts the peer's chain to them, qpoold and libqpool
 * refuse an answer beyond them. */
#ifndef QP_SHARED_CONN_INFO_H
#define QP_SHARED_CONN_INFO_H

struct Qpool__ConnInfo; /* control.pb-c.h */

#define QP_CONN_CERTS_MAX 16           /* certificates of the peer's chain */
#define QP_CONN_CHAIN_MAX (64u * 1024) /* their DER bytes together */
#define QP_CONN_STR_MAX 255            /* each string field */

/* Checks a ConnInfo (e.g. just unpacked from a peer that is not trusted):
 * every string present and at most QP_CONN_STR_MAX bytes, a congestion
 * controller (when present) named in shared/pool_params.c, a read-ahead
 * (when present) within QP_STREAM_WINDOW_MIN..QP_STREAM_WINDOW_MAX, at most
 * QP_CONN_CERTS_MAX certificates of QP_CONN_CHAIN_MAX bytes together, none
 * empty. Returns 0, or -EPROTO with a short reason in *why (static). Pure. */
int qp_conn_info_check(const struct Qpool__ConnInfo *m, const char **why);

#endif
