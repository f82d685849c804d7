/*
 * conf.c: reading the config file and applying groups of settings through
 * the modules' tables.
 *
 * Every setting name is looked up in every module's table; the first match
 * owns it (names are unique across modules: t/unit/test_manpage.c checks
 * it). A setting's value reaches the conf structure of its module
 * at the current scope through the setting's store kind and offset.
 */
#include "core.h"
#include "conf.h"
#include "cycle.h"
#include "log.h"
#include "pool.h"
#include "regex.h"
#include "util.h"

#include <errno.h>
#include <limits.h>
#include <unistd.h>

static const char *const conf_scope_names[] = { "main", "server",
						"location", "upstream" };

unsigned
pt_modules_count(void)
{
	static unsigned n;

	if (n == 0)
		while (pt_modules[n] != NULL)
			n++;
	return n;
}

unsigned
pt_module_index(const struct pt_module *m)
{
	for (unsigned i = 0; pt_modules[i] != NULL; i++)
		if (pt_modules[i] == m)
			return i;
	PT_ASSERT(!"module not compiled in");
	return 0;
}

static void conf_report(struct pt_conf *cf, int level,
			const config_setting_t *node, const char *fmt,
			va_list ap) PT_PRINTF(4, 0);

static void
conf_report(struct pt_conf *cf, int level, const config_setting_t *node,
	    const char *fmt, va_list ap)
{
	char msg[1024], where[PATH_MAX + 32] = "";
	const char *file = NULL;

	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (node != NULL) {
		file = config_setting_source_file(node);
		snprintf(where, sizeof(where), "%s:%u: ",
			 file ? file : cf->cycle->conf_file,
			 config_setting_source_line(node));
	}
	if (cf->to_stderr)
		fprintf(stderr, "portier: %s%s%s\n", where,
			level >= PT_LOG_ERR ? "" : "warning: ", msg);
	else
		pt_log(level, 0, "%s%s", where, msg);
}

void
pt_conf_error(struct pt_conf *cf, const config_setting_t *node,
	      const char *fmt, ...)
{
	va_list ap;

	cf->errors++;
	va_start(ap, fmt);
	conf_report(cf, PT_LOG_ERR, node, fmt, ap);
	va_end(ap);
}

void
pt_conf_warn(struct pt_conf *cf, const config_setting_t *node,
	     const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	conf_report(cf, PT_LOG_WARN, node, fmt, ap);
	va_end(ap);
}

/* ---- reading ----------------------------------------------------------- */

char *
pt_conf_expand_env(const char *s, const char **bad)
{
	size_t cap = strlen(s) + 1, len = 0;
	char *out = malloc(cap);

	if (out == NULL)
		return NULL;
	while (*s != '\0') {
		const char *val, *close, *def = NULL;
		char name[256];
		size_t nlen, vlen;

		if (s[0] != '$' || s[1] != '{') {
			out[len++] = *s++;
			continue;
		}
		close = strchr(s + 2, '}');
		if (close == NULL) {
			*bad = s;
			free(out);
			return NULL;
		}
		nlen = (size_t)(close - (s + 2));
		const char *sep = memchr(s + 2, ':', nlen);
		if (sep != NULL) {
			if (sep[1] != '-') {
				*bad = s;
				free(out);
				return NULL;
			}
			def = sep + 2;
			nlen = (size_t)(sep - (s + 2));
		}
		if (nlen == 0 || nlen >= sizeof(name)) {
			*bad = s;
			free(out);
			return NULL;
		}
		memcpy(name, s + 2, nlen);
		name[nlen] = '\0';
		val = getenv(name);
		if (val != NULL) {
			vlen = strlen(val);
		} else if (def != NULL) {
			val = def;
			vlen = (size_t)(close - def);
		} else {
			*bad = s;
			free(out);
			return NULL;
		}
		if (len + vlen + strlen(close + 1) + 1 > cap) {
			char *n;
			cap = len + vlen + strlen(close + 1) + 1;
			n = realloc(out, cap);
			if (n == NULL) {
				free(out);
				return NULL;
			}
			out = n;
		}
		memcpy(out + len, val, vlen);
		len += vlen;
		s = close + 1;
	}
	out[len] = '\0';
	return out;
}

