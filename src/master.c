/*
 * master.c: the master process loop.
 *
 * Signals are blocked and read from a signalfd, so every handler runs in
 * the loop with no async-signal-safety concerns. Children are tracked in
 * a table: each worker has a slot (its index, which picks its reuseport
 * socket) and the generation of the cycle it runs. A reload starts a new
 * generation and sends QUIT to the old one; a worker that dies without
 * being asked is respawned in the same slot, with a growing delay when it
 * keeps dying young (no fork storm).
 *
 * Binary upgrade (USR2): the pid file is renamed to <pid_file>.oldbin and
 * the binary at the path we were started from is executed with the
 * listening sockets open and listed in PORTIER_INHERIT. The new master is
 * our child: if it exits while we still run, the rename is undone, so an
 * operator's rollback (HUP old, QUIT new) leaves the pid file as before.
 */
#include "core.h"
#include "cycle.h"
#include "listen.h"
#include "log.h"
#include "master.h"
#include "proc.h"
#include "stats.h"
#include "ptime.h"
#include "helper.h"
#include "worker.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MASTER_MAX_CHILDREN 2048
#define MASTER_KILL_AFTER_MS 5000
#define MASTER_YOUNG_MS 2000 /* a worker dying sooner is "crashing" */
#define MASTER_BACKOFF_MAX_MS 60000

struct master_child {
	pid_t pid;
	int slot;
	unsigned generation;
	unsigned exiting : 1; /* asked to quit: do not respawn */
	int64_t started;
};

struct master_slot {
	unsigned crashes;   /* consecutive early deaths */
	int64_t respawn_at; /* 0: nothing pending */
	unsigned generation;
};

struct master {
	const struct pt_master_opts *o;
	struct pt_cycle *cycle;
	int sigfd;
	struct master_child children[MASTER_MAX_CHILDREN];
	unsigned nchildren;
	struct master_slot *slots;
	unsigned nslots;
	pid_t new_binary;
	int64_t helper_respawn_at; /* 0: nothing pending */
	int64_t kill_at;      /* fast shutdown: SIGKILL stragglers then */
	unsigned quitting : 1;
	unsigned terminating : 1;
	unsigned no_workers : 1; /* after WINCH */
	unsigned retire_old : 1; /* reloaded: QUIT the old generation when a
				  * new worker has started */
	unsigned pid_written : 1;
};

static int64_t
master_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static char *
master_oldbin(const char *pid_file)
{
	size_t n = strlen(pid_file) + sizeof(".oldbin");
	char *p = malloc(n);

	if (p != NULL)
		snprintf(p, n, "%s.oldbin", pid_file);
	return p;
}

static int
master_slots(struct master *m, unsigned n)
{
	struct master_slot *s;

	if (n <= m->nslots)
		return PT_OK;
	s = realloc(m->slots, n * sizeof(*s));
	if (s == NULL)
		return PT_ERROR;
	memset(s + m->nslots, 0, (n - m->nslots) * sizeof(*s));
	m->slots = s;
	m->nslots = n;
	return PT_OK;
}

#define MASTER_HELPER (-1) /* the slot of the helper process */

static void
master_child_main(struct master *m, int slot, pid_t master)
{
	close(m->sigfd);
	if (slot == MASTER_HELPER)
		pt_helper_run(m->cycle, master);
	pt_worker_run(m->cycle, slot, master);
}

/* Flags of master_signal_workers(). */
#define SIGW_MARK 1   /* they are asked to leave: do not respawn them */
#define SIGW_OTHERS 2 /* every generation but the one given */

static void master_signal_workers(struct master *m, int sig,
				  unsigned generation, int flags);

