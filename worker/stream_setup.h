/* The per-stream np-quic setup exchange as a pure state machine over the
 * bytes a stream receives: the server waits for the client's one 0x00 byte,
 * the client waits for the 4-byte ID. Fed with untrusted bytes. */
#ifndef QP_WORKER_STREAM_SETUP_H
#define QP_WORKER_STREAM_SETUP_H

#include <stddef.h>
#include <stdint.h>

enum wrk_setup_result {
  WRK_SETUP_MORE = 0,  /* consumed everything, needs more bytes */
  WRK_SETUP_DONE,      /* exchange complete; *consumed bytes were setup */
  WRK_SETUP_EOF,       /* the stream ended before the exchange completed */
  WRK_SETUP_VIOLATION, /* peer broke the protocol (see reason) */
};

struct wrk_setup {
  uint8_t is_server;
  uint8_t have; /* bytes of the ID collected (client) */
  uint8_t idb[4];
  uint8_t done;
  uint32_t id; /* client: valid once done */
  const char *reason;
};

void wrk_setup_init(struct wrk_setup *s, int is_server);

/* Feeds one received chunk (fin: the peer ended its direction after it).
 * Server: exactly one byte 0x00 must arrive and nothing else before the
 * server answered; more bytes in the same chunk, another value, or FIN is a
 * violation / EOF. Client: collects 4 bytes; bytes after them are
 * application data (left unconsumed: *consumed tells where they start).
 * Calling it after DONE returns DONE with *consumed = 0. */
enum wrk_setup_result wrk_setup_feed(struct wrk_setup *s, const uint8_t *data,
                                     size_t len, int fin, size_t *consumed);

#endif