static int
conf_expand_tree(struct pt_conf *cf, config_setting_t *node)
{
	int rc = PT_OK;

	if (config_setting_is_aggregate(node)) {
		int n = config_setting_length(node);
		for (int i = 0; i < n; i++)
			if (conf_expand_tree(cf, config_setting_get_elem(
						     node, (unsigned)i)) != PT_OK)
				rc = PT_ERROR;
		return rc;
	}
	if (config_setting_type(node) != CONFIG_TYPE_STRING)
		return PT_OK;
	const char *s = config_setting_get_string(node), *bad = NULL;
	if (strstr(s, "${") == NULL)
		return PT_OK;
	char *x = pt_conf_expand_env(s, &bad);
	if (x == NULL) {
		if (bad == NULL) {
			pt_conf_error(cf, node, "out of memory");
			return PT_ERROR;
		}
		const char *close = strchr(bad, '}');
		int n = close ? (int)(close - bad + 1) : (int)strlen(bad);
		pt_conf_error(cf, node,
			      "\"%.*s\": environment variable not set and no "
			      "default (use ${NAME:-default})",
			      n, bad);
		return PT_ERROR;
	}
	config_setting_set_string(node, x);
	free(x);
	return PT_OK;
}

/* Give every node the file and line it came from in the expanded text. */
static void
conf_fix_positions(const struct pt_conf_src *src, config_setting_t *node)
{
	const char *file;
	unsigned line;

	if (pt_conf_src_where(src, node->line, &file, &line) == PT_OK) {
		node->file = file;
		node->line = line;
	}
	if (config_setting_is_aggregate(node)) {
		int n = config_setting_length(node);
		for (unsigned i = 0; i < (unsigned)n; i++)
			conf_fix_positions(src, config_setting_get_elem(node, i));
	}
}

int
pt_conf_read(struct pt_conf *cf, config_t *lc, const char *file)
{
	struct pt_conf_src src;
	const char *where;
	unsigned line;
	int rc;

	config_init(lc);
	/* @include is ours (conf_include.c): globs, and exact positions */
	if (pt_conf_src_load(cf, file, &src) != PT_OK) {
		pt_conf_src_free(&src);
		return PT_ERROR;
	}
	rc = config_read_string(lc, src.text);
	if (rc != CONFIG_TRUE) {
		cf->errors++;
		unsigned el = (unsigned)config_error_line(lc);
		if (pt_conf_src_where(&src, el, &where, &line) != PT_OK) {
			/* past the last line: the end of the file read last */
			where = file;
			line = el;
			if (src.nlines > 0 && el > src.nlines) {
				where = src.lines[src.nlines - 1].file;
				line = src.lines[src.nlines - 1].line +
				       (el - src.nlines);
			}
		}
		if (cf->to_stderr)
			fprintf(stderr, "portier: %s:%u: %s\n", where, line,
				config_error_text(lc));
		else
			pt_log(PT_LOG_ERR, 0, "%s:%u: %s", where, line,
			       config_error_text(lc));
		pt_conf_src_free(&src);
		return PT_ERROR;
	}
	conf_fix_positions(&src, config_root_setting(lc));
	pt_conf_src_free(&src);
	return conf_expand_tree(cf, config_root_setting(lc));
}

/* ---- applying --------------------------------------------------------- */

static const struct pt_setting *
conf_find(const char *name, unsigned *mi)
{
	for (unsigned i = 0; pt_modules[i] != NULL; i++) {
		const struct pt_setting *s = pt_modules[i]->settings;
		for (; s != NULL && s->name != NULL; s++) {
			if (strcmp(s->name, name) == 0) {
				*mi = i;
				return s;
			}
		}
	}
	return NULL;
}

