/*
 * proc.h: process-level helpers: the title shown by ps, daemonizing, the
 * pid file, dropping privileges.
 */
#ifndef PT_PROC_H
#define PT_PROC_H

#include "core.h"

#include <sys/types.h>

/*
 * Prepare to set titles: moves the environment out of the argv area so
 * the whole area can hold the title. Call once, first thing in main().
 */
void pt_proc_title_init(int argc, char **argv);
void pt_proc_set_title(const char *fmt, ...) PT_PRINTF(1, 2);

/* Fork into the background, new session, stdio on /dev/null. */
int pt_proc_daemonize(void);

/* Write pid to path atomically (temp file + rename). PT_OK/PT_ERROR. */
int pt_pid_write(const char *path, pid_t pid);
/* Read a pid from path; -1 on error (errno set, or EINVAL). */
pid_t pt_pid_read(const char *path);
/* Remove path if it still holds pid. */
void pt_pid_remove(const char *path, pid_t pid);

/* setgid, initgroups, setuid: after this the process can not regain
 * root. PT_OK or PT_ERROR (logged). */
/*
 * In a child of the master (worker, helper): block the signals the
 * master sends and return a signalfd that reads them (-1 on error); the
 * master's death arrives as SIGQUIT.
 */
int pt_proc_child_signals(pid_t master);

int pt_proc_drop_privileges(uid_t uid, gid_t gid, const char *user);

#endif
