/* Fuzzes the supervisor's decoding of worker and application frames: the frame
 * header check and the protobuf-c unpacking of every message type a worker may
 * send (and those it receives), as the dispatchers do, and the limits check of
 * a connection's description (qpoold on a worker's answer, libqpool on its
 * own). Must never crash or leak. */
#include <stddef.h>
#include <stdint.h>

#include "control.pb-c.h"
#include "ipc.pb-c.h"
#include "shared/conn_info.h"
#include "shared/frame.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  struct qp_frame f;
  if (qp_frame_parse(data, size, &f) < 0)
    return 0;
  if (f.len > size - QP_FRAME_HDR)
    __builtin_trap();
#define TRY(lower)                                                             \
  do {                                                                         \
    ProtobufCMessage *m =                                                      \
        (ProtobufCMessage *)qpool__##lower##__unpack(NULL, f.len, f.payload);  \
    if (m)                                                                     \
      protobuf_c_message_free_unpacked(m, NULL);                               \
  } while (0)
  switch (f.type % 19) {
  case 0:
    TRY(hello);
    break;
  case 1:
    TRY(dial_request);
    break;
  case 2:
    TRY(report);
    break;
  case 3:
    TRY(probe_result);
    break;
  case 4:
    TRY(bye);
    break;
  case 5:
    TRY(pool_add);
    break;
  case 6:
    TRY(config_done);
    break;
  case 7:
    TRY(hand_off);
    break;
  case 8:
    TRY(datagram);
    break;
  case 9:
    TRY(dial_reply);
    break;
  case 10:
    TRY(get);
    break;
  case 11:
    TRY(get_result);
    break;
  case 12:
    TRY(request);
    break;
  case 13: {
    Qpool__Response *m = qpool__response__unpack(NULL, f.len, f.payload);
    const char *why;
    if (m && m->conn && qp_conn_info_check(m->conn, &why) < 0 && !why)
      __builtin_trap();
    if (m)
      qpool__response__free_unpacked(m, NULL);
    break;
  }
  case 14:
    TRY(session);
    break;
  case 15:
    TRY(flush);
    break;
  case 16:
    TRY(cancel);
    break;
  case 17:
    TRY(conn_info_get);
    break;
  case 18: {
    Qpool__ConnInfoResult *m =
        qpool__conn_info_result__unpack(NULL, f.len, f.payload);
    const char *why;
    if (m && m->conn && qp_conn_info_check(m->conn, &why) == 0) {
      size_t total = 0; /* what the check promises the forwarder */
      for (size_t i = 0; i < m->conn->n_certs; i++)
        total += m->conn->certs[i].len;
      if (m->conn->n_certs > QP_CONN_CERTS_MAX || total > QP_CONN_CHAIN_MAX)
        __builtin_trap();
    }
    if (m)
      qpool__conn_info_result__free_unpacked(m, NULL);
    break;
  }
  default:
    TRY(report);
    break;
  }
  return 0;
}
