/* Reading an application's request off a SEQPACKET socket, and filling
 * the answer. */
#include <errno.h>
#include <unistd.h>

#include "shared/ctl_request.h"
#include "shared/frame.h"

int qp_ctl_recv_request(int sock, uint8_t *buf, size_t cap,
                        Qpool__Request **out, const char **why) {
  *out = NULL;
  *why = NULL;
  struct qp_frame f;
  int rc = qp_frame_recv(sock, buf, cap, &f);
  if (rc == -EAGAIN || rc == 0)
    return rc;
  if (rc < 0) {
    *why = "bad frame";
    return rc;
  }
  if (f.fd >= 0)
    close(f.fd); /* requests never carry fds */
  if (f.type == QPOOL__CTL_TYPE__CTL_REQUEST)
    *out = qpool__request__unpack(NULL, f.len, f.payload);
  if (!*out) {
    *why = "malformed request";
    return -EPROTO;
  }
  return 1;
}

void qp_ctl_response_init(Qpool__Response *r, uint64_t tag, int code,
                          const char *msg, int has_id, uint32_t id) {
  qpool__response__init(r);
  r->tag = tag;
  r->code = code;
  r->message = (char *)msg;
  r->has_stream_id = has_id;
  r->stream_id = id;
}
