/*
 * mime.c: the table from file extension to media type, loaded at config
 * time from a file in the format of /etc/mime.types ("type ext ext ...",
 * '#' comments). Lookup is one hash probe sequence; extensions are
 * compared case-insensitively.
 */
#include "core.h"
#include "conf.h"
#include "cycle.h"
#include "http.h"
#include "pool.h"

#include <ctype.h>
#include <errno.h>

struct mime_entry {
	const char *ext; /* lower-case, NULL: empty slot */
	size_t len;
	struct pt_str type;
};

struct pt_http_mime {
	struct mime_entry *slots;
	size_t mask;
};

/* Used when no mime_types file is configured and the default is absent. */
static const char *const mime_builtin[][2] = {
	{ "html", "text/html" },	   { "htm", "text/html" },
	{ "css", "text/css" },		   { "js", "text/javascript" },
	{ "mjs", "text/javascript" },	   { "json", "application/json" },
	{ "txt", "text/plain" },	   { "xml", "application/xml" },
	{ "svg", "image/svg+xml" },	   { "png", "image/png" },
	{ "jpg", "image/jpeg" },	   { "jpeg", "image/jpeg" },
	{ "gif", "image/gif" },		   { "webp", "image/webp" },
	{ "ico", "image/x-icon" },	   { "avif", "image/avif" },
	{ "woff", "font/woff" },	   { "woff2", "font/woff2" },
	{ "pdf", "application/pdf" },	   { "wasm", "application/wasm" },
	{ "zip", "application/zip" },	   { "gz", "application/gzip" },
	{ "mp4", "video/mp4" },		   { "webm", "video/webm" },
	{ "mp3", "audio/mpeg" },	   { "ogg", "audio/ogg" },
};

static size_t
mime_hash(const char *s, size_t len)
{
	size_t h = 5381;

	for (size_t i = 0; i < len; i++)
		h = h * 33 + pt_tolower((unsigned char)s[i]);
	return h;
}

static void
mime_put(struct pt_http_mime *m, const char *ext, size_t len,
	 struct pt_str type)
{
	size_t i = mime_hash(ext, len) & m->mask;

	while (m->slots[i].ext != NULL) {
		if (m->slots[i].len == len &&
		    pt_strncasecmp(m->slots[i].ext, ext, len) == 0)
			return; /* first definition wins */
		i = (i + 1) & m->mask;
	}
	m->slots[i].ext = ext;
	m->slots[i].len = len;
	m->slots[i].type = type;
}

static int
mime_alloc(struct pt_conf *cf, struct pt_http_mime **out, size_t n)
{
	struct pt_http_mime *m = pt_pcalloc(cf->pool, sizeof(*m));
	size_t size = 16;

	while (size < n * 2)
		size *= 2;
	if (m == NULL)
		return PT_ERROR;
	m->slots = pt_pcalloc(cf->pool, size * sizeof(*m->slots));
	if (m->slots == NULL)
		return PT_ERROR;
	m->mask = size - 1;
	*out = m;
	return PT_OK;
}

static int
mime_parse(struct pt_conf *cf, struct pt_http_mime **out, char *text)
{
	size_t n = 0;
	char *save = NULL, *line;

	for (char *p = text; *p; p++)
		n += *p == ' ' || *p == '\t';
	if (mime_alloc(cf, out, n + 1) != PT_OK)
		return PT_ERROR;
	for (line = strtok_r(text, "\n", &save); line != NULL;
	     line = strtok_r(NULL, "\n", &save)) {
		char *hash = strchr(line, '#'), *ws = NULL, *tok;
		struct pt_str type;

		if (hash != NULL)
			*hash = '\0';
		tok = strtok_r(line, " \t\r", &ws);
		if (tok == NULL)
			continue;
		type.data = tok;
		type.len = strlen(tok);
		while ((tok = strtok_r(NULL, " \t\r;", &ws)) != NULL)
			mime_put(*out, tok, strlen(tok), type);
	}
	return PT_OK;
}

int
pt_http_mime_load(struct pt_conf *cf, struct pt_http_main_conf *mc)
{
	const char *path = pt_conf_dir_path(
		cf, mc->mime_types ? mc->mime_types : "mime.types");
	FILE *f;
	long size;
	char *text;

	if (path == NULL)
		return PT_ERROR;
	f = fopen(path, "re");
	if (f == NULL && mc->mime_types == NULL) {
		if (mime_alloc(cf, &mc->mime, PT_ARRAY_SIZE(mime_builtin)) !=
		    PT_OK)
			return PT_ERROR;
		for (size_t i = 0; i < PT_ARRAY_SIZE(mime_builtin); i++)
			mime_put(mc->mime, mime_builtin[i][0],
				 strlen(mime_builtin[i][0]),
				 (struct pt_str){ mime_builtin[i][1],
						  strlen(mime_builtin[i][1]) });
		return PT_OK;
	}
	if (f == NULL) {
		pt_conf_error(cf, mc->mime_types_node,
			      "\"mime_types\": cannot open %s: %s",
			      path, strerror(errno));
		return PT_ERROR;
	}
	if (fseek(f, 0, SEEK_END) != 0 || (size = ftell(f)) < 0 ||
	    size > 16 * 1024 * 1024 || fseek(f, 0, SEEK_SET) != 0) {
		fclose(f);
		pt_conf_error(cf, mc->mime_types_node,
			      "\"mime_types\": cannot read %s", path);
		return PT_ERROR;
	}
	text = pt_pnalloc(cf->pool, (size_t)size + 1);
	if (text == NULL || fread(text, 1, (size_t)size, f) != (size_t)size) {
		fclose(f);
		pt_conf_error(cf, mc->mime_types_node,
			      "\"mime_types\": cannot read %s", path);
		return PT_ERROR;
	}
	fclose(f);
	text[size] = '\0';
	mc->mime_types = path;
	return mime_parse(cf, &mc->mime, text);
}

struct pt_str
pt_http_mime_type(struct pt_http_request *r, struct pt_str ext)
{
	struct pt_http_main_conf *mc =
		r->conn->ls->cycle->main_conf[PT_HTTP_CORE_INDEX];
	const struct pt_http_mime *m = mc->mime;
	const char *def = pt_http_core_loc(r)->default_type;

	if (ext.len > 0 && m != NULL) {
		size_t i = mime_hash(ext.data, ext.len) & m->mask;
		while (m->slots[i].ext != NULL) {
			if (m->slots[i].len == ext.len &&
			    pt_strncasecmp(m->slots[i].ext, ext.data,
					   ext.len) == 0)
				return m->slots[i].type;
			i = (i + 1) & m->mask;
		}
	}
	return (struct pt_str){ def, strlen(def) };
}
