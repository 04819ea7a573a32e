/* A pooled stream's 4-byte ID in its text form: 8 lowercase hex digits
 * ("0a1b2c3d"; docs/protocol.md). One formatter and parser for the engine,
 * libqpool (qp_id_format, qp_id_parse) and the tools. */
#ifndef QP_SHARED_STREAM_ID_H
#define QP_SHARED_STREAM_ID_H

#include <stdint.h>

#define QP_STREAM_ID_TEXT 9 /* 8 digits and the NUL */

/* id -> "0a1b2c3d" in buf. */
void qp_stream_id_format(uint32_t id, char buf[QP_STREAM_ID_TEXT]);

/* Exactly 8 hex digits (either case) -> *id. Returns 0, or -EINVAL (s
 * NULL, shorter, longer, not hex; *id untouched). Pure. */
int qp_stream_id_parse(const char *s, uint32_t *id);

#endif
