/* Byte sizes as settings are written: "65536", "512KiB", "16MiB", "1GiB". */
#ifndef QP_SHARED_SIZE_H
#define QP_SHARED_SIZE_H

#include <stddef.h>
#include <stdint.h>

/* Parses a non-negative byte count: decimal digits, then optionally one of
 * the binary units KiB (1024), MiB (1024^2) or GiB (1024^3), exactly so
 * written; no sign, fraction or space ("16MB", "16M", "1.5MiB" and
 * "16 MiB" are refused). What range a setting allows is its caller's
 * business. Returns 0 and sets *bytes, or -EINVAL (bad syntax, no digits,
 * an unknown unit) or -ERANGE (more than UINT64_MAX bytes); *bytes is
 * untouched then. Pure. */
int qp_size_parse(const char *s, uint64_t *bytes);

/* Writes bytes in the largest unit it is a whole number of ("16MiB",
 * "1536KiB", "65537", "0"), which qp_size_parse reads back to the same
 * value, into buf (always NUL-terminated when len > 0). Returns the length
 * it needed (snprintf-like, without the NUL). */
size_t qp_size_format(uint64_t bytes, char *buf, size_t len);

#endif
