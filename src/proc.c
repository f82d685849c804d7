/*
 * proc.c: titles, daemon, pid file, privileges.
 *
 * Titles: Linux shows /proc/PID/cmdline, which is the argv area. After
 * moving environ elsewhere, argv[0] .. the end of the old environment is
 * one contiguous area we may overwrite (the technique of nginx and
 * OpenBSD's setproctitle emulations). prctl(PR_SET_NAME) sets the short
 * name that top shows.
 */
#include "core.h"
#include "log.h"
#include "proc.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stdarg.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

extern char **environ;

static char *title_start, *title_end;
static char **title_env; /* our copy of the environment */

void
pt_proc_title_init(int argc, char **argv)
{
	char *end = argv[0] + strlen(argv[0]) + 1, *block;
	size_t n = 0, bytes = 0;
	char **env;

	for (int i = 1; i < argc; i++)
		if (argv[i] == end)
			end = argv[i] + strlen(argv[i]) + 1;
	while (environ[n] != NULL)
		bytes += strlen(environ[n++]) + 1;
	/* the copy is one block kept in title_env: unsetenv() may drop an
	 * entry from environ, but its memory stays owned by us */
	env = malloc((n + 1) * sizeof(char *) + bytes);
	if (env == NULL)
		return; /* titles stay as they are */
	block = (char *)(env + n + 1);
	for (size_t i = 0; i < n; i++) {
		size_t len = strlen(environ[i]) + 1;
		if (environ[i] == end)
			end = environ[i] + len;
		memcpy(block, environ[i], len);
		env[i] = block;
		block += len;
	}
	env[n] = NULL;
	title_env = env;
	environ = env;
	title_start = argv[0];
	title_end = end;
}

void
pt_proc_set_title(const char *fmt, ...)
{
	char buf[256];
	va_list ap;
	size_t len, room;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	prctl(PR_SET_NAME, "portier", 0, 0, 0);
	if (title_start == NULL)
		return;
	room = (size_t)(title_end - title_start);
	len = PT_MIN(strlen(buf), room - 1);
	memcpy(title_start, buf, len);
	memset(title_start + len, '\0', room - len);
}

int
pt_proc_daemonize(void)
{
	int fd;

	switch (fork()) {
	case -1:
		pt_log(PT_LOG_CRIT, errno, "fork() failed");
		return PT_ERROR;
	case 0:
		break;
	default:
		_exit(0);
	}
	if (setsid() < 0) {
		pt_log(PT_LOG_CRIT, errno, "setsid() failed");
		return PT_ERROR;
	}
	umask(022);
	fd = open("/dev/null", O_RDWR);
	if (fd < 0) {
		pt_log(PT_LOG_CRIT, errno, "open(\"/dev/null\") failed");
		return PT_ERROR;
	}
	dup2(fd, STDIN_FILENO);
	dup2(fd, STDOUT_FILENO);
	if (fd > STDERR_FILENO)
		close(fd);
	return PT_OK;
}

int
pt_pid_write(const char *path, pid_t pid)
{
	char tmp[4096], buf[32];
	int fd, n;

	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= sizeof(tmp))
		return PT_ERROR;
	/* we are root: a name planted in a directory others may write must
	 * not lead us to write (or rename a link to) another file */
	unlink(tmp);
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
		  0644);
	if (fd < 0) {
		pt_log(PT_LOG_CRIT, errno, "open(\"%s\") failed", tmp);
		return PT_ERROR;
	}
	n = snprintf(buf, sizeof(buf), "%d\n", (int)pid);
	if (write(fd, buf, (size_t)n) != n || close(fd) != 0 ||
	    rename(tmp, path) != 0) {
		pt_log(PT_LOG_CRIT, errno, "writing pid file \"%s\" failed",
		       path);
		unlink(tmp);
		return PT_ERROR;
	}
	return PT_OK;
}

pid_t
pt_pid_read(const char *path)
{
	char buf[32];
	ssize_t n;
	long v;
	char *end;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0) {
		errno = EINVAL;
		return -1;
	}
	buf[n] = '\0';
	v = strtol(buf, &end, 10);
	if (v <= 1 || (*end != '\n' && *end != '\0')) {
		errno = EINVAL;
		return -1;
	}
	return (pid_t)v;
}

void
pt_pid_remove(const char *path, pid_t pid)
{
	if (pt_pid_read(path) == pid)
		unlink(path);
}

int
pt_proc_drop_privileges(uid_t uid, gid_t gid, const char *user)
{
	if (setgid(gid) < 0) {
		pt_log(PT_LOG_CRIT, errno, "setgid(%d) failed", (int)gid);
		return PT_ERROR;
	}
	if (initgroups(user, gid) < 0) {
		pt_log(PT_LOG_CRIT, errno, "initgroups(%s) failed", user);
		return PT_ERROR;
	}
	if (setuid(uid) < 0) {
		pt_log(PT_LOG_CRIT, errno, "setuid(%d) failed", (int)uid);
		return PT_ERROR;
	}
	/*
	 * No PR_SET_DUMPABLE here: a dumpable worker could be ptrace'd by
	 * any other process of the same (shared, often "nobody") user, and
	 * it holds descriptors root opened.
	 */
	return PT_OK;
}

int
pt_proc_child_signals(pid_t master)
{
	static const int sigs[] = { SIGQUIT, SIGTERM,  SIGINT,	 SIGUSR1,
				    SIGHUP,  SIGUSR2,  SIGWINCH, SIGCHLD };
	sigset_t set;
	int fd;

	sigemptyset(&set);
	for (unsigned i = 0; i < PT_ARRAY_SIZE(sigs); i++)
		sigaddset(&set, sigs[i]);
	sigprocmask(SIG_BLOCK, &set, NULL);
	fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	if (fd < 0)
		return -1;
	/* the master going away must not leave orphans serving; if it
	 * went before prctl() took effect, quit as the signal would have
	 * made us (it is blocked: the signalfd reads it) */
	prctl(PR_SET_PDEATHSIG, SIGQUIT, 0, 0, 0);
	if (getppid() != master)
		kill(getpid(), SIGQUIT);
	return fd;
}
