/*
 * cycle.c: loading a configuration into a cycle, opening what it needs,
 * and freeing it.
 *
 * A load never touches the running state: it builds a complete new cycle
 * (confs, server tables, phase engine) or fails without side effects, so
 * a reload with a broken config leaves the old cycle serving. Opening is
 * the separate step that acquires system resources, reusing the old
 * cycle's listening sockets where the address is unchanged.
 */
#include "core.h"
#include "conf.h"
#include "cycle.h"
#include "listen.h"
#include "log.h"
#include "pool.h"
#include "shm.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <libgen.h>
#include <unistd.h>

#ifndef PT_PREFIX
#define PT_PREFIX "/usr/local"
#endif

unsigned
pt_cycle_workers(const struct pt_cycle *c)
{
	/* "auto" was resolved at load (core_init_main) */
	return (unsigned)c->core->worker_processes;
}

static int
cycle_paths(struct pt_cycle *c, const struct pt_cycle_opts *o)
{
	char *dup = pt_pstrdup(c->pool, o->conf_file);

	if (dup == NULL)
		return PT_ERROR;
	c->conf_file = pt_pstrdup(c->pool, o->conf_file);
	c->conf_dir = pt_pstrdup(c->pool, dirname(dup));
	c->prefix = pt_pstrdup(c->pool, o->prefix ? o->prefix : PT_PREFIX);
	return c->conf_file && c->conf_dir && c->prefix ? PT_OK : PT_ERROR;
}

static int
cycle_apply(struct pt_conf *cf, config_t *lc)
{
	struct pt_cycle *c = cf->cycle;
	unsigned n = pt_modules_count();

	c->main_conf = pt_pcalloc(c->pool, n * sizeof(void *));
	if (c->main_conf == NULL)
		return PT_ERROR;
	cf->main_conf = c->main_conf;
	for (unsigned i = 0; i < n; i++) {
		if (pt_modules[i]->create_main == NULL)
			continue;
		c->main_conf[i] = pt_modules[i]->create_main(cf);
		if (c->main_conf[i] == NULL)
			return PT_ERROR;
	}
	c->srv_conf = cf->srv_conf = pt_conf_create(cf, PT_STORE_SRV);
	c->loc_conf = cf->loc_conf = pt_conf_create(cf, PT_STORE_LOC);
	if (c->srv_conf == NULL || c->loc_conf == NULL)
		return PT_ERROR;
	c->core = c->main_conf[pt_module_index(&pt_core_module)];

	cf->scope = PT_SCOPE_MAIN;
	if (pt_conf_walk(cf, config_root_setting(lc)) != PT_OK)
		return PT_ERROR;
	for (unsigned i = 0; i < n; i++)
		if (pt_modules[i]->init_main != NULL &&
		    pt_modules[i]->init_main(cf, c->main_conf[i]) != PT_OK)
			return PT_ERROR;
	for (unsigned i = 0; i < n; i++)
		if (pt_modules[i]->postconfig != NULL &&
		    pt_modules[i]->postconfig(cf) != PT_OK)
			return PT_ERROR;
	return cf->errors ? PT_ERROR : PT_OK;
}

struct pt_cycle *
pt_cycle_load(const struct pt_cycle_opts *o, unsigned generation)
{
	struct pt_pool *pool = pt_pool_create();
	struct pt_cycle *c;
	struct pt_conf cf;
	config_t lc;
	int rc;

	if (pool == NULL)
		return NULL;
	c = pt_pcalloc(pool, sizeof(*c));
	if (c == NULL || (c->pool = pool, cycle_paths(c, o)) != PT_OK) {
		pt_pool_destroy(pool);
		return NULL;
	}
	c->generation = generation;
	c->errlog.fd = -1;
	c->log_stderr = o->log_stderr;
	memset(&cf, 0, sizeof(cf));
	cf.cycle = c;
	cf.pool = pool;
	cf.to_stderr = o->to_stderr;

	if (pt_conf_read(&cf, &lc, c->conf_file) != PT_OK) {
		config_destroy(&lc);
		pt_pool_destroy(pool);
		return NULL;
	}
	rc = cycle_apply(&cf, &lc);
	if (rc == PT_OK && o->dump) {
		printf("# effective configuration of %s\n", c->conf_file);
		config_write(&lc, stdout);
		fflush(stdout);
	}
	config_destroy(&lc);
	if (rc != PT_OK) {
		if (cf.errors == 0)
			pt_conf_error(&cf, NULL, "out of memory");
		pt_cycle_free(c);
		return NULL;
	}
	c->errlog.level = c->core->log_level;
	return c;
}

static int
cycle_open_log(struct pt_cycle *c)
{
	if (c->log_stderr || strcmp(c->core->error_log, "stderr") == 0) {
		c->errlog.fd = STDERR_FILENO;
		c->errlog.path = NULL;
		return PT_OK;
	}
	c->errlog.path = c->core->error_log;
	c->errlog.fd = pt_log_open_owned(c->errlog.path, c->core->switch_user
								 ? c->core->uid
								 : (uid_t)-1);
	if (c->errlog.fd < 0) {
		pt_log(PT_LOG_CRIT, errno, "cannot open error log \"%s\"",
		       c->errlog.path);
		return PT_ERROR;
	}
	return PT_OK;
}

