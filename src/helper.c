/*
 * helper.c: the helper process. One per configuration generation, forked
 * by the master when a module asks for it (the proxy's active health
 * checks), so that periodic work runs once for the whole server and not
 * in every worker. It serves no traffic: it holds no listening socket,
 * runs with the workers' privileges, leaves when the master dies or asks
 * (QUIT, TERM), and shares its results through shared memory.
 */
#include "core.h"
#include "cycle.h"
#include "event.h"
#include "helper.h"
#include "listen.h"
#include "log.h"
#include "proc.h"
#include "ptime.h"

#include <errno.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

static struct pt_loop helper_loop;
static struct pt_io helper_sig;
static int helper_quit;

int
pt_helper_wanted(const struct pt_cycle *c)
{
	for (unsigned i = 0; pt_modules[i] != NULL; i++)
		if (pt_modules[i]->helper_wanted != NULL &&
		    pt_modules[i]->helper_wanted(c))
			return 1;
	return 0;
}

static void
helper_signal(struct pt_io *io)
{
	struct signalfd_siginfo si;

	while (read(io->fd, &si, sizeof(si)) == sizeof(si))
		if (si.ssi_signo == SIGQUIT || si.ssi_signo == SIGTERM ||
		    si.ssi_signo == SIGINT)
			helper_quit = 1;
	io->readable = 0;
}

static int
helper_init(struct pt_cycle *c, pid_t master)
{
	for (unsigned i = 0; i < c->nlisteners; i++)
		if (c->listeners[i].io.fd >= 0) {
			close(c->listeners[i].io.fd);
			c->listeners[i].io.fd = -1;
		}
	if (c->core->switch_user &&
	    pt_proc_drop_privileges(c->core->uid, c->core->gid,
				    c->core->user) != PT_OK)
		return PT_ERROR;
	if (pt_loop_init(&helper_loop, 4096) != PT_OK)
		return PT_ERROR;
	helper_sig.fd = pt_proc_child_signals(master);
	if (helper_sig.fd < 0)
		return PT_ERROR;
	helper_sig.on_read = helper_signal;
	if (pt_io_add(&helper_loop, &helper_sig) != PT_OK)
		return PT_ERROR;
	for (unsigned i = 0; pt_modules[i] != NULL; i++)
		if (pt_modules[i]->init_helper != NULL &&
		    pt_modules[i]->init_helper(c, &helper_loop) != PT_OK)
			return PT_ERROR;
	return PT_OK;
}

void
pt_helper_run(struct pt_cycle *c, pid_t master)
{
	pt_log_set_role("helper");
	pt_proc_set_title("portier: helper process");
	pt_time_update();
	if (helper_init(c, master) != PT_OK) {
		pt_log(PT_LOG_CRIT, errno, "helper process failed to start");
		_exit(2);
	}
	while (!helper_quit) {
		if (pt_loop_once(&helper_loop, 1000) != PT_OK) {
			pt_log(PT_LOG_CRIT, errno, "epoll_wait() failed");
			exit(1);
		}
	}
	pt_log(PT_LOG_INFO, 0, "exiting");
	exit(0);
}
