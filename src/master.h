/*
 * master.h: the master process (DESIGN.md section 1): it never serves
 * traffic; it holds the listening sockets and the cycle, forks and reaps
 * workers, and turns signals into reloads, upgrades and shutdowns.
 */
#ifndef PT_MASTER_H
#define PT_MASTER_H

#include "core.h"
#include "cycle.h"

struct pt_master_opts {
	struct pt_cycle_opts cycle;
	char **argv;      /* a copy, for the upgrade's execve */
	const char *exe;  /* absolute path of the binary as started */
	int foreground;   /* -F */
	pid_t upgraded_from; /* exec'ed by this master's USR2; else 0 */
};

/* Run the master with a loaded, opened cycle; returns the exit status. */
int pt_master_run(struct pt_cycle *cycle, const struct pt_master_opts *o);

#endif