static int
master_spawn(struct master *m, int slot)
{
	pid_t pid, self = getpid();

	if (m->nchildren == MASTER_MAX_CHILDREN) {
		pt_log(PT_LOG_CRIT, 0, "too many children");
		return PT_ERROR;
	}
	pid = fork();
	if (pid < 0) {
		pt_log(PT_LOG_CRIT, errno, "fork() of worker %d failed", slot);
		return PT_ERROR;
	}
	if (pid == 0)
		master_child_main(m, slot, self);
	m->children[m->nchildren++] = (struct master_child){
		.pid = pid,
		.slot = slot,
		.generation = m->cycle->generation,
		.started = master_now(),
	};
	if (slot == MASTER_HELPER) {
		m->helper_respawn_at = 0;
		pt_log(PT_LOG_NOTICE, 0,
		       "started the helper process (pid %d, generation %u)",
		       (int)pid, m->cycle->generation);
		return PT_OK;
	}
	m->slots[slot].generation = m->cycle->generation;
	m->slots[slot].respawn_at = 0;
	if (m->retire_old) {
		m->retire_old = 0;
		master_signal_workers(m, SIGQUIT, m->cycle->generation,
				      SIGW_MARK | SIGW_OTHERS);
	}
	pt_log(PT_LOG_NOTICE, 0, "started worker %d (pid %d, generation %u)",
	       slot, (int)pid, m->cycle->generation);
	return PT_OK;
}

static int
master_start_workers(struct master *m)
{
	unsigned n = pt_cycle_workers(m->cycle);
	int rc = PT_OK;

	if (master_slots(m, n) != PT_OK)
		return PT_ERROR;
	for (unsigned i = 0; i < n; i++) {
		m->slots[i].crashes = 0;
		/* a slot that could not fork is retried like a respawn */
		if (master_spawn(m, (int)i) != PT_OK) {
			m->slots[i].respawn_at = master_now() + 1000;
			rc = PT_ERROR;
		}
	}
	if (pt_helper_wanted(m->cycle) && master_spawn(m, MASTER_HELPER) != PT_OK)
		m->helper_respawn_at = master_now() + 1000;
	return rc;
}

/* Signal the workers of a generation (0: all), or of all but one. */
static void
master_signal_workers(struct master *m, int sig, unsigned generation,
		      int flags)
{
	for (unsigned i = 0; i < m->nchildren; i++) {
		struct master_child *ch = &m->children[i];
		int same = ch->generation == generation;
		if ((flags & SIGW_OTHERS) ? same : generation != 0 && !same)
			continue;
		if (flags & SIGW_MARK)
			ch->exiting = 1;
		if (kill(ch->pid, sig) < 0 && errno != ESRCH)
			pt_log(PT_LOG_ERR, errno, "kill(%d, %d) failed",
			       (int)ch->pid, sig);
	}
}

/* The helper process left: started again (after a second) unless it
 * was asked to leave or belongs to an older generation. */
static void
master_helper_exited(struct master *m, const struct master_child *ch,
		     int status)
{
	int asked = ch->exiting || m->quitting || m->terminating ||
		    m->no_workers || ch->generation != m->cycle->generation;

	if (WIFSIGNALED(status))
		pt_log(asked ? PT_LOG_NOTICE : PT_LOG_CRIT, 0,
		       "helper process (pid %d) exited on signal %d",
		       (int)ch->pid, WTERMSIG(status));
	else
		pt_log(WEXITSTATUS(status) ? PT_LOG_ERR : PT_LOG_NOTICE, 0,
		       "helper process (pid %d) exited with code %d",
		       (int)ch->pid, WEXITSTATUS(status));
	if (!asked && pt_helper_wanted(m->cycle))
		m->helper_respawn_at = master_now() + 1000;
}

