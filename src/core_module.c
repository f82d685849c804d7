/*
 * core_module.c: the settings of the process model (main scope only):
 * workers, connections, privileges, pid file and error log.
 */
#include "core.h"
#include "conf.h"
#include "cycle.h"
#include "log.h"
#include "pool.h"
#include "stats.h"

#include <grp.h>
#include <pwd.h>
#include <sys/resource.h>
#include <unistd.h>

#ifndef PT_RUNSTATEDIR
#define PT_RUNSTATEDIR "/run"
#endif
#ifndef PT_LOCALSTATEDIR
#define PT_LOCALSTATEDIR "/var"
#endif

static const struct pt_range core_workers_range = { 1, 1024 };
static const struct pt_range core_conns_range = { 2, 10000000 };
static const struct pt_range core_nofile_range = { 16, 100000000 };
static const struct pt_range core_time_range = { 0, INT64_MAX };

static const struct pt_enum core_levels[] = {
	{ "debug", PT_LOG_DEBUG }, { "info", PT_LOG_INFO },
	{ "notice", PT_LOG_NOTICE }, { "warn", PT_LOG_WARN },
	{ "error", PT_LOG_ERR }, { "crit", PT_LOG_CRIT }, { NULL, 0 }
};

static int
core_set_workers(struct pt_conf *cf, const struct pt_setting *s,
		 const config_setting_t *node, void *conf)
{
	struct pt_core_conf *cc = conf;

	if (config_setting_type(node) == CONFIG_TYPE_STRING &&
	    strcmp(config_setting_get_string(node), "auto") == 0) {
		cc->worker_processes = PT_WORKERS_AUTO;
		return PT_OK;
	}
	if (config_setting_type(node) == CONFIG_TYPE_STRING) {
		pt_conf_error(cf, node,
			      "\"%s\" expects an integer or \"auto\"", s->name);
		return PT_ERROR;
	}
	return pt_conf_set_generic(cf, s, node, conf);
}

#define CORE_OFF(f) offsetof(struct pt_core_conf, f)

/* A user or group that does not exist is reported here, where the
 * setting's file and line are known; core_init_main() resolves it. */
static int
core_set_id(struct pt_conf *cf, const struct pt_setting *s,
	    const config_setting_t *node, void *conf)
{
	const char *name;
	int known;

	if (pt_conf_set_generic(cf, s, node, conf) != PT_OK)
		return PT_ERROR;
	if (geteuid() != 0)
		return PT_OK; /* ignored, with a warning */
	name = config_setting_get_string(node);
	known = s->offset == CORE_OFF(user) ? getpwnam(name) != NULL
					    : getgrnam(name) != NULL;
	if (!known) {
		pt_conf_error(cf, node, "\"%s\": unknown %s \"%s\"", s->name,
			      s->name, name);
		return PT_ERROR;
	}
	return PT_OK;
}

/*
 * The open-files limit the workers will get (worker_limits() in worker.c
 * sets it before dropping root). One setrlimit() refuses fails in every
 * worker, which exits at once and is not respawned: say so here, where -t
 * and a reload see it. Root may go up to fs.nr_open, anyone else up to
 * the hard limit.
 */
static rlim_t
core_nofile_max(void)
{
	struct rlimit rl;
	unsigned long long v;
	FILE *f;

	if (geteuid() != 0)
		return getrlimit(RLIMIT_NOFILE, &rl) == 0 ? rl.rlim_max
							  : RLIM_INFINITY;
	f = fopen("/proc/sys/fs/nr_open", "re");
	if (f == NULL)
		return RLIM_INFINITY;
	if (fscanf(f, "%llu", &v) != 1)
		v = RLIM_INFINITY;
	fclose(f);
	return (rlim_t)v;
}

static int
core_set_nofile(struct pt_conf *cf, const struct pt_setting *s,
		const config_setting_t *node, void *conf)
{
	struct pt_core_conf *cc = conf;
	rlim_t max;

	if (pt_conf_set_generic(cf, s, node, conf) != PT_OK)
		return PT_ERROR;
	max = core_nofile_max();
	if (max != RLIM_INFINITY && (rlim_t)cc->worker_rlimit_nofile > max) {
		pt_conf_error(cf, node,
			      "\"%s\": %lld is above what the system allows "
			      "(%llu, %s)",
			      s->name, (long long)cc->worker_rlimit_nofile,
			      (unsigned long long)max,
			      geteuid() == 0 ? "fs.nr_open" : "the hard limit");
		return PT_ERROR;
	}
	return PT_OK;
}

/* Every connection holds a descriptor: more connections than the limit
 * end in accept() failing with EMFILE. A warning, as in nginx. */
static void
core_check_connections(struct pt_conf *cf, const struct pt_core_conf *cc)
{
	struct rlimit rl;
	rlim_t limit = (rlim_t)cc->worker_rlimit_nofile;

	if (limit == 0) {
		if (getrlimit(RLIMIT_NOFILE, &rl) != 0 ||
		    rl.rlim_cur == RLIM_INFINITY)
			return;
		limit = rl.rlim_cur;
	}
	if ((rlim_t)cc->worker_connections > limit)
		pt_conf_warn(cf, NULL,
			     "\"worker_connections\" (%lld) exceed the open "
			     "files limit of a worker (%llu): raise "
			     "\"worker_rlimit_nofile\"",
			     (long long)cc->worker_connections,
			     (unsigned long long)limit);
}

