/*
 * log.h: the error log. One log per process, configured by the cycle:
 * a file (or stderr) and a level; lines below the level cost one compare.
 *
 *   pt_log(PT_LOG_ERR, errno, "open(\"%s\")", path);
 *
 * An errno argument other than 0 appends ": strerror (errno)", as OpenBSD's
 * log_warn does; pass 0 for messages about input (log_warnx).
 */
#ifndef PT_LOG_H
#define PT_LOG_H

#include "core.h"

enum {
	PT_LOG_DEBUG = 0,
	PT_LOG_INFO,
	PT_LOG_NOTICE,
	PT_LOG_WARN,
	PT_LOG_ERR,
	PT_LOG_CRIT,
};

struct pt_errlog {
	int fd;           /* -1: nowhere */
	int level;        /* lowest level written */
	const char *path; /* NULL for stderr */
};

/* The process's error log; the cycle points it at its configured log. */
extern struct pt_errlog *pt_log_cur;

/* Back to the built-in log (stderr), before the current one is freed. */
void pt_log_reset(void);

/* Prefix every line of this process with "title" (e.g. "worker 0"). */
void pt_log_set_role(const char *role);

void pt_log(int level, int err, const char *fmt, ...) PT_PRINTF(3, 4);
void pt_logv(int level, int err, const char *prefix, const char *fmt,
	     va_list ap);

#define pt_log_enabled(lvl) ((lvl) >= pt_log_cur->level)

/* Level by name ("debug" .. "crit"); -1 if unknown. */
int pt_log_level(const char *name);
extern const char *const pt_log_level_names[];

/* Open path for appending (created 0644); returns fd or -1 (errno set). */
int pt_log_open(const char *path);

/*
 * The same, and when running as root make uid (not (uid_t)-1) the file's
 * owner, so that a worker running as uid can reopen it. Only a regular
 * file with one name that path reaches without a symbolic link is given
 * away: whoever can write the log's directory must not be able to point
 * the name at a file of root's and have root hand it over.
 */
int pt_log_open_owned(const char *path, uid_t uid);

#endif
