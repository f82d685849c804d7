/*
 * log.c: the error log. Lines are formatted into one stack buffer and
 * written with a single write(2), so lines from several processes sharing
 * the file (opened O_APPEND) never interleave.
 */
#include "core.h"
#include "log.h"
#include "ptime.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

const char *const pt_log_level_names[] = { "debug", "info",  "notice",
					   "warn",  "error", "crit", NULL };

static struct pt_errlog log_stderr = { 2, PT_LOG_NOTICE, NULL };
struct pt_errlog *pt_log_cur = &log_stderr;
static char log_role[32] = "";

void
pt_log_reset(void)
{
	pt_log_cur = &log_stderr;
}

void
pt_log_set_role(const char *role)
{
	snprintf(log_role, sizeof(log_role), "%s", role);
}

int
pt_log_level(const char *name)
{
	for (int i = 0; pt_log_level_names[i] != NULL; i++)
		if (strcmp(name, pt_log_level_names[i]) == 0)
			return i;
	return -1;
}

int
pt_log_open(const char *path)
{
	return open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
}

int
pt_log_open_owned(const char *path, uid_t uid)
{
	struct stat st;
	int fd = open(path,
		      O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW,
		      0644);

	/* a symbolic link (to /dev/stderr, say) is followed, but what it
	 * points at is never given away */
	if (fd < 0)
		return errno == ELOOP ? pt_log_open(path) : -1;
	if (uid != (uid_t)-1 && geteuid() == 0 && fstat(fd, &st) == 0 &&
	    S_ISREG(st.st_mode) && st.st_nlink == 1 && st.st_uid != uid &&
	    fchown(fd, uid, (gid_t)-1) < 0)
		pt_log(PT_LOG_WARN, errno, "chown(\"%s\") failed", path);
	return fd;
}

void
pt_logv(int level, int err, const char *prefix, const char *fmt, va_list ap)
{
	char line[2048];
	size_t n;
	int r;

	if (level < pt_log_cur->level || pt_log_cur->fd < 0)
		return;
	if (pt_now.log_time[0] == '\0')
		pt_time_update();
	r = snprintf(line, sizeof(line), "%s [%s] %d%s%s: %s",
		     pt_now.log_time, pt_log_level_names[level], (int)getpid(),
		     log_role[0] ? " " : "", log_role, prefix ? prefix : "");
	n = r < 0 ? 0 : PT_MIN((size_t)r, sizeof(line) - 1);
	r = vsnprintf(line + n, sizeof(line) - n, fmt, ap);
	n = r < 0 ? n : PT_MIN(n + (size_t)r, sizeof(line) - 1);
	if (err != 0) {
		r = snprintf(line + n, sizeof(line) - n, ": %s (%d)",
			     strerror(err), err);
		n = r < 0 ? n : PT_MIN(n + (size_t)r, sizeof(line) - 1);
	}
	if (n >= sizeof(line) - 1)
		n = sizeof(line) - 2; /* truncated: keep the newline */
	line[n++] = '\n';
	/* a failed log write has nowhere to be reported */
	while (write(pt_log_cur->fd, line, n) < 0 && errno == EINTR)
		;
}

void
pt_log(int level, int err, const char *fmt, ...)
{
	va_list ap;

	if (level < pt_log_cur->level)
		return;
	va_start(ap, fmt);
	pt_logv(level, err, NULL, fmt, ap);
	va_end(ap);
}