static void
master_child_exited(struct master *m, pid_t pid, int status)
{
	for (unsigned i = 0; i < m->nchildren; i++) {
		struct master_child ch = m->children[i];
		struct master_slot *s;
		int64_t age, delay;

		if (ch.pid != pid)
			continue;
		/* its connections are gone, its totals stay */
		pt_stats_retire(m->cycle, pid);
		m->children[i] = m->children[--m->nchildren];
		if (ch.slot == MASTER_HELPER) {
			master_helper_exited(m, &ch, status);
			return;
		}
		if (WIFSIGNALED(status))
			pt_log(ch.exiting ? PT_LOG_NOTICE : PT_LOG_CRIT,
			       0, "worker %d (pid %d) exited on signal %d%s",
			       ch.slot, (int)pid, WTERMSIG(status),
			       WCOREDUMP(status) ? " (core dumped)" : "");
		else
			pt_log(WEXITSTATUS(status) ? PT_LOG_ERR
						   : PT_LOG_NOTICE,
			       0, "worker %d (pid %d) exited with code %d",
			       ch.slot, (int)pid, WEXITSTATUS(status));
		if (ch.exiting || m->quitting || m->terminating ||
		    m->no_workers || ch.generation != m->cycle->generation ||
		    (unsigned)ch.slot >= pt_cycle_workers(m->cycle))
			return;
		if (WIFEXITED(status) && WEXITSTATUS(status) == 2) {
			pt_log(PT_LOG_CRIT, 0,
			       "worker %d failed to start; not respawning "
			       "(fix the cause and reload)",
			       ch.slot);
			return;
		}
		s = &m->slots[ch.slot];
		age = master_now() - ch.started;
		s->crashes = age < MASTER_YOUNG_MS ? s->crashes + 1 : 0;
		delay = s->crashes == 0 ? 0
					: PT_MIN((int64_t)1000 << PT_MIN(
							 s->crashes - 1, 6u),
						 MASTER_BACKOFF_MAX_MS);
		if (delay > 0)
			pt_log(PT_LOG_ERR, 0,
			       "worker %d keeps dying (%u in a row); respawning "
			       "in %lld ms",
			       ch.slot, s->crashes, (long long)delay);
		s->respawn_at = master_now() + delay;
		return;
	}
	if (pid == m->new_binary) {
		const char *pidf = m->cycle->core->pid_file;
		char *old = master_oldbin(pidf);
		pt_log(PT_LOG_NOTICE, 0,
		       "new binary (pid %d) exited %s %d; restoring the pid "
		       "file",
		       (int)pid, WIFSIGNALED(status) ? "on signal" : "with code",
		       WIFSIGNALED(status) ? WTERMSIG(status)
					   : WEXITSTATUS(status));
		m->new_binary = 0;
		if (old != NULL && m->pid_written && rename(old, pidf) < 0)
			pt_log(PT_LOG_ERR, errno, "rename(\"%s\") failed", old);
		free(old);
		/* our workers were stopped (WINCH) for the new binary, which
		 * is gone: without them nobody would serve (nginx does this
		 * too) */
		if (m->no_workers && !m->quitting && !m->terminating) {
			pt_log(PT_LOG_NOTICE, 0, "starting workers again");
			m->no_workers = 0;
			master_start_workers(m);
		}
	}
}

static void
master_reap(struct master *m)
{
	int status;
	pid_t pid;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
		master_child_exited(m, pid, status);
}

static void
master_respawn_due(struct master *m)
{
	int64_t now = master_now();

	if (m->helper_respawn_at != 0 && m->helper_respawn_at <= now) {
		m->helper_respawn_at = 0;
		if (!m->quitting && !m->terminating && !m->no_workers &&
		    master_spawn(m, MASTER_HELPER) != PT_OK)
			m->helper_respawn_at = now + 1000;
	}

	for (unsigned i = 0; i < m->nslots; i++) {
		struct master_slot *s = &m->slots[i];
		if (s->respawn_at == 0 || s->respawn_at > now)
			continue;
		if (m->quitting || m->terminating || m->no_workers ||
		    i >= pt_cycle_workers(m->cycle)) {
			s->respawn_at = 0;
			continue;
		}
		/* fork failed (it logged why): try again in a while, not in
		 * a busy loop */
		if (master_spawn(m, (int)i) != PT_OK)
			s->respawn_at = now + 1000;
	}
}

/*
 * The reload changed pid_file: write the new one and remove the old, so
 * that -s and the exit find it; with -F, set or unset it (there is a pid
 * file only when the config names one). Not while a new binary runs: the
 * pid file is its own then, ours is <pid_file>.oldbin.
 */
