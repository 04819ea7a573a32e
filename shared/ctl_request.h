/* Reading an application's request (control.proto) off a SEQPACKET socket:
 * one implementation for qpoold's control socket and the worker's
 * sessions, both of which treat the application as untrusted. */
#ifndef QP_SHARED_CTL_REQUEST_H
#define QP_SHARED_CTL_REQUEST_H

#include <stddef.h>
#include <stdint.h>

#include "control.pb-c.h"

/* Receives one frame into buf (cap >= QP_FRAME_HDR + QP_FRAME_MAX) and
 * decodes it as a Request; an fd attached to it is closed (requests never
 * carry one). Returns 1 with *out (free with qpool__request__free_unpacked),
 * -EAGAIN (nothing queued), 0 (the application closed the socket), or a
 * negative errno for input that ends the connection: -EPROTO (a malformed
 * frame or request, or another frame type), -EMSGSIZE, or a socket error.
 * *why is then a short reason for the log. */
int qp_ctl_recv_request(int sock, uint8_t *buf, size_t cap,
                        Qpool__Request **out, const char **why);

/* Fills an answer: tag, code (0 or a positive errno), message (may be
 * NULL) and, when has_id, the taken stream's ID. */
void qp_ctl_response_init(Qpool__Response *r, uint64_t tag, int code,
                          const char *msg, int has_id, uint32_t id);

#endif
