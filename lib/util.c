/* libqpool: error sentences and stream ID text forms. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "shared/stream_id.h"
#include "qpool.h"

const char *qp_strerror(int err) {
  if (err < 0)
    err = -err;
  switch (err) {
  case 0:
    return "success";
  case ETIMEDOUT:
    return "no stream before the timeout";
  case ENOENT:
    return "no pool of that name";
  case ECONNREFUSED:
    return "no qpoold is listening on the control socket";
  case ECONNRESET:
    return "qpoold closed the control connection";
  case EAGAIN:
    return "the pool's worker is restarting: try again";
  case EBUSY:
    return "too many requests in flight";
  case EACCES:
    return "permission denied for this pool";
  case ECANCELED:
    return "the pool handle is being closed";
  case EINVAL:
    return "invalid argument";
  case ENOMEM:
    return "out of memory";
  case EPROTO:
    return "malformed answer from qpoold";
  case ENOTCONN:
    return "the pool is not running: start it with qp_client_manager or "
           "qp_server_manager";
  case EALREADY:
    return "the pool's manager is already running";
  case ENOEXEC:
    return "cannot find the qpoold program (set QPOOL_QPOOLD to its path)";
  case EADDRINUSE:
    return "the listen address is in use";
  case EIO:
    return "qpoold stopped during its start (its log says why)";
  case ESRCH:
    return "no stream with that ID on an open connection of the pool";
  case ENOLINK:
    return "the pool has no connection now";
  case EMFILE:
    return "this process has no file descriptor left for the stream";
  default: {
    /* strerrordesc_np (glibc >= 2.32) is thread-safe and static */
    const char *s = strerrordesc_np(err);
    return s ? s : "unknown error";
  }
  }
}

void qp_id_format(uint32_t id, char buf[9]) {
  qp_stream_id_format(id, buf);
}

int qp_id_parse(const char *s, uint32_t *id) {
  return qp_stream_id_parse(s, id);
}