static void
master_pid_moved(struct master *m, struct pt_cycle *old, struct pt_cycle *nc)
{
	const char *from = old->core->pid_file, *to = nc->core->pid_file;
	int want = !m->o->foreground || nc->core->pid_file_set;

	if (m->new_binary > 0)
		return;
	if (m->pid_written && !want) {
		pt_pid_remove(from, getpid());
		m->pid_written = 0;
	} else if (!m->pid_written && want) {
		m->pid_written = pt_pid_write(to, getpid()) == PT_OK;
	} else if (m->pid_written && strcmp(from, to) != 0 &&
		   pt_pid_write(to, getpid()) == PT_OK) {
		pt_pid_remove(from, getpid());
	}
}

static void
master_reload(struct master *m)
{
	struct pt_cycle_opts o;
	struct pt_cycle *nc;

	if (m->no_workers && m->new_binary > 0) {
		/* rollback of an upgrade: same config, workers again */
		pt_log(PT_LOG_NOTICE, 0,
		       "starting workers again with the current config");
		m->no_workers = 0;
		master_start_workers(m);
		return;
	}
	pt_log(PT_LOG_NOTICE, 0, "reloading %s", m->o->cycle.conf_file);
	/* at startup config errors go to the terminal; now the operator
	 * reads them in the error log (which -F points at stderr) */
	o = m->o->cycle;
	o.to_stderr = 0;
	nc = pt_cycle_load(&o, m->cycle->generation + 1);
	if (nc == NULL) {
		pt_log(PT_LOG_ERR, 0,
		       "reload failed: keeping the current configuration");
		return;
	}
	if (pt_cycle_open(nc, m->cycle) != PT_OK) {
		pt_log(PT_LOG_ERR, 0,
		       "reload failed: keeping the current configuration");
		pt_cycle_free(nc);
		return;
	}
	pt_cycle_use_log(nc);
	master_pid_moved(m, m->cycle, nc);
	pt_cycle_free(m->cycle);
	m->cycle = nc;
	m->no_workers = 0;
	/* the old generation retires once a new worker runs (master_spawn):
	 * if no fork succeeds now, the old workers keep serving meanwhile */
	m->retire_old = 1;
	if (master_start_workers(m) != PT_OK)
		pt_log(PT_LOG_CRIT, 0, "not every new worker started");
	pt_log(PT_LOG_NOTICE, 0, "configuration generation %u is live",
	       nc->generation);
}

static void
master_exec_new(struct master *m)
{
	char *env = pt_listen_inherit_env(m->cycle);
	sigset_t none;

	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	close(m->sigfd);
	if (env == NULL || putenv(env) != 0)
		_exit(1);
	execv(m->o->exe, m->o->argv);
	pt_log(PT_LOG_CRIT, errno, "execv(\"%s\") failed", m->o->exe);
	_exit(1);
}

static void
master_upgrade(struct master *m)
{
	const char *pidf = m->cycle->core->pid_file;
	char *old;
	pid_t pid;

	if (m->new_binary > 0) {
		pt_log(PT_LOG_WARN, 0,
		       "upgrade refused: new binary %d is already running",
		       (int)m->new_binary);
		return;
	}
	/*
	 * We are the new binary and the old master still runs (it is our
	 * parent until it exits): renaming the pid file now would overwrite
	 * its <pid_file>.oldbin and lose the way back (nginx refuses too).
	 */
	if (m->o->upgraded_from > 0 && getppid() == m->o->upgraded_from) {
		pt_log(PT_LOG_WARN, 0,
		       "upgrade refused: the old master (pid %d) still runs; "
		       "QUIT it first",
		       (int)m->o->upgraded_from);
		return;
	}
	old = master_oldbin(pidf);
	if (old == NULL)
		return;
	if (m->pid_written && rename(pidf, old) < 0) {
		pt_log(PT_LOG_ERR, errno, "rename(\"%s\", \"%s\") failed", pidf,
		       old);
		free(old);
		return;
	}
	pid = fork();
	if (pid == 0)
		master_exec_new(m);
	if (pid < 0) {
		pt_log(PT_LOG_CRIT, errno, "fork() for the upgrade failed");
		if (m->pid_written)
			rename(old, pidf);
		free(old);
		return;
	}
	free(old);
	m->new_binary = pid;
	pt_log(PT_LOG_NOTICE, 0, "started new binary %s (pid %d)", m->o->exe,
	       (int)pid);
}

