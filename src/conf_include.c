/*
 * conf_include.c: the text libconfig parses, with @include expanded by
 * us rather than by libconfig.
 *
 * libconfig 1.5 (Debian 12's) resolves an include against the process's
 * working directory and knows no wildcards; distributions want
 * a pattern such as *.conf in conf.d. So every line of the form
 *
 *   @include "PATTERN"
 *
 * is replaced by the text of the files PATTERN names (glob(3), sorted;
 * relative to the directory of the main configuration file), recursively,
 * and a map from each line of the result back to its file and line keeps
 * error messages exact. A pattern with a wildcard may match nothing (an
 * empty conf.d); a plain name must exist. Include loops stop at a depth
 * of 16.
 */
#include "core.h"
#include "conf.h"
#include "cycle.h"
#include "log.h"
#include "pool.h"

#include <errno.h>
#include <glob.h>
#include <limits.h>

#define INC_DEPTH 16

struct inc_buf {
	struct pt_conf *cf;
	struct pt_conf_src *src;
	size_t cap, lines_cap;
};

static int
inc_error(struct inc_buf *b, const char *file, unsigned line,
	  const char *fmt, ...) PT_PRINTF(4, 5);

static int
inc_error(struct inc_buf *b, const char *file, unsigned line,
	  const char *fmt, ...)
{
	char msg[PATH_MAX + 256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	b->cf->errors++;
	if (b->cf->to_stderr)
		fprintf(stderr, "portier: %s:%u: %s\n", file, line, msg);
	else
		pt_log(PT_LOG_ERR, 0, "%s:%u: %s", file, line, msg);
	return PT_ERROR;
}

/* Append one line (with its newline) and where it came from. */
static int
inc_append(struct inc_buf *b, const char *p, size_t len, const char *file,
	   unsigned line)
{
	struct pt_conf_src *s = b->src;

	if (s->len + len + 2 > b->cap) {
		size_t cap = PT_MAX(b->cap * 2, s->len + len + 4096);
		char *t = realloc(s->text, cap);
		if (t == NULL)
			return PT_ERROR;
		s->text = t;
		b->cap = cap;
	}
	if (s->nlines == b->lines_cap) {
		size_t cap = b->lines_cap ? b->lines_cap * 2 : 256;
		struct pt_conf_line *l = realloc(s->lines, cap * sizeof(*l));
		if (l == NULL)
			return PT_ERROR;
		s->lines = l;
		b->lines_cap = cap;
	}
	memcpy(s->text + s->len, p, len);
	s->len += len;
	s->text[s->len++] = '\n';
	s->text[s->len] = '\0';
	s->lines[s->nlines].file = file;
	s->lines[s->nlines].line = line;
	s->nlines++;
	return PT_OK;
}

static int inc_file(struct inc_buf *b, const char *path, unsigned depth,
		    const char *from, unsigned from_line);

/* If line is an @include directive, set the pattern and return 1. */
static int
inc_directive(const char *p, size_t len, char *pattern, size_t plen,
	      int *bad)
{
	const char *end = p + len, *q;

	*bad = 0;
	while (p < end && (*p == ' ' || *p == '\t'))
		p++;
	if ((size_t)(end - p) < 8 || memcmp(p, "@include", 8) != 0)
		return 0;
	p += 8;
	while (p < end && (*p == ' ' || *p == '\t'))
		p++;
	if (p == end || *p != '"' || (q = memchr(p + 1, '"', (size_t)(end - p - 1))) == NULL ||
	    (size_t)(q - p - 1) >= plen) {
		*bad = 1;
		return 1;
	}
	memcpy(pattern, p + 1, (size_t)(q - p - 1));
	pattern[q - p - 1] = '\0';
	for (q++; q < end; q++)
		if (*q != ' ' && *q != '\t' && *q != '\r')
			*bad = 1;
	return 1;
}

static int
inc_expand(struct inc_buf *b, const char *pattern, unsigned depth,
	   const char *file, unsigned line)
{
	char full[PATH_MAX];
	glob_t g;
	int rc, wild = strpbrk(pattern, "*?[") != NULL;

	if ((size_t)snprintf(full, sizeof(full), "%s%s%s",
			     pattern[0] == '/' ? "" : b->cf->cycle->conf_dir,
			     pattern[0] == '/' ? "" : "/",
			     pattern) >= sizeof(full))
		return inc_error(b, file, line, "@include: path too long");
	if (!wild)
		return inc_file(b, full, depth + 1, file, line);
	/* no GLOB_ERR: a missing conf.d matches nothing, as in nginx */
	rc = glob(full, 0, NULL, &g);
	if (rc == GLOB_NOMATCH)
		return PT_OK; /* an empty conf.d is fine */
	if (rc != 0)
		return inc_error(b, file, line, "@include \"%s\": %s", pattern,
				 strerror(errno));
	rc = PT_OK;
	for (size_t i = 0; i < g.gl_pathc && rc == PT_OK; i++)
		rc = inc_file(b, g.gl_pathv[i], depth + 1, file, line);
	globfree(&g);
	return rc;
}

static int
inc_file(struct inc_buf *b, const char *path, unsigned depth,
	 const char *from, unsigned from_line)
{
	char pattern[PATH_MAX];
	const char *name, *p, *end;
	char *text = NULL;
	size_t size = 0;
	unsigned line = 0;
	FILE *f;
	int rc = PT_OK, bad;

	if (depth > INC_DEPTH)
		return inc_error(b, from, from_line,
				 "@include nested too deep (a loop?)");
	f = fopen(path, "re");
	if (f == NULL) {
		if (from == NULL) {
			b->cf->errors++;
			if (b->cf->to_stderr)
				fprintf(stderr, "portier: %s: cannot read: %s\n",
					path, strerror(errno));
			else
				pt_log(PT_LOG_ERR, errno, "%s: cannot read",
				       path);
			return PT_ERROR;
		}
		return inc_error(b, from, from_line,
				 "cannot open include file \"%s\": %s", path,
				 strerror(errno));
	}
	name = pt_pstrdup(b->cf->pool, path);
	if (name == NULL || getdelim(&text, &size, '\0', f) < 0) {
		rc = ferror(f) ? inc_error(b, path, 1, "read error: %s",
					   strerror(errno))
			       : PT_OK;
		if (name == NULL)
			rc = PT_ERROR;
	}
	fclose(f);
	for (p = text; rc == PT_OK && p != NULL && *p != '\0'; p = end + 1) {
		end = strchr(p, '\n');
		if (end == NULL)
			end = p + strlen(p);
		line++;
		if (inc_directive(p, (size_t)(end - p), pattern,
				  sizeof(pattern), &bad)) {
			rc = bad ? inc_error(b, name, line,
					     "invalid @include (expected "
					     "@include \"file\" on a line of "
					     "its own)")
				 : inc_expand(b, pattern, depth, name, line);
		} else {
			rc = inc_append(b, p, (size_t)(end - p), name, line);
		}
		if (*end == '\0')
			break;
	}
	free(text);
	return rc;
}

int
pt_conf_src_load(struct pt_conf *cf, const char *file,
		 struct pt_conf_src *src)
{
	struct inc_buf b = { cf, src, 0, 0 };

	memset(src, 0, sizeof(*src));
	if (inc_file(&b, file, 0, NULL, 0) != PT_OK)
		return PT_ERROR;
	if (src->text == NULL) {
		/* an empty file: libconfig wants a string */
		src->text = strdup("");
		if (src->text == NULL)
			return PT_ERROR;
	}
	return PT_OK;
}

void
pt_conf_src_free(struct pt_conf_src *src)
{
	free(src->text);
	free(src->lines);
	memset(src, 0, sizeof(*src));
}

int
pt_conf_src_where(const struct pt_conf_src *src, unsigned line,
		  const char **file, unsigned *fline)
{
	if (src == NULL || line == 0 || line > src->nlines)
		return PT_ERROR;
	*file = src->lines[line - 1].file;
	*fline = src->lines[line - 1].line;
	return PT_OK;
}
