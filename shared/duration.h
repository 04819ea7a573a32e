/* Go-style durations ("500ms", "1m30s", "2h", "1.5s") as nanoseconds. */
#ifndef QP_SHARED_DURATION_H
#define QP_SHARED_DURATION_H

#include <stddef.h>
#include <stdint.h>

#define QP_NS_PER_MS UINT64_C(1000000)
#define QP_NS_PER_S UINT64_C(1000000000)

/* Parses a non-negative Go duration: a sequence of decimal numbers, each with
 * an optional fraction and a unit ns, us (or µs), ms, s, m, h; "0" alone is
 * allowed, as is a leading '+'. Returns 0 and sets *ns, or -EINVAL (bad
 * syntax, missing or unknown unit, negative) or -ERANGE (more than Go's
 * maximum, INT64_MAX nanoseconds, about 292 years); *ns untouched then. */
int qp_duration_parse(const char *s, uint64_t *ns);

/* Writes Go's Duration.String form ("1.5s", "100ms", "0s", "1m30s", "2h0m0s",
 * "1.5us" but with Go's micro sign U+00B5 in UTF-8) into buf (always
 * NUL-terminated when len > 0). Returns the length it needed (snprintf-like,
 * without the NUL). */
size_t qp_duration_format(uint64_t ns, char *buf, size_t len);

#endif