static void
conf_scopes_text(unsigned scopes, char *buf, size_t len)
{
	size_t n = 0;

	buf[0] = '\0';
	for (unsigned i = 0; i < PT_ARRAY_SIZE(conf_scope_names); i++) {
		if (!(scopes & (1u << i)))
			continue;
		int r = snprintf(buf + n, len - n, "%s%s", n ? ", " : "",
				 conf_scope_names[i]);
		if (r < 0 || (size_t)r >= len - n)
			break;
		n += (size_t)r;
	}
}

static unsigned
conf_scope_index(unsigned scope)
{
	unsigned i = 0;

	while (i < PT_ARRAY_SIZE(conf_scope_names) - 1 && !(scope & (1u << i)))
		i++;
	return i;
}

int
pt_conf_walk(struct pt_conf *cf, const config_setting_t *group)
{
	int n = config_setting_length(group), rc = PT_OK;

	for (int i = 0; i < n; i++) {
		const config_setting_t *node =
			config_setting_get_elem(group, (unsigned)i);
		const char *name = config_setting_name(node);
		const struct pt_setting *s;
		unsigned mi;
		void *conf;
		char where[64];

		if (name == NULL)
			continue; /* list/array elements have no name */
		s = conf_find(name, &mi);
		if (s == NULL) {
			pt_conf_error(cf, node, "unknown setting \"%s\"", name);
			rc = PT_ERROR;
			continue;
		}
		if (!(s->scopes & cf->scope)) {
			conf_scopes_text(s->scopes, where, sizeof(where));
			pt_conf_error(cf, node,
				      "\"%s\" is not allowed in %s scope "
				      "(allowed in: %s)",
				      name,
				      conf_scope_names[conf_scope_index(
					      cf->scope)],
				      where);
			rc = PT_ERROR;
			continue;
		}
		switch (s->store) {
		case PT_STORE_MAIN: conf = cf->main_conf[mi]; break;
		case PT_STORE_SRV: conf = cf->srv_conf[mi]; break;
		case PT_STORE_LOC: conf = cf->loc_conf[mi]; break;
		default: conf = cf->ctx; break;
		}
		PT_ASSERT(conf != NULL);
		if ((s->set ? s->set : pt_conf_set_generic)(cf, s, node, conf) !=
		    PT_OK)
			rc = PT_ERROR;
	}
	return rc;
}

int
pt_conf_walk_table(struct pt_conf *cf, const config_setting_t *group,
		   const struct pt_setting *table, const char *block,
		   void *obj)
{
	int n = config_setting_length(group), rc = PT_OK;

	for (int i = 0; i < n; i++) {
		const config_setting_t *node =
			config_setting_get_elem(group, (unsigned)i);
		const char *name = config_setting_name(node);
		const struct pt_setting *s = table;

		if (name == NULL)
			continue;
		while (s->name != NULL && strcmp(s->name, name) != 0)
			s++;
		if (s->name == NULL) {
			pt_conf_error(cf, node, "unknown setting \"%s\" in %s",
				      name, block);
			rc = PT_ERROR;
			continue;
		}
		if ((s->set ? s->set : pt_conf_set_generic)(cf, s, node, obj) !=
		    PT_OK)
			rc = PT_ERROR;
	}
	return rc;
}

void **
pt_conf_create(struct pt_conf *cf, unsigned store)
{
	unsigned n = pt_modules_count();
	void **arr = pt_pcalloc(cf->pool, n * sizeof(void *));

	if (arr == NULL)
		return NULL;
	for (unsigned i = 0; i < n; i++) {
		const struct pt_module *m = pt_modules[i];
		void *(*create)(struct pt_conf *) =
			store == PT_STORE_SRV ? m->create_srv : m->create_loc;
		if (create == NULL)
			continue;
		arr[i] = create(cf);
		if (arr[i] == NULL)
			return NULL;
	}
	return arr;
}

int
pt_conf_merge(struct pt_conf *cf, unsigned store, void **parent, void **child)
{
	for (unsigned i = 0; pt_modules[i] != NULL; i++) {
		const struct pt_module *m = pt_modules[i];
		int (*merge)(struct pt_conf *, void *, void *) =
			store == PT_STORE_SRV ? m->merge_srv : m->merge_loc;
		if (merge == NULL || child[i] == NULL)
			continue;
		if (merge(cf, parent[i], child[i]) != PT_OK)
			return PT_ERROR;
	}
	return PT_OK;
}

