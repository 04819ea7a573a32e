/* Unit tests for shared/log.c: line format, levels, truncation, QPOOL_LOG and
 * whole lines when several processes share one stderr pipe. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "shared/log.h"

static int saved_stderr = -1;
static int pipe_rd = -1;

/* Points stderr at a fresh non-blocking pipe. */
static void capture(void) {
  int p[2];
  assert_int_equal(pipe(p), 0);
  saved_stderr = dup(STDERR_FILENO);
  assert_true(saved_stderr >= 0);
  assert_int_equal(dup2(p[1], STDERR_FILENO), STDERR_FILENO);
  close(p[1]);
  pipe_rd = p[0];
  fcntl(pipe_rd, F_SETFL, O_NONBLOCK);
}

/* Restores stderr and returns what was logged (static buffer). */
static const char *captured(void) {
  static char buf[65536];
  size_t n = 0;
  dup2(saved_stderr, STDERR_FILENO);
  close(saved_stderr);
  for (;;) {
    ssize_t r = read(pipe_rd, buf + n, sizeof(buf) - 1 - n);
    if (r <= 0)
      break;
    n += (size_t)r;
  }
  close(pipe_rd);
  buf[n] = '\0';
  return buf;
}

static void test_format(void **state) {
  char want[128];
  qp_log_set_ident("unit");
  capture();
  qp_info("hello %d", 42);
  qp_warn("careful");
  qp_err("broken: %s", "yes");
  const char *out = captured();
  long pid = (long)getpid();
  snprintf(want, sizeof(want),
           "unit[%ld] INFO: hello 42\nunit[%ld] WARN: careful\n"
           "unit[%ld] ERROR: broken: yes\n",
           pid, pid, pid);
  assert_string_equal(out, want);
}

static void test_levels(void **state) {
  qp_log_set_ident("lv");
  qp_log_set_level(QP_LOG_WARN);
  assert_false(qp_log_enabled(QP_LOG_INFO));
  assert_true(qp_log_enabled(QP_LOG_WARN));
  assert_true(qp_log_enabled(QP_LOG_ERROR));
  capture();
  qp_info("not shown");
  qp_debug("not shown either");
  qp_warn("shown");
  const char *out = captured();
  assert_null(strstr(out, "not shown"));
  assert_non_null(strstr(out, "WARN: shown\n"));

  qp_log_set_level(QP_LOG_DEBUG);
  assert_true(qp_log_enabled(QP_LOG_DEBUG));
  capture();
  qp_debug("details %s", "here");
  out = captured();
  assert_non_null(strstr(out, "lv["));
  assert_non_null(strstr(out, "] DEBUG: details here\n"));
  qp_log_set_level(QP_LOG_INFO);
}

static void test_ident_truncated(void **state) {
  qp_log_set_ident("0123456789012345678901234567890123456789");
  capture();
  qp_info("x");
  const char *out = captured();
  /* At most 31 bytes of the name are kept. */
  assert_int_equal(strncmp(out, "0123456789012345678901234567890[", 32), 0);
  qp_log_set_ident("unit");
}

static void test_long_and_multiline(void **state) {
  static char big[10000];
  memset(big, 'a', sizeof(big) - 1);
  capture();
  qp_info("%s", big);
  qp_info("two\nlines\n");
  const char *out = captured();
  const char *nl = strchr(out, '\n');
  assert_non_null(nl);
  size_t first = (size_t)(nl - out) + 1;
  assert_true(first <= 4096); /* fits one atomic pipe write */
  assert_memory_equal(nl - 3, "...", 3);
  assert_int_equal(strncmp(nl + 1, "unit[", 5), 0);
  assert_non_null(strstr(nl + 1, "] INFO: two lines\n"));
  assert_null(strchr(strchr(nl + 1, '\n') + 1, '\n'));
}

static void test_errno_kept(void **state) {
  capture();
  errno = ENOENT;
  qp_info("open: %m");
  assert_int_equal(errno, ENOENT);
  const char *out = captured();
  assert_non_null(strstr(out, "open: No such file or directory\n"));
}

/* Several processes logging long lines at once into one pipe: every line
 * read back must be whole. */
static void test_no_interleaving(void **state) {
  enum { KIDS = 4, LINES = 300, WIDTH = 1500 };
  int p[2];
  assert_int_equal(pipe(p), 0);
  pid_t kids[KIDS];
  for (int k = 0; k < KIDS; k++) {
    kids[k] = fork();
    assert_true(kids[k] >= 0);
    if (kids[k] == 0) {
      close(p[0]);
      dup2(p[1], STDERR_FILENO);
      char body[WIDTH + 1];
      memset(body, 'A' + k, WIDTH);
      body[WIDTH] = '\0';
      qp_log_set_ident("kid");
      for (int i = 0; i < LINES; i++)
        qp_info("%c%s", 'A' + k, body);
      _exit(0);
    }
  }
  close(p[1]);
  FILE *in = fdopen(p[0], "r");
  assert_non_null(in);
  static char line[8192];
  int count = 0;
  while (fgets(line, sizeof(line), in)) {
    char *body = strstr(line, "] INFO: ");
    assert_non_null(body);
    body += strlen("] INFO: ");
    char c = body[0];
    assert_true(c >= 'A' && c < 'A' + KIDS);
    size_t n = strspn(body, (char[]){c, '\0'});
    if (n != WIDTH + 1 || strcmp(body + n, "\n") != 0)
      fail_msg("line %d is mixed or cut (%zu of %c)", count, n, c);
    count++;
  }
  fclose(in);
  for (int k = 0; k < KIDS; k++) {
    int st;
    assert_int_equal(waitpid(kids[k], &st, 0), kids[k]);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
  }
  assert_int_equal(count, KIDS * LINES);
}

/* QPOOL_LOG is read at first use and beats qp_log_set_level: checked in a
 * fresh copy of this program (see main). */
static void test_env_override(void **state) {
  int p[2];
  assert_int_equal(pipe(p), 0);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    close(p[0]);
    dup2(p[1], STDERR_FILENO);
    setenv("QPOOL_LOG", "DEBUG", 1);
    execl("/proc/self/exe", "test_log", "--env-child", (char *)NULL);
    _exit(127);
  }
  close(p[1]);
  char buf[4096];
  size_t n = 0;
  ssize_t r;
  while ((r = read(p[0], buf + n, sizeof(buf) - 1 - n)) > 0)
    n += (size_t)r;
  buf[n] = '\0';
  close(p[0]);
  int st;
  assert_int_equal(waitpid(pid, &st, 0), pid);
  assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
  assert_non_null(strstr(buf, "child["));
  assert_non_null(strstr(buf, "] DEBUG: env wins\n"));
}

static int env_child(void) {
  qp_log_set_ident("child");
  qp_log_set_level(QP_LOG_ERROR); /* ignored: QPOOL_LOG=debug is set */
  qp_debug("env wins");
  return qp_log_enabled(QP_LOG_DEBUG) ? 0 : 1;
}

int main(int argc, char **argv) {
  if (argc > 1 && strcmp(argv[1], "--env-child") == 0)
    return env_child();
  unsetenv("QPOOL_LOG");
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_format),
      cmocka_unit_test(test_levels),
      cmocka_unit_test(test_ident_truncated),
      cmocka_unit_test(test_long_and_multiline),
      cmocka_unit_test(test_errno_kept),
      cmocka_unit_test(test_no_interleaving),
      cmocka_unit_test(test_env_override),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
