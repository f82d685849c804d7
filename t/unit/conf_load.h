/*
 * conf_load.h: loading configs the real way in unit tests, shared by
 * test_conf.c and test_http_core.c. Each test gets a fresh temporary
 * directory (t_setup/t_teardown as a Check fixture); a config is written
 * there and loaded with pt_cycle_load(), stderr captured into t_err, so
 * errors can be compared whole, "file:line: message" included. In an
 * expected message "@F" stands for the config's path, "@D" for its
 * directory.
 */
#ifndef PT_CONF_LOAD_H
#define PT_CONF_LOAD_H

#include "unit.h"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

static char t_dir[PATH_MAX];       /* a fresh temporary directory per test */
static char t_conf[PATH_MAX + 16]; /* t_dir/portier.conf */
static char t_err[16384];          /* what the last load wrote to stderr */

T_UNUSED static void
t_setup(void)
{
	const char *tmp = getenv("TMPDIR");

	snprintf(t_dir, sizeof(t_dir), "%s/pt-conf-XXXXXX",
		 tmp && *tmp ? tmp : "/tmp");
	ck_assert_ptr_nonnull(mkdtemp(t_dir));
	snprintf(t_conf, sizeof(t_conf), "%s/portier.conf", t_dir);
	t_err[0] = '\0';
}

T_UNUSED static void
t_rm_tree(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char path[PATH_MAX + 256];

	if (d == NULL)
		return;
	while ((e = readdir(d)) != NULL) {
		struct stat st;
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		if (lstat(path, &st) == 0 && S_ISDIR(st.st_mode))
			t_rm_tree(path);
		else
			unlink(path);
	}
	closedir(d);
	rmdir(dir);
}

T_UNUSED static void
t_teardown(void)
{
	t_rm_tree(t_dir);
}

/* Write text to t_dir/name (subdirectories must exist). */
T_UNUSED static void
t_write(const char *name, const char *text)
{
	char path[PATH_MAX + 256];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", t_dir, name);
	f = fopen(path, "w");
	ck_assert_msg(f != NULL, "cannot write %s", path);
	fputs(text, f);
	ck_assert_int_eq(fclose(f), 0);
}

/* Load a config file, stderr captured into t_err. NULL on failure. */
T_UNUSED static struct pt_cycle *
t_load_file(const char *file)
{
	struct pt_cycle_opts o;
	struct pt_cycle *c;
	char errfile[PATH_MAX + 16];
	int saved, fd;
	ssize_t n;

	memset(&o, 0, sizeof(o));
	o.conf_file = file;
	o.prefix = t_dir;
	o.to_stderr = 1;
	o.test = 1;
	snprintf(errfile, sizeof(errfile), "%s/.stderr", t_dir);
	fd = open(errfile, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	ck_assert_int_ge(fd, 0);
	fflush(stderr);
	saved = dup(STDERR_FILENO);
	ck_assert_int_ge(saved, 0);
	ck_assert_int_ge(dup2(fd, STDERR_FILENO), 0);
	c = pt_cycle_load(&o, 1);
	fflush(stderr);
	dup2(saved, STDERR_FILENO);
	close(saved);
	n = pread(fd, t_err, sizeof(t_err) - 1, 0);
	close(fd);
	unlink(errfile);
	t_err[n > 0 ? n : 0] = '\0';
	return c;
}

T_UNUSED static struct pt_cycle *
t_load(const char *text)
{
	t_write("portier.conf", text);
	return t_load_file(t_conf);
}

/* want with every "@F" replaced by the config's path, "@D" by its dir. */
T_UNUSED static void
t_expand(const char *want, char *out, size_t len)
{
	size_t n = 0;

	for (const char *p = want; *p && n + 1 < len; p++) {
		const char *rep = NULL;
		if (p[0] == '@' && p[1] == 'F')
			rep = t_conf;
		else if (p[0] == '@' && p[1] == 'D')
			rep = t_dir;
		if (rep == NULL) {
			out[n++] = *p;
			continue;
		}
		n += (size_t)snprintf(out + n, len - n, "%s", rep);
		if (n >= len)
			n = len - 1;
		p++;
	}
	out[n] = '\0';
}

/* The config must load, and print nothing (or exactly want_err). */
T_UNUSED static struct pt_cycle *
t_ok(const char *text, const char *want_err)
{
	char want[4096];
	struct pt_cycle *c = t_load(text);

	t_expand(want_err ? want_err : "", want, sizeof(want));
	ck_assert_msg(c != NULL, "config refused:\n%s\n-- stderr:\n%s", text,
		      t_err);
	ck_assert_msg(strcmp(t_err, want) == 0,
		      "config:\n%s\n-- stderr:\n%s-- want:\n%s", text, t_err,
		      want);
	return c;
}

/* The config must be refused with exactly want (one line per error). */
T_UNUSED static void
t_fails(const char *text, const char *want_err)
{
	char want[4096];
	struct pt_cycle *c = t_load(text);

	t_expand(want_err, want, sizeof(want));
	ck_assert_msg(c == NULL, "config accepted:\n%s", text);
	ck_assert_msg(strcmp(t_err, want) == 0,
		      "config:\n%s\n-- stderr:\n%s-- want:\n%s", text, t_err,
		      want);
}

#define T_SRV "servers = ( { listen = \"127.0.0.1:8080\"; } );\n"



T_UNUSED static struct pt_http_main_conf *
t_main(struct pt_cycle *c)
{
	return c->main_conf[PT_HTTP_CORE_INDEX];
}

T_UNUSED static struct pt_http_loc_conf *
t_loc(void **loc_conf)
{
	return loc_conf[PT_HTTP_CORE_INDEX];
}

T_UNUSED static struct pt_http_srv_conf *
t_srv(void **srv_conf)
{
	return srv_conf[PT_HTTP_CORE_INDEX];
}


#endif
