/*
 * main.c: the command line, nginx's habits:
 *
 *   portier [-c file] [-p prefix] [-t | -T] [-s signal] [-F] [-V] [-h]
 *
 * Startup order: parse options, load and check the config (errors on
 * stderr with file:line), open the error log and the listening sockets
 * while stderr is still the terminal, then daemonize (unless -F, daemon =
 * false, or we were exec'ed by an upgrading master) and run the master.
 */
#include "core.h"
#include "cycle.h"
#include "listen.h"
#include "log.h"
#include "master.h"
#include "proc.h"
#include "ptime.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef PT_SYSCONFDIR
#define PT_SYSCONFDIR "/etc"
#endif
#ifndef PT_PREFIX
#define PT_PREFIX "/usr/local"
#endif

static void
usage(FILE *f)
{
	fprintf(f,
		"usage: portier [-c file] [-p prefix] [-t | -T] "
		"[-s reload|stop|quit|reopen] [-F] [-V] [-h]\n"
		"  -c file    configuration file (default %s)\n"
		"  -p prefix  base of relative paths in the configuration "
		"(default %s)\n"
		"  -t         check the configuration and exit\n"
		"  -T         check it, print the effective configuration, "
		"exit\n"
		"  -s signal  send reload, stop, quit or reopen to the "
		"running master\n"
		"  -F         stay in the foreground, error log on stderr\n"
		"  -V         print version, configure arguments and modules\n"
		"  -h         this help\n",
		PT_SYSCONFDIR "/portier/portier.conf", PT_PREFIX);
}

static void
version(void)
{
	printf("portier version %s\n", PACKAGE_VERSION);
	printf("configure arguments: %s\n", PT_CONFIGURE_ARGS);
	printf("modules: core http_core http_log%s\n", pt_module_names);
}

/* An absolute path for a relative one, from the current directory. */
static char *
absolute(const char *path)
{
	char cwd[PATH_MAX], *p;
	size_t n;

	if (path[0] == '/')
		return strdup(path);
	if (getcwd(cwd, sizeof(cwd)) == NULL)
		return NULL;
	n = strlen(cwd) + strlen(path) + 2;
	p = malloc(n);
	if (p != NULL)
		snprintf(p, n, "%s/%s", cwd, path);
	return p;
}

/* The path this binary was started from, so that an upgrade re-executes
 * whatever file is there now (a package upgrade replaces it). */
static char *
exe_path(const char *argv0)
{
	const char *path = getenv("PATH");
	char buf[PATH_MAX];

	if (strchr(argv0, '/') != NULL)
		return absolute(argv0);
	while (path != NULL && *path != '\0') {
		const char *end = strchr(path, ':');
		size_t len = end ? (size_t)(end - path) : strlen(path);
		if ((size_t)snprintf(buf, sizeof(buf), "%.*s/%s", (int)len,
				     len ? path : ".", argv0) < sizeof(buf) &&
		    access(buf, X_OK) == 0)
			return absolute(buf);
		path = end ? end + 1 : NULL;
	}
	return absolute("/proc/self/exe");
}

static int
send_signal(const struct pt_cycle_opts *o, const char *name)
{
	static const struct {
		const char *name;
		int sig;
	} sigs[] = { { "reload", SIGHUP }, { "stop", SIGTERM },
		     { "quit", SIGQUIT }, { "reopen", SIGUSR1 } };
	struct pt_cycle *c;
	pid_t pid;
	int sig = 0;

	for (unsigned i = 0; i < PT_ARRAY_SIZE(sigs); i++)
		if (strcmp(name, sigs[i].name) == 0)
			sig = sigs[i].sig;
	if (sig == 0) {
		fprintf(stderr, "portier: invalid signal \"%s\"\n", name);
		return 1;
	}
	c = pt_cycle_load(o, 0);
	if (c == NULL)
		return 1;
	pid = pt_pid_read(c->core->pid_file);
	if (pid < 0) {
		fprintf(stderr, "portier: cannot read pid file %s: %s\n",
			c->core->pid_file, strerror(errno));
		pt_cycle_free(c);
		return 1;
	}
	pt_cycle_free(c);
	if (kill(pid, sig) < 0) {
		fprintf(stderr, "portier: kill(%d, %s) failed: %s\n", (int)pid,
			name, strerror(errno));
		return 1;
	}
	return 0;
}

static char **
copy_argv(int argc, char **argv)
{
	char **a = calloc((size_t)argc + 1, sizeof(char *));

	for (int i = 0; a != NULL && i < argc; i++)
		if ((a[i] = strdup(argv[i])) == NULL)
			return NULL;
	return a;
}

static int
start(struct pt_master_opts *mo)
{
	struct pt_cycle *c;
	int inherited = getenv("PORTIER_INHERIT") != NULL;

	pt_listen_inherit_init();
	if (inherited)
		mo->upgraded_from = getppid();
	c = pt_cycle_load(&mo->cycle, 1);
	if (c == NULL)
		return 1;
	if (pt_cycle_open(c, NULL) != PT_OK) {
		pt_cycle_free(c);
		return 1;
	}
	pt_listen_inherit_done();
	pt_cycle_use_log(c);
	if (!mo->foreground && c->core->daemon && !inherited &&
	    pt_proc_daemonize() != PT_OK)
		return 1;
	/* also when exec'ed by an upgrade: our stderr is then the old
	 * master's, its own error log */
	if (!mo->foreground && c->core->daemon)
		pt_cycle_redirect_stderr(c);
	return pt_master_run(c, mo);
}

int
main(int argc, char **argv)
{
	/* static: what it points to lives as long as the process, and
	 * LeakSanitizer sees it is still referenced at exit */
	static struct pt_master_opts mo;
	const char *signame = NULL;
	int opt, test = 0;

	mo.argv = copy_argv(argc, argv);
	mo.exe = exe_path(argv[0]);
	if (mo.argv == NULL || mo.exe == NULL) {
		fprintf(stderr, "portier: out of memory\n");
		return 1;
	}
	pt_proc_title_init(argc, argv);
	pt_time_update();
	mo.cycle.conf_file = PT_SYSCONFDIR "/portier/portier.conf";
	mo.cycle.to_stderr = 1;
	while ((opt = getopt(argc, argv, "c:p:tTs:FVh")) != -1) {
		switch (opt) {
		case 'c': mo.cycle.conf_file = optarg; break;
		case 'p': mo.cycle.prefix = optarg; break;
		case 't': test = 1; break;
		case 'T': test = 1; mo.cycle.dump = 1; break;
		case 's': signame = optarg; break;
		case 'F': mo.foreground = 1; mo.cycle.log_stderr = 1; break;
		case 'V': version(); return 0;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 1;
		}
	}
	if (optind < argc) {
		usage(stderr);
		return 1;
	}
	mo.cycle.conf_file = absolute(mo.cycle.conf_file);
	if (mo.cycle.prefix != NULL)
		mo.cycle.prefix = absolute(mo.cycle.prefix);
	if (mo.cycle.conf_file == NULL)
		return 1;
	mo.cycle.test = test;
	if (test) {
		struct pt_cycle *c = pt_cycle_load(&mo.cycle, 0);
		if (c == NULL) {
			fprintf(stderr, "portier: configuration file %s test "
					"failed\n",
				mo.cycle.conf_file);
			return 1;
		}
		fprintf(stderr, "portier: configuration file %s test is "
				"successful\n",
			mo.cycle.conf_file);
		pt_cycle_free(c);
		return 0;
	}
	if (signame != NULL)
		return send_signal(&mo.cycle, signame);
	return start(&mo);
}
