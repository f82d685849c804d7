/*
 * helper.h: the helper process (helper.c), forked by the master for work
 * that must run once for the whole server (active health checks).
 */
#ifndef PT_HELPER_H
#define PT_HELPER_H

#include "core.h"

#include <sys/types.h>

struct pt_cycle;

/* Whether some module wants a helper process for cycle c. */
int pt_helper_wanted(const struct pt_cycle *c);

/* Run the helper process for c until the master goes or asks it to. */
PT_NORETURN void pt_helper_run(struct pt_cycle *c, pid_t master);

#endif
