/* Fuzzes the supervisor's decoding of worker and application frames: the frame
 * header check and the protobuf-c unpacking of every message type a worker may
 * send (and those it receives), as the dispatchers do. Must never crash or
 * leak. */
#include <stddef.h>
#include <stdint.h>

#include "control.pb-c.h"
#include "ipc.pb-c.h"
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
  switch (f.type % 17) {
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
  case 13:
    TRY(response);
    break;
  case 14:
    TRY(session);
    break;
  case 15:
    TRY(flush);
    break;
  case 16:
    TRY(cancel);
    break;
  default:
    TRY(report);
    break;
  }
  return 0;
}