static const struct pt_setting core_settings[] = {
	{ "worker_processes", PT_T_INT, PT_SCOPE_MAIN, PT_STORE_MAIN,
	  CORE_OFF(worker_processes), core_set_workers, &core_workers_range },
	{ "worker_connections", PT_T_INT, PT_SCOPE_MAIN, PT_STORE_MAIN,
	  CORE_OFF(worker_connections), NULL, &core_conns_range },
	{ "worker_rlimit_nofile", PT_T_INT, PT_SCOPE_MAIN, PT_STORE_MAIN,
	  CORE_OFF(worker_rlimit_nofile), core_set_nofile,
	  &core_nofile_range },
	{ "worker_shutdown_timeout", PT_T_DURATION, PT_SCOPE_MAIN,
	  PT_STORE_MAIN, CORE_OFF(worker_shutdown_timeout), NULL,
	  &core_time_range },
	{ "user", PT_T_STRING, PT_SCOPE_MAIN, PT_STORE_MAIN, CORE_OFF(user),
	  core_set_id, NULL },
	{ "group", PT_T_STRING, PT_SCOPE_MAIN, PT_STORE_MAIN, CORE_OFF(group),
	  core_set_id, NULL },
	{ "pid_file", PT_T_STRING, PT_SCOPE_MAIN, PT_STORE_MAIN,
	  CORE_OFF(pid_file), NULL, NULL },
	{ "error_log", PT_T_STRING, PT_SCOPE_MAIN, PT_STORE_MAIN,
	  CORE_OFF(error_log), NULL, NULL },
	{ "log_level", PT_T_ENUM, PT_SCOPE_MAIN, PT_STORE_MAIN,
	  CORE_OFF(log_level), NULL, core_levels },
	{ "daemon", PT_T_FLAG, PT_SCOPE_MAIN, PT_STORE_MAIN, CORE_OFF(daemon),
	  NULL, NULL },
	{ NULL, 0, 0, 0, 0, NULL, NULL }
};

static void *
core_create_main(struct pt_conf *cf)
{
	struct pt_core_conf *cc = pt_pcalloc(cf->pool, sizeof(*cc));

	if (cc == NULL)
		return NULL;
	cc->worker_processes = PT_UNSET;
	cc->worker_connections = PT_UNSET;
	cc->worker_rlimit_nofile = PT_UNSET;
	cc->worker_shutdown_timeout = PT_UNSET;
	cc->log_level = PT_UNSET;
	cc->daemon = PT_UNSET;
	return cc;
}

static int
core_resolve_user(struct pt_conf *cf, struct pt_core_conf *cc)
{
	const char *user = cc->user;
	struct passwd *pw;
	struct group *gr;

	if (geteuid() != 0) {
		if (cc->user != NULL)
			pt_conf_warn(cf, NULL,
				     "\"user\" is ignored: the master does "
				     "not run as root");
		return PT_OK;
	}
	if (user == NULL)
		user = "nobody";
	pw = getpwnam(user);
	if (pw == NULL) {
		pt_conf_error(cf, NULL, "\"user\": unknown user \"%s\"", user);
		return PT_ERROR;
	}
	cc->uid = pw->pw_uid;
	cc->gid = pw->pw_gid;
	if (cc->group != NULL) {
		gr = getgrnam(cc->group);
		if (gr == NULL) {
			pt_conf_error(cf, NULL, "\"group\": unknown group \"%s\"",
				      cc->group);
			return PT_ERROR;
		}
		cc->gid = gr->gr_gid;
	}
	cc->user = pt_pstrdup(cf->pool, user);
	cc->switch_user = 1;
	return cc->user ? PT_OK : PT_ERROR;
}

static int
core_init_main(struct pt_conf *cf, void *conf)
{
	struct pt_core_conf *cc = conf;

	PT_MERGE_I64(cc->worker_processes, PT_UNSET, 1);
	/* "auto" is counted once: the reuseport sockets are made for this
	 * many workers, and as many must be started (CPUs may come and go
	 * in between) */
	if (cc->worker_processes == PT_WORKERS_AUTO) {
		long n = sysconf(_SC_NPROCESSORS_ONLN);
		cc->worker_processes = n > 0 ? PT_MIN(n, 1024) : 1;
	}
	PT_MERGE_I64(cc->worker_connections, PT_UNSET, 1024);
	PT_MERGE_I64(cc->worker_rlimit_nofile, PT_UNSET, 0);
	PT_MERGE_I64(cc->worker_shutdown_timeout, PT_UNSET, 0);
	PT_MERGE_INT(cc->log_level, PT_UNSET, PT_LOG_NOTICE);
	PT_MERGE_INT(cc->daemon, PT_UNSET, 1);
	cc->pid_file_set = cc->pid_file != NULL;
	if (cc->pid_file == NULL)
		cc->pid_file = PT_RUNSTATEDIR "/portier.pid";
	if (cc->error_log == NULL)
		cc->error_log = PT_LOCALSTATEDIR "/log/portier/error.log";
	cc->pid_file = pt_conf_prefix_path(cf, cc->pid_file);
	if (strcmp(cc->error_log, "stderr") != 0)
		cc->error_log = pt_conf_prefix_path(cf, cc->error_log);
	if (cc->pid_file == NULL || cc->error_log == NULL)
		return PT_ERROR;
	if (cc->group != NULL && cc->user == NULL && geteuid() == 0)
		pt_conf_warn(cf, NULL, "\"group\" without \"user\": workers "
				       "run as nobody with that group");
	core_check_connections(cf, cc);
	if (pt_stats_declare(cf) != PT_OK)
		return PT_ERROR;
	return core_resolve_user(cf, cc);
}

const struct pt_module pt_core_module = {
	.name = "core",
	.settings = core_settings,
	.create_main = core_create_main,
	.init_main = core_init_main,
};
