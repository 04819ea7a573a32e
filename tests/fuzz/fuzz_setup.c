/* libFuzzer target: the np-quic stream setup state machine
 * (worker/stream_setup.h) fed with arbitrary chunks, checking its invariants
 * after every call.
 *
 * Input: byte 0 = mode (bit 0: server, bits 1-2: FIN policy, bit 3: empty
 * chunks passed as NULL), then chunks, each a length byte (low 7 bits; bit 7
 * is the FIN flag under policy 2) followed by that many bytes (fewer at the
 * end of the input). */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "worker/stream_setup.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x)                                                               \
  do {                                                                         \
    if (!(x))                                                                  \
      __builtin_trap();                                                        \
  } while (0)

enum fin_policy {
  FIN_NEVER = 0,
  FIN_LAST,  /* on the last chunk of the input */
  FIN_FLAG,  /* bit 7 of each length byte */
  FIN_EVERY, /* on every chunk */
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size == 0)
    return 0;
  const int server = data[0] & 1;
  const enum fin_policy policy = (enum fin_policy)((data[0] >> 1) & 3);
  const int null_empty = (data[0] >> 3) & 1;
  size_t pos = 1;

  struct wrk_setup s;
  wrk_setup_init(&s, server);
  CHECK(s.is_server == server && !s.done && s.reason == NULL);

  uint8_t first4[4]; /* the first 4 bytes fed (client model) */
  size_t nfirst = 0;
  size_t total = 0; /* bytes consumed in total */
  int done = 0;
  uint32_t done_id = 0;

  while (pos < size) {
    uint8_t lb = data[pos++];
    size_t len = lb & 0x7f;
    if (len > size - pos)
      len = size - pos;
    const uint8_t *chunk = data + pos;
    pos += len;
    int fin;
    switch (policy) {
    case FIN_LAST:
      fin = pos >= size;
      break;
    case FIN_FLAG:
      fin = (lb & 0x80) != 0;
      break;
    case FIN_EVERY:
      fin = 1;
      break;
    default:
      fin = 0;
      break;
    }
    if (len == 0 && null_empty)
      chunk = NULL;

    for (size_t i = 0; i < len && nfirst < sizeof(first4); i++)
      first4[nfirst++] = chunk[i];

    size_t consumed = (size_t)-1;
    enum wrk_setup_result r = wrk_setup_feed(&s, chunk, len, fin, &consumed);
    CHECK(consumed <= len);
    CHECK(r == WRK_SETUP_MORE || r == WRK_SETUP_DONE || r == WRK_SETUP_EOF ||
          r == WRK_SETUP_VIOLATION);

    if (done) { /* after DONE: DONE, nothing consumed, nothing changes */
      CHECK(r == WRK_SETUP_DONE && consumed == 0);
      CHECK(s.done && s.reason == NULL);
      if (!server)
        CHECK(s.id == done_id);
      continue;
    }
    total += consumed;

    if (r == WRK_SETUP_EOF || r == WRK_SETUP_VIOLATION) {
      CHECK(s.reason != NULL && s.reason[0] != 0);
      CHECK(!s.done);
      if (server) {
        /* EOF: FIN without a complete exchange; VIOLATION: bad bytes */
        if (r == WRK_SETUP_EOF)
          CHECK(fin && (len == 0 || (len == 1 && chunk[0] == 0x00)));
        else
          CHECK(len > 1 || (len == 1 && chunk[0] != 0x00));
      } else {
        CHECK(r == WRK_SETUP_EOF); /* a client sees no bad bytes */
        CHECK(fin && total < 4);
      }
      break; /* the stream is gone: stop */
    }
    CHECK(s.reason == NULL);

    if (server) {
      if (r == WRK_SETUP_DONE) {
        CHECK(len == 1 && chunk[0] == 0x00 && !fin);
        CHECK(consumed == 1 && total == 1);
      } else {
        CHECK(len == 0 && !fin && consumed == 0);
      }
    } else {
      CHECK(total <= 4);
      size_t need = 4 - (total - consumed);
      CHECK(consumed == (len < need ? len : need));
      if (r == WRK_SETUP_DONE) {
        CHECK(total == 4);
        uint32_t want = (uint32_t)first4[0] << 24 | (uint32_t)first4[1] << 16 |
                        (uint32_t)first4[2] << 8 | first4[3];
        CHECK(s.id == want);
      } else {
        CHECK(total < 4 && !fin && consumed == len);
      }
    }
    if (r == WRK_SETUP_DONE) {
      CHECK(s.done);
      done = 1;
      done_id = s.id;
    } else {
      CHECK(!s.done);
    }
  }
  return 0;
}