static void
master_reopen(struct master *m)
{
	pt_log(PT_LOG_NOTICE, 0, "reopening logs");
	pt_cycle_reopen_errlog(m->cycle);
	for (unsigned i = 0; pt_modules[i] != NULL; i++)
		if (pt_modules[i]->reopen != NULL)
			pt_modules[i]->reopen(m->cycle);
	master_signal_workers(m, SIGUSR1, m->cycle->generation, 0);
}

/*
 * Shutting down: let go of the listening sockets, as the workers do, so
 * that once they are all closed a new connection is refused at once
 * instead of waiting in a backlog nobody will accept from. A new binary
 * started by an upgrade holds its own descriptors of the same sockets.
 */
static void
master_close_listeners(struct master *m)
{
	for (unsigned i = 0; i < m->cycle->nlisteners; i++) {
		struct pt_listener *ls = &m->cycle->listeners[i];
		if (ls->io.fd >= 0) {
			close(ls->io.fd);
			ls->io.fd = -1;
		}
	}
}

/* code: the signal's si_code (SI_USER from kill(2), SI_KERNEL from a
 * terminal, ...) */
static void
master_signal(struct master *m, int sig, int code)
{
	switch (sig) {
	case SIGTERM:
	case SIGINT:
		if (!m->terminating) {
			pt_log(PT_LOG_NOTICE, 0, "fast shutdown");
			m->terminating = 1;
			m->kill_at = master_now() + MASTER_KILL_AFTER_MS;
			master_signal_workers(m, SIGTERM, 0, SIGW_MARK);
			master_close_listeners(m);
		}
		break;
	case SIGQUIT:
		if (!m->quitting) {
			pt_log(PT_LOG_NOTICE, 0, "graceful shutdown");
			m->quitting = 1;
			master_signal_workers(m, SIGQUIT, 0, SIGW_MARK);
			master_close_listeners(m);
		}
		break;
	case SIGHUP:
		if (!m->quitting && !m->terminating)
			master_reload(m);
		break;
	case SIGUSR1:
		master_reopen(m);
		break;
	case SIGUSR2:
		if (!m->quitting && !m->terminating)
			master_upgrade(m);
		break;
	case SIGWINCH:
		/* a terminal whose window is resized sends WINCH to its
		 * foreground process group (-F or daemon = false in a
		 * terminal, docker run -t): not an operator's request */
		if (code == SI_KERNEL) {
			pt_log(PT_LOG_INFO, 0,
			       "WINCH from a terminal: ignored");
			break;
		}
		pt_log(PT_LOG_NOTICE, 0, "stopping workers gracefully (WINCH)");
		m->no_workers = 1;
		master_signal_workers(m, SIGQUIT, 0, SIGW_MARK);
		break;
	case SIGCHLD:
		master_reap(m);
		break;
	default:
		break;
	}
}

static int64_t
master_wait_ms(struct master *m)
{
	int64_t now = master_now(), wait = -1;

	for (unsigned i = 0; i < m->nslots; i++) {
		int64_t t = m->slots[i].respawn_at;
		if (t != 0 && (wait < 0 || t - now < wait))
			wait = PT_MAX(t - now, 0);
	}
	if (m->helper_respawn_at != 0 &&
	    (wait < 0 || m->helper_respawn_at - now < wait))
		wait = PT_MAX(m->helper_respawn_at - now, 0);
	if (m->terminating) {
		int64_t t = PT_MAX(m->kill_at - now, 0);
		if (wait < 0 || t < wait)
			wait = t;
	}
	return wait;
}

