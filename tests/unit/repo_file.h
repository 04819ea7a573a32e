/* A file of the source tree (docs, examples, man pages) for the unit tests
 * that check the docs against the code: the whole text, NUL-terminated
 * (files up to 1 MiB), malloc'ed; NULL when it cannot be read. */
#ifndef QP_TESTS_REPO_FILE_H
#define QP_TESTS_REPO_FILE_H

#include <stdio.h>
#include <stdlib.h>

static inline char *repo_file(const char *rel) {
  char path[4096];
  snprintf(path, sizeof(path), "%s/%s", QP_SRC_DIR, rel);
  FILE *f = fopen(path, "r");
  if (!f)
    return NULL;
  char *buf = calloc(1, 1 << 20);
  if (buf)
    (void)!fread(buf, 1, (1 << 20) - 1, f);
  fclose(f);
  return buf;
}

#endif
