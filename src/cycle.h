/*
 * cycle.h: a cycle is one loaded configuration and everything built from
 * it: the modules' confs, the listening sockets, the error log, the shared
 * memory zones. The master builds a new cycle on every reload and keeps
 * the old one only if the new one fails; workers inherit the cycle they
 * were forked with and never reload in place.
 */
#ifndef PT_CYCLE_H
#define PT_CYCLE_H

#include "core.h"
#include "log.h"
#include "module.h"

#include <sys/types.h>

struct pt_listener;
struct pt_shm_zone;
struct pt_stats;
struct pt_worker;

/* Settings of the process model (module "core"). */
struct pt_core_conf {
	int64_t worker_processes; /* PT_WORKERS_AUTO ("auto", one per CPU)
				   * until resolved at load */
	int64_t worker_connections;
	int64_t worker_rlimit_nofile;
	int64_t worker_shutdown_timeout; /* ms; 0: wait forever */
	const char *user;
	const char *group;
	const char *pid_file;
	const char *error_log;
	int log_level;
	int daemon;
	/* resolved */
	int pid_file_set; /* given in the config (else the built-in default) */
	uid_t uid;
	gid_t gid;
	int switch_user; /* the master is root: workers change to uid/gid */
};

#define PT_WORKERS_AUTO (-2)

struct pt_cycle {
	struct pt_pool *pool;
	const char *conf_file; /* as given */
	const char *conf_dir;  /* for relative @include and config files */
	const char *prefix;    /* for relative runtime paths */
	unsigned generation;   /* 1 for the first config, +1 per reload */

	void **main_conf; /* per module, indexed like pt_modules[] */
	void **srv_conf;  /* main-level server confs */
	void **loc_conf;  /* main-level location confs */
	struct pt_core_conf *core;

	struct pt_listener *listeners;
	unsigned nlisteners;

	struct pt_errlog errlog;
	int log_stderr; /* -F: the error log is stderr */

	struct pt_shm_zone *zones;
	struct pt_stats *stats; /* server-wide counters, in zone "core" */

	/* set in a worker */
	struct pt_worker *worker_ctx;
};

/* Options of a load, from the command line. */
struct pt_cycle_opts {
	const char *conf_file;
	const char *prefix;
	int to_stderr; /* report config errors on stderr */
	int log_stderr;
	int dump;      /* -T: print the effective config */
	int test;      /* -t/-T: do not open logs or sockets */
};

/*
 * Load and check a config into a new cycle. Logs and listening sockets are
 * not opened (see pt_cycle_open()). NULL on any error, already reported.
 */
struct pt_cycle *pt_cycle_load(const struct pt_cycle_opts *o,
			       unsigned generation);

/*
 * Open what the cycle needs from the system: the error log, the listening
 * sockets (taking over matching ones from old, or from those inherited
 * through PORTIER_INHERIT) and the shared memory zones. PT_OK or PT_ERROR.
 */
int pt_cycle_open(struct pt_cycle *c, struct pt_cycle *old);

/* Free a cycle; its sockets not taken over by another cycle are closed. */
void pt_cycle_free(struct pt_cycle *c);

/* Reopen the cycle's error log (USR1). */
void pt_cycle_reopen_errlog(struct pt_cycle *c);

/* Point the process's error log at the cycle's (and stderr, after
 * pt_cycle_redirect_stderr()). */
void pt_cycle_use_log(struct pt_cycle *c);

/* From now on, in this process and the ones it forks, stderr is the
 * error log of the cycle in use: made so now, and again on every
 * pt_cycle_use_log() and pt_cycle_reopen_errlog(). For a daemon. */
void pt_cycle_redirect_stderr(struct pt_cycle *c);

/* Number of workers the cycle asks for, "auto" resolved. */
unsigned pt_cycle_workers(const struct pt_cycle *c);

#endif
