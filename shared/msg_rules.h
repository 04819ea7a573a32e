/* Request tables at a process boundary, in the manner of OpenSSH's
 * monitor: for each message type a receiver takes, whether it carries an
 * fd, the receiver's states in which it is served and whether it may come
 * only once. Each side keeps its table next to its handlers (worker/main.c
 * for what qpoold sends, supervisor/workers.c for what a worker sends,
 * supervisor/control.c and worker/session.c for applications); a message
 * the table does not allow ends the sender's channel (fail closed). */
#ifndef QP_SHARED_MSG_RULES_H
#define QP_SHARED_MSG_RULES_H

#include <stddef.h>
#include <stdint.h>

enum qp_fd_rule {
  QP_FD_NONE, /* never carries an fd */
  QP_FD_MAY,  /* may carry one (the handler checks when) */
  QP_FD_MUST, /* always carries one */
};

#define QP_MSG_ONCE 1u   /* at most once per channel */
#define QP_MSG_PROBES 2u /* test builds' sandbox probes: only when enabled */

struct qp_msg_rule {
  int type;         /* the message type (enum MsgType / CtlOp) */
  const char *name; /* for messages: "HandOff" */
  enum qp_fd_rule fd;
  unsigned states; /* bit set of the receiver's states that serve it */
  unsigned flags;  /* QP_MSG_* */
};

/* Whether a message of r's type, with or without an fd, is served in
 * state (one bit of r->states' set); enabled: the QP_MSG_PROBES-like flags
 * this receiver allows; seen: one bit per table index, updated for ONCE
 * entries. Returns 0, or -EPROTO with why ("HandOff before ConfigDone" is
 * the caller's wording: here "not in this state", "without its fd", "with
 * an fd", "a second time", "not enabled"). r NULL: "unknown type". */
int qp_msg_rule_check(const struct qp_msg_rule *r, size_t index, int has_fd,
                      unsigned state, unsigned enabled, uint64_t *seen,
                      const char **why);

#endif
