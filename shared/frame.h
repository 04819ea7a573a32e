/* Frames on SOCK_SEQPACKET Unix sockets: 4-byte big-endian payload length,
 * 2-byte big-endian type, protobuf payload; at most one fd per frame, in the
 * same sendmsg (SCM_RIGHTS). The size cap is checked before allocating. */
#ifndef QP_SHARED_FRAME_H
#define QP_SHARED_FRAME_H

#include <stddef.h>
#include <stdint.h>
#include <protobuf-c/protobuf-c.h>

#define QP_FRAME_HDR 6
/* Payload bytes. Small enough that the largest frame fits the default send
 * buffer of a SOCK_SEQPACKET socket (net.core.wmem_default, 212992 bytes),
 * so a frame the codec accepts never fails with EMSGSIZE at sendmsg; the
 * largest messages (PoolAdd with certificate and key, 64 KiB each; a
 * connection description with 64 KiB of certificates) stay well below. */
#define QP_FRAME_MAX (160u * 1024)

struct qp_frame {
  uint16_t type;
  const uint8_t *payload; /* points into the caller's buffer */
  size_t len;
  int fd;      /* received fd or -1; the caller owns it */
  int fd_lost; /* the sender attached an fd this process could not take
                  (out of fds: MSG_CTRUNC); fd is -1 */
};

/* Validates a whole received frame (pure; fuzzed). Returns 0 and fills
 * type/payload/len (fd untouched), or -EPROTO (short, length mismatch) or
 * -EMSGSIZE (payload over QP_FRAME_MAX). */
int qp_frame_parse(const uint8_t *buf, size_t n, struct qp_frame *f);

/* Packs msg and sends it as one frame with fd (or -1), without blocking.
 * Returns 0, -EAGAIN (peer not reading: nothing sent), -EMSGSIZE, -EPIPE
 * (peer gone) or another negative errno. fd stays the caller's. */
int qp_frame_send(int sock, uint16_t type, const ProtobufCMessage *msg, int fd);

/* Packs msg as a whole frame into a new buffer (*out, free() it). Returns
 * the frame length, or -EMSGSIZE / -ENOMEM. */
long qp_frame_pack(uint16_t type, const ProtobufCMessage *msg, uint8_t **out);
/* Sends an already packed frame with fd (or -1), without blocking. Same
 * returns as qp_frame_send. */
int qp_frame_send_raw(int sock, const uint8_t *frame, size_t len, int fd);

/* Receives one frame into buf (cap >= QP_FRAME_HDR + QP_FRAME_MAX).
 * Returns 1 (f filled; f->fd owned by the caller), 0 (peer closed),
 * -EAGAIN, or a negative errno for a bad frame (-EPROTO, -EMSGSIZE: the
 * frame and any fd it carried are discarded). */
int qp_frame_recv(int sock, uint8_t *buf, size_t cap, struct qp_frame *f);

#endif
