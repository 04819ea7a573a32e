/* The check every request table at a process boundary runs. */
#include "shared/msg_rules.h"

#include <errno.h>

int qp_msg_rule_check(const struct qp_msg_rule *r, size_t index, int has_fd,
                      unsigned state, unsigned enabled, uint64_t *seen,
                      const char **why) {
  const char *w = NULL;
  if (!r)
    w = "of an unknown type";
  else if ((r->flags & QP_MSG_PROBES) && !(enabled & QP_MSG_PROBES))
    w = "not enabled here";
  else if (!(r->states & state))
    w = "not allowed in this state";
  else if (r->fd == QP_FD_MUST && !has_fd)
    w = "without its file descriptor";
  else if (r->fd == QP_FD_NONE && has_fd)
    w = "with a file descriptor";
  else if ((r->flags & QP_MSG_ONCE) && index < 64 && seen &&
           (*seen & (UINT64_C(1) << index)))
    w = "a second time";
  if (w) {
    if (why)
      *why = w;
    return -EPROTO;
  }
  if (r->flags & QP_MSG_ONCE && index < 64 && seen)
    *seen |= UINT64_C(1) << index;
  return 0;
}