/* ---- generic setters -------------------------------------------------- */

#define CONF_AT(conf, s, type) ((type *)(void *)((char *)(conf) + (s)->offset))

static int
conf_range(struct pt_conf *cf, const struct pt_setting *s,
	   const config_setting_t *node, int64_t v, const char *given)
{
	const struct pt_range *r = s->arg;
	/* a duration's range is in ms, and may be given in seconds */
	const char *unit = s->type == PT_T_DURATION ? "ms" : "";

	if (r != NULL && (v < r->min || v > r->max)) {
		pt_conf_error(cf, node,
			      "\"%s\": value %s is out of range "
			      "(%lld%s..%lld%s)",
			      s->name, given, (long long)r->min, unit,
			      (long long)r->max, unit);
		return PT_ERROR;
	}
	return PT_OK;
}

static int
conf_set_number(struct pt_conf *cf, const struct pt_setting *s,
		const config_setting_t *node, void *conf)
{
	int type = config_setting_type(node);
	int64_t v;
	char given[64];
	const char *what = s->type == PT_T_INT	    ? "an integer"
			   : s->type == PT_T_SIZE ? "a size (\"16k\", \"1m\")"
						  : "a duration (\"500ms\", "
						    "\"2s\", \"5m\")";

	if (type == CONFIG_TYPE_INT || type == CONFIG_TYPE_INT64) {
		v = config_setting_get_int64(node);
		snprintf(given, sizeof(given), "%lld%s", (long long)v,
			 s->type == PT_T_DURATION ? "s" : "");
		if (s->type == PT_T_DURATION) {
			if (v < 0 || v > INT64_MAX / 1000)
				goto bad;
			v *= 1000;
		}
	} else if (type == CONFIG_TYPE_STRING && s->type != PT_T_INT) {
		const char *str = config_setting_get_string(node);
		snprintf(given, sizeof(given), "\"%s\"", str);
		if ((s->type == PT_T_SIZE ? pt_parse_size(str, &v)
					  : pt_parse_duration(str, &v)) != PT_OK)
			goto bad;
	} else {
		goto bad;
	}
	if (s->type == PT_T_DURATION && v > PT_DURATION_MAX) {
		pt_conf_error(cf, node, "\"%s\": %s is longer than %s", s->name,
			      given, PT_DURATION_MAX_TEXT);
		return PT_ERROR;
	}
	if (conf_range(cf, s, node, v, given) != PT_OK)
		return PT_ERROR;
	*CONF_AT(conf, s, int64_t) = v;
	return PT_OK;
bad:
	pt_conf_error(cf, node, "\"%s\" expects %s", s->name, what);
	return PT_ERROR;
}

static int
conf_set_enum(struct pt_conf *cf, const struct pt_setting *s,
	      const config_setting_t *node, void *conf)
{
	const struct pt_enum *e = s->arg;
	const char *v;
	char names[256];
	size_t n = 0;

	if (config_setting_type(node) == CONFIG_TYPE_STRING) {
		v = config_setting_get_string(node);
		for (const struct pt_enum *x = e; x->name != NULL; x++) {
			if (strcmp(x->name, v) == 0) {
				*CONF_AT(conf, s, int) = x->value;
				return PT_OK;
			}
		}
	}
	names[0] = '\0';
	for (const struct pt_enum *x = e; x->name != NULL; x++) {
		int r = snprintf(names + n, sizeof(names) - n, "%s\"%s\"",
				 n ? ", " : "", x->name);
		if (r < 0 || (size_t)r >= sizeof(names) - n)
			break;
		n += (size_t)r;
	}
	pt_conf_error(cf, node, "\"%s\" expects one of %s", s->name, names);
	return PT_ERROR;
}

int
pt_conf_get_strlist(struct pt_conf *cf, const config_setting_t *node,
		    struct pt_strlist *out)
{
	int type = config_setting_type(node);
	unsigned n;