static void
master_loop(struct master *m)
{
	for (;;) {
		struct pollfd pfd = { m->sigfd, POLLIN, 0 };
		struct signalfd_siginfo si;
		int64_t wait = master_wait_ms(m);

		if (poll(&pfd, 1, wait < 0 ? -1 : (int)PT_MIN(wait, INT_MAX)) <
			    0 &&
		    errno != EINTR)
			pt_log(PT_LOG_CRIT, errno, "poll() failed");
		pt_time_update();
		while (read(m->sigfd, &si, sizeof(si)) == sizeof(si))
			master_signal(m, (int)si.ssi_signo, si.ssi_code);
		master_reap(m);
		master_respawn_due(m);
		if (m->terminating && m->nchildren > 0 &&
		    master_now() >= m->kill_at) {
			pt_log(PT_LOG_WARN, 0, "killing %u workers that did not "
					       "exit",
			       m->nchildren);
			master_signal_workers(m, SIGKILL, 0, SIGW_MARK);
			m->kill_at = master_now() + MASTER_KILL_AFTER_MS;
		}
		if ((m->quitting || m->terminating) && m->nchildren == 0)
			return;
	}
}

static void
master_exit_cleanup(struct master *m)
{
	const char *pidf = m->cycle->core->pid_file;
	char *old = master_oldbin(pidf);

	if (m->pid_written) {
		pt_pid_remove(pidf, getpid());
		if (old != NULL)
			pt_pid_remove(old, getpid());
	}
	free(old);
	/* the unix socket files belong to whoever serves last: not us if a
	 * new binary runs, nor if we are one and the old master still runs
	 * (a rollback) */
	if (m->new_binary > 0 ||
	    (m->o->upgraded_from > 0 && getppid() == m->o->upgraded_from))
		return;
	for (unsigned i = 0; i < m->cycle->nlisteners; i++) {
		struct pt_listener *ls = &m->cycle->listeners[i];
		if (ls->unix_path && ls->slot <= 0)
			unlink(ls->addr.u.sun.sun_path);
	}
}

static int
master_setup_signals(struct master *m)
{
	static const int sigs[] = { SIGTERM, SIGINT,  SIGQUIT, SIGHUP,
				    SIGUSR1, SIGUSR2, SIGWINCH, SIGCHLD };
	sigset_t set;

	sigemptyset(&set);
	for (unsigned i = 0; i < PT_ARRAY_SIZE(sigs); i++)
		sigaddset(&set, sigs[i]);
	if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
		return PT_ERROR;
	m->sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	return m->sigfd < 0 ? PT_ERROR : PT_OK;
}

int
pt_master_run(struct pt_cycle *cycle, const struct pt_master_opts *o)
{
	static struct master m; /* large: keep it off the stack */
	char title[1024];
	size_t n;

	m.o = o;
	m.cycle = cycle;
	signal(SIGPIPE, SIG_IGN);
	if (master_setup_signals(&m) != PT_OK) {
		pt_log(PT_LOG_CRIT, errno, "signal setup failed");
		return 1;
	}
	n = (size_t)snprintf(title, sizeof(title), "portier: master process");
	for (char **a = o->argv; *a != NULL && n < sizeof(title); a++)
		n += (size_t)snprintf(title + n, sizeof(title) - n, " %s",
				      a == o->argv ? o->exe : *a);
	pt_proc_set_title("%s", title);
	pt_log_set_role("master");

	if (!o->foreground || cycle->core->pid_file_set) {
		if (pt_pid_write(cycle->core->pid_file, getpid()) != PT_OK)
			return 1;
		m.pid_written = 1;
	}
	pt_log(PT_LOG_NOTICE, 0, "portier %s started (pid %d)",
	       PACKAGE_VERSION, (int)getpid());
	if (master_start_workers(&m) != PT_OK) {
		m.terminating = 1;
		master_signal_workers(&m, SIGTERM, 0, SIGW_MARK);
	}
	master_loop(&m);
	pt_log(PT_LOG_NOTICE, 0, "exiting");
	master_exit_cleanup(&m);
	pt_cycle_free(m.cycle);
	free(m.slots);
	return 0;
}
