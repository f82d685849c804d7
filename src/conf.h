/*
 * conf.h: loading the libconfig file and applying it through the modules'
 * settings tables.
 *
 * pt_conf_read() parses the file (with @include relative to the config's
 * directory) and expands "${VAR}" / "${VAR:-default}" in every string.
 * pt_conf_walk() applies the members of one group at one scope: each name
 * must be a setting of some module, allowed at that scope, with a value of
 * the right type and range; anything else is an error naming file, line
 * and setting. Errors go to stderr at startup and for -t, to the error log
 * on reload.
 */
#ifndef PT_CONF_H
#define PT_CONF_H

#include "core.h"
#include "module.h"

struct pt_conf {
	struct pt_cycle *cycle;
	struct pt_pool *pool; /* the cycle's: lives as long as the config */
	unsigned scope;       /* PT_SCOPE_* being walked */
	void **main_conf;     /* per module, indexed like pt_modules[] */
	void **srv_conf;      /* of the current server (or main level) */
	void **loc_conf;      /* of the current location (or outer level) */
	void *ctx;            /* object being configured (server, ...) */
	int to_stderr;        /* report on stderr rather than the log */
	unsigned errors;
};

/*
 * The text of a configuration with every @include expanded (glob
 * patterns, relative to the config's directory), and where each of its
 * lines came from (conf_include.c).
 */
struct pt_conf_line {
	const char *file; /* from cf's pool */
	unsigned line;
};
struct pt_conf_src {
	char *text;
	size_t len;
	struct pt_conf_line *lines;
	unsigned nlines;
};
/* Load file and its includes into src (free with pt_conf_src_free, also
 * on failure). PT_OK, or PT_ERROR after reporting the error. */
int pt_conf_src_load(struct pt_conf *cf, const char *file,
		     struct pt_conf_src *src);
void pt_conf_src_free(struct pt_conf_src *src);
/* File and line of line n (1-based) of src's text; PT_ERROR if none. */
int pt_conf_src_where(const struct pt_conf_src *src, unsigned n,
		      const char **file, unsigned *line);

/* Read file into lc; on failure report and return PT_ERROR. */
int pt_conf_read(struct pt_conf *cf, config_t *lc, const char *file);

/* Apply every member of group at cf->scope. PT_OK or PT_ERROR. */
int pt_conf_walk(struct pt_conf *cf, const config_setting_t *group);

/*
 * Apply every member of group to obj through a table of its own (the
 * members of a block such as an upstream, not module settings): each name
 * must be in table (ends with { NULL }); values are stored at obj +
 * offset by the generic setters, or by the entry's setter. block names
 * the group in messages ("upstream \"app\""). PT_OK or PT_ERROR.
 */
int pt_conf_walk_table(struct pt_conf *cf, const config_setting_t *group,
		       const struct pt_setting *table, const char *block,
		       void *obj);

/* A new array of per-module confs of one kind (PT_STORE_SRV/LOC), from
 * cf's pool; NULL when out of memory. */
void **pt_conf_create(struct pt_conf *cf, unsigned store);

/* Merge every module's conf of one kind from parent into child. */
int pt_conf_merge(struct pt_conf *cf, unsigned store, void **parent,
		  void **child);

/* Report "file:line: name: message" for node (NULL: no position). */
void pt_conf_error(struct pt_conf *cf, const config_setting_t *node,
		   const char *fmt, ...) PT_PRINTF(3, 4);
void pt_conf_warn(struct pt_conf *cf, const config_setting_t *node,
		  const char *fmt, ...) PT_PRINTF(3, 4);

/* The conf of module m (by kind) from an array. */
#define pt_conf_of(arr, m) ((arr)[pt_module_index(&(m))])

/*
 * Paths: a relative runtime path (root, logs, pid file) is taken from the
 * prefix (-p); a relative path to a config-like file (mime types) from the
 * config's directory. Both return a pool copy, or NULL.
 */
const char *pt_conf_prefix_path(struct pt_conf *cf, const char *path);
const char *pt_conf_dir_path(struct pt_conf *cf, const char *path);

/* The string(s) of a node: one string, or an array/list of strings. */
int pt_conf_get_strlist(struct pt_conf *cf, const config_setting_t *node,
			struct pt_strlist *out);

/* Generic setters, for custom setters that wrap them. */
int pt_conf_set_generic(struct pt_conf *cf, const struct pt_setting *s,
			const config_setting_t *node, void *conf);

/* Expand ${VAR} and ${VAR:-default} in s into a malloc'ed string the
 * caller frees. On error NULL, with *bad at the faulty "${" (or NULL
 * when out of memory). */
char *pt_conf_expand_env(const char *s, const char **bad);

#define PT_MERGE_I64(child, parent, def)                         \
	do {                                                     \
		if ((child) == PT_UNSET)                         \
			(child) = (parent) == PT_UNSET ? (def)   \
						       : (parent); \
	} while (0)
#define PT_MERGE_INT PT_MERGE_I64
#define PT_MERGE_PTR(child, parent, def)                                 \
	do {                                                             \
		if ((child) == NULL)                                     \
			(child) = (parent) != NULL ? (parent) : (def);   \
	} while (0)
#define PT_MERGE_LIST(child, parent)                  \
	do {                                          \
		if ((child).items == NULL)            \
			(child) = (parent);           \
	} while (0)

#endif
