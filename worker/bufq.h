/* A byte queue of fixed-size chunks: stream data waiting to be written to an
 * fd or to be acknowledged by the peer. */
#ifndef QP_WORKER_BUFQ_H
#define QP_WORKER_BUFQ_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#define WRK_CHUNK_SIZE 65536

#define WRK_SMALL_CHUNK 256 /* first chunk of a queue for a small append */

struct wrk_chunk {
  struct wrk_chunk *next;
  size_t len; /* bytes used in data */
  size_t cap; /* bytes allocated in data */
  uint8_t data[];
};

struct wrk_bufq {
  struct wrk_chunk *head, *tail;
  size_t head_off; /* bytes of head already consumed */
  size_t bytes;    /* total queued */
};

/* Copies len bytes in. Returns 0 or -ENOMEM (nothing appended then). */
int wrk_bufq_append(struct wrk_bufq *q, const uint8_t *data, size_t len);
/* Space at the tail to read into directly (allocates a chunk if needed):
 * returns a pointer and *avail > 0, or NULL on -ENOMEM. */
uint8_t *wrk_bufq_reserve(struct wrk_bufq *q, size_t *avail);
void wrk_bufq_commit(struct wrk_bufq *q, size_t n);
/* Fills up to n iovecs with queued bytes starting `skip` bytes in, at most
 * `max` bytes. Returns the number of iovecs. */
size_t wrk_bufq_iov(const struct wrk_bufq *q, size_t skip, size_t max,
                    struct iovec *iov, size_t n);
/* Removes n (<= bytes) bytes from the front; empty chunks are freed, so an
 * empty queue holds no memory. */
void wrk_bufq_drop(struct wrk_bufq *q, size_t n);
void wrk_bufq_free(struct wrk_bufq *q);

#endif