/*
 * Set in a daemon, whose stderr is its error log (what libc, a sanitizer
 * or a crash print goes there): stderr must follow the log through
 * reopens and reloads, or it stays on the rotated file, keeping it open
 * (and its disk space) for as long as the process lives. Process-wide, as
 * stderr is; inherited by the workers.
 */
static int cycle_stderr_follows;

static void
cycle_stderr_to_log(struct pt_cycle *c)
{
	if (cycle_stderr_follows && c->errlog.fd > STDERR_FILENO &&
	    dup2(c->errlog.fd, STDERR_FILENO) < 0)
		pt_log(PT_LOG_ERR, errno, "dup2() of the error log failed");
}

void
pt_cycle_redirect_stderr(struct pt_cycle *c)
{
	cycle_stderr_follows = 1;
	cycle_stderr_to_log(c);
}

void
pt_cycle_use_log(struct pt_cycle *c)
{
	if (c->errlog.fd >= 0)
		pt_log_cur = &c->errlog;
	cycle_stderr_to_log(c);
}

void
pt_cycle_reopen_errlog(struct pt_cycle *c)
{
	int fd;

	if (c->errlog.path == NULL)
		return;
	fd = pt_log_open_owned(c->errlog.path,
			       c->core->switch_user ? c->core->uid : (uid_t)-1);
	if (fd < 0) {
		pt_log(PT_LOG_ERR, errno, "reopening \"%s\" failed",
		       c->errlog.path);
		return;
	}
	/* dup3, not dup2: the log must not leak into an upgrade's execve */
	if (dup3(fd, c->errlog.fd, O_CLOEXEC) < 0)
		pt_log(PT_LOG_ERR, errno, "reopening \"%s\" failed",
		       c->errlog.path);
	close(fd);
	cycle_stderr_to_log(c);
}

static struct pt_listener *
cycle_old_listener(struct pt_cycle *old, const struct pt_listener *ls)
{
	for (unsigned i = 0; old != NULL && i < old->nlisteners; i++) {
		struct pt_listener *o = &old->listeners[i];
		if (!o->taken && o->io.fd >= 0 && o->slot == ls->slot &&
		    o->reuseport == ls->reuseport &&
		    strcmp(o->text, ls->text) == 0)
			return o;
	}
	return NULL;
}

int
pt_cycle_open(struct pt_cycle *c, struct pt_cycle *old)
{
	if (cycle_open_log(c) != PT_OK)
		return PT_ERROR;
	for (unsigned i = 0; i < c->nlisteners; i++) {
		struct pt_listener *ls = &c->listeners[i];
		struct pt_listener *o = cycle_old_listener(old, ls);

		if (o != NULL) {
			ls->io.fd = o->io.fd;
			o->taken = 1;
			if (o->backlog != ls->backlog &&
			    listen(ls->io.fd, ls->backlog) < 0)
				pt_log(PT_LOG_WARN, errno,
				       "changing backlog of %s failed",
				       ls->text);
			continue;
		}
		if (pt_listener_inherit(ls)) {
			/* the old binary's backlog may differ: listen() on a
			 * listening socket just sets it anew */
			if (listen(ls->io.fd, ls->backlog) < 0)
				pt_log(PT_LOG_WARN, errno,
				       "setting the backlog of %s", ls->text);
			continue;
		}
		if (pt_listener_open(ls) != PT_OK)
			goto fail;
	}
	/* zones before the modules' init: they may fill them */
	if (pt_shm_open(c, old) != PT_OK)
		goto fail;
	for (unsigned i = 0; pt_modules[i] != NULL; i++)
		if (pt_modules[i]->init_master != NULL &&
		    pt_modules[i]->init_master(c) != PT_OK)
			goto fail;
	return PT_OK;
fail:
	/* give back what was taken over: the old cycle keeps serving */
	pt_shm_abort(c);
	for (unsigned i = 0; i < c->nlisteners; i++) {
		struct pt_listener *ls = &c->listeners[i];
		struct pt_listener *o;
		if (ls->io.fd < 0)
			continue;
		for (unsigned j = 0; old != NULL && j < old->nlisteners; j++) {
			o = &old->listeners[j];
			if (o->taken && o->io.fd == ls->io.fd) {
				o->taken = 0;
				ls->io.fd = -1;
			}
		}
	}
	return PT_ERROR;
}

void
pt_cycle_free(struct pt_cycle *c)
{
	if (c == NULL)
		return;
	for (unsigned i = 0; i < c->nlisteners; i++) {
		struct pt_listener *ls = &c->listeners[i];
		if (ls->taken || ls->io.fd < 0)
			continue;
		close(ls->io.fd);
		ls->io.fd = -1;
	}
	/* the log lives in the cycle's pool: never leave it pointed at */
	if (pt_log_cur == &c->errlog)
		pt_log_reset();
	if (c->errlog.fd > STDERR_FILENO)
		close(c->errlog.fd);
	pt_shm_close(c);
	pt_pool_destroy(c->pool);
}