	if (type == CONFIG_TYPE_STRING) {
		out->items = pt_palloc(cf->pool, sizeof(char *));
		if (out->items == NULL)
			return PT_ERROR;
		out->items[0] = pt_pstrdup(cf->pool,
					   config_setting_get_string(node));
		out->n = 1;
		return out->items[0] ? PT_OK : PT_ERROR;
	}
	if (type != CONFIG_TYPE_ARRAY && type != CONFIG_TYPE_LIST)
		return PT_ERROR;
	n = (unsigned)config_setting_length(node);
	out->items = pt_palloc(cf->pool, (n ? n : 1) * sizeof(char *));
	if (out->items == NULL)
		return PT_ERROR;
	for (unsigned i = 0; i < n; i++) {
		const config_setting_t *e = config_setting_get_elem(node, i);
		if (config_setting_type(e) != CONFIG_TYPE_STRING)
			return PT_ERROR;
		out->items[i] =
			pt_pstrdup(cf->pool, config_setting_get_string(e));
		if (out->items[i] == NULL)
			return PT_ERROR;
	}
	out->n = n;
	return PT_OK;
}

int
pt_conf_set_generic(struct pt_conf *cf, const struct pt_setting *s,
		    const config_setting_t *node, void *conf)
{
	char err[256];

	switch (s->type) {
	case PT_T_FLAG:
		if (config_setting_type(node) != CONFIG_TYPE_BOOL) {
			pt_conf_error(cf, node,
				      "\"%s\" expects true or false", s->name);
			return PT_ERROR;
		}
		*CONF_AT(conf, s, int) = config_setting_get_bool(node) ? 1 : 0;
		return PT_OK;
	case PT_T_INT:
	case PT_T_SIZE:
	case PT_T_DURATION:
		return conf_set_number(cf, s, node, conf);
	case PT_T_STRING:
		if (config_setting_type(node) != CONFIG_TYPE_STRING) {
			pt_conf_error(cf, node, "\"%s\" expects a string",
				      s->name);
			return PT_ERROR;
		}
		*CONF_AT(conf, s, const char *) =
			pt_pstrdup(cf->pool, config_setting_get_string(node));
		return PT_OK;
	case PT_T_ENUM:
		return conf_set_enum(cf, s, node, conf);
	case PT_T_STRLIST:
		if (pt_conf_get_strlist(cf, node,
					CONF_AT(conf, s, struct pt_strlist)) !=
		    PT_OK) {
			pt_conf_error(cf, node,
				      "\"%s\" expects a string or an array of "
				      "strings",
				      s->name);
			return PT_ERROR;
		}
		return PT_OK;
	case PT_T_REGEX:
		if (config_setting_type(node) != CONFIG_TYPE_STRING) {
			pt_conf_error(cf, node,
				      "\"%s\" expects a regex string", s->name);
			return PT_ERROR;
		}
		if (pt_regex_compile(cf->pool, config_setting_get_string(node),
				     0, CONF_AT(conf, s, struct pt_regex *),
				     err, sizeof(err)) != PT_OK) {
			pt_conf_error(cf, node, "\"%s\": %s", s->name, err);
			return PT_ERROR;
		}
		return PT_OK;
	default:
		PT_ASSERT(!"setting without a setter");
		return PT_ERROR;
	}
}

/* ---- paths ------------------------------------------------------------ */

static const char *
conf_join(struct pt_conf *cf, const char *base, const char *path)
{
	if (path[0] == '/' || base == NULL || base[0] == '\0')
		return pt_pstrdup(cf->pool, path);
	return pt_psprintf(cf->pool, "%s%s%s", base,
			   base[strlen(base) - 1] == '/' ? "" : "/", path);
}

const char *
pt_conf_prefix_path(struct pt_conf *cf, const char *path)
{
	return conf_join(cf, cf->cycle->prefix, path);
}

const char *
pt_conf_dir_path(struct pt_conf *cf, const char *path)
{
	return conf_join(cf, cf->cycle->conf_dir, path);
}
