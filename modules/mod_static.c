/*
 * mod_static.c: files from disk.
 *
 *   root = "/srv/www";          the URI path is appended to it
 *   index = [ "index.html" ];   tried in order for a path ending in '/'
 *   sendfile = true;            false: copy through user space
 *
 * Validators are nginx's: ETag "<mtime hex>-<size hex>" and Last-Modified,
 * honoured in RFC 9110's order (If-Match, If-Unmodified-Since,
 * If-None-Match, If-Modified-Since, then Range with If-Range). Ranges give
 * 206 with one part, or multipart/byteranges with several; an
 * unsatisfiable set gives 416.
 *
 * The URI reaching here is decoded and has no dot segments (the parser
 * refuses a path that climbs above '/'), so root + uri stays under root
 * as far as names go; symbolic links are followed, as nginx does.
 * Small files are read into memory so that head and body leave in one
 * system call; larger ones go out with sendfile(2).
 */
#include "core.h"
#include "conf.h"
#include "http.h"
#include "log.h"
#include "pool.h"
#include "ptime.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#define STATIC_SMALL_FILE 16384
#define STATIC_MAX_RANGES 16

extern const struct pt_module pt_mod_static;

struct static_loc_conf {
	const char *root;
	struct pt_strlist index;
	int sendfile;
};

struct static_range {
	off_t from, to; /* inclusive */
};

static unsigned static_index;

static int
static_set_root(struct pt_conf *cf, const struct pt_setting *s,
		const config_setting_t *node, void *conf)
{
	struct static_loc_conf *sc = conf;
	size_t len;

	if (pt_conf_set_generic(cf, s, node, conf) != PT_OK)
		return PT_ERROR;
	sc->root = pt_conf_prefix_path(cf, sc->root);
	if (sc->root == NULL)
		return PT_ERROR;
	len = strlen(sc->root);
	if (len > 1 && sc->root[len - 1] == '/')
		((char *)(uintptr_t)sc->root)[len - 1] = '\0';
	return PT_OK;
}

#define SOFF(f) offsetof(struct static_loc_conf, f)
static const struct pt_setting static_settings[] = {
	{ "root", PT_T_STRING, PT_SCOPE_HTTP, PT_STORE_LOC, SOFF(root),
	  static_set_root, NULL },
	{ "index", PT_T_STRLIST, PT_SCOPE_HTTP, PT_STORE_LOC, SOFF(index),
	  NULL, NULL },
	{ "sendfile", PT_T_FLAG, PT_SCOPE_HTTP, PT_STORE_LOC, SOFF(sendfile),
	  NULL, NULL },
	{ NULL, 0, 0, 0, 0, NULL, NULL }
};

static void *
static_create_loc(struct pt_conf *cf)
{
	struct static_loc_conf *sc = pt_pcalloc(cf->pool, sizeof(*sc));

	if (sc != NULL)
		sc->sendfile = PT_UNSET;
	return sc;
}

static const char *static_default_index[] = { "index.html" };

static int
static_merge_loc(struct pt_conf *cf, void *parent, void *child)
{
	struct static_loc_conf *p = parent, *c = child;

	(void)cf;
	PT_MERGE_PTR(c->root, p->root, NULL);
	PT_MERGE_LIST(c->index, p->index);
	if (c->index.items == NULL) {
		c->index.items = static_default_index;
		c->index.n = 1;
	}
	PT_MERGE_INT(c->sendfile, p->sendfile, 1);
	return PT_OK;
}

static int
static_postconfig(struct pt_conf *cf)
{
	(void)cf;
	static_index = pt_module_index(&pt_mod_static);
	return PT_OK;
}

/* ---- validators ------------------------------------------------------------ */

/* Does an If-Match / If-None-Match list contain etag? */
static int
static_etag_match(struct pt_str list, struct pt_str etag, int weak)
{
	const char *p = list.data, *end = p + list.len;

	while (p < end) {
		const char *start;
		while (p < end && (*p == ' ' || *p == '\t' || *p == ','))
			p++;
		if (p == end)
			break;
		if (*p == '*')
			return 1;
		start = p;
		if (end - p > 2 && p[0] == 'W' && p[1] == '/') {
			if (!weak)
				goto skip;
			p += 2;
		}
		if (*p != '"')
			return 0;
		start = p++;
		while (p < end && *p != '"')
			p++;
		if (p == end)
			return 0;
		p++;
		if ((size_t)(p - start) == etag.len &&
		    memcmp(start, etag.data, etag.len) == 0)
			return 1;
		continue;
	skip:
		while (p < end && *p != ',')
			p++;
		(void)start;
	}
	return 0;
}

static time_t
static_hdr_time(struct pt_http_request *r, unsigned id)
{
	const struct pt_http_header *h = r->h.known[id];

	return h ? pt_time_parse_http(h->value.data, h->value.len) : -1;
}

/* RFC 9110 section 13.2.2. Returns 0, 304 or 412. */
static int
static_preconditions(struct pt_http_request *r, time_t mtime)
{
	const struct pt_http_header *im = r->h.known[PT_H_IF_MATCH];
	const struct pt_http_header *inm = r->h.known[PT_H_IF_NONE_MATCH];
	time_t t;

	if (im != NULL) {
		if (!static_etag_match(im->value, r->out.etag, 0))
			return 412;
	} else if ((t = static_hdr_time(r, PT_H_IF_UNMODIFIED_SINCE)) != -1 &&
		   mtime > t) {
		return 412;
	}
	if (inm != NULL) {
		if (static_etag_match(inm->value, r->out.etag, 1))
			return 304;
	} else if ((t = static_hdr_time(r, PT_H_IF_MODIFIED_SINCE)) != -1 &&
		   mtime <= t) {
		return 304;
	}
	return 0;
}

/* ---- ranges ------------------------------------------------------------------ */

static int
static_parse_num(const char **pp, const char *end, off_t *out)
{
	const char *p = *pp;
	off_t v = 0;

	if (p == end || *p < '0' || *p > '9')
		return PT_ERROR;
	while (p < end && *p >= '0' && *p <= '9') {
		if (v > (INT64_MAX - 9) / 10)
			return PT_ERROR;
		v = v * 10 + (*p++ - '0');
	}
	*pp = p;
	*out = v;
	return PT_OK;
}

/*
 * Parse "bytes=a-b, c-, -n" against size. Returns the number of
 * satisfiable ranges (0: 416), or -1 when the header is invalid or not
 * in bytes (then it is ignored, as RFC 9110 allows). Ranges that add up
 * to more than the file (overlapping ones, as "bytes=0-,0-,0-" would
 * multiply a large file) are ignored too, as nginx does (RFC 9110
 * section 14.2 lets a server ignore them).
 */
static int
static_ranges(struct pt_str v, off_t size, struct static_range *out)
{
	const char *p = v.data, *end = p + v.len;
	int n = 0, any = 0;
	off_t total = 0;

	if (v.len < 6 || pt_strncasecmp(p, "bytes=", 6) != 0)
		return -1;
	p += 6;
	while (p < end) {
		off_t from, to;
		while (p < end && (*p == ' ' || *p == '\t'))
			p++;
		if (p < end && *p == '-') {
			p++;
			if (static_parse_num(&p, end, &to) != PT_OK)
				return -1;
			from = to >= size ? 0 : size - to;
			to = size - 1;
			if (to < from || size == 0)
				goto next; /* "-0", or an empty file */
		} else {
			if (static_parse_num(&p, end, &from) != PT_OK ||
			    p == end || *p++ != '-')
				return -1;
			if (p < end && *p >= '0' && *p <= '9') {
				if (static_parse_num(&p, end, &to) != PT_OK ||
				    to < from)
					return -1;
			} else {
				to = size - 1;
			}
			if (from >= size)
				goto next;
			if (to >= size)
				to = size - 1;
		}
		if (n == STATIC_MAX_RANGES)
			return -1;
		out[n].from = from;
		out[n].to = to;
		n++;
	next:
		any = 1;
		while (p < end && (*p == ' ' || *p == '\t'))
			p++;
		if (p < end && *p++ != ',')
			return -1;
	}
	if (!any)
		return -1;
	for (int i = 0; i < n; i++)
		total += out[i].to + 1 - out[i].from;
	return total > size ? -1 : n;
}

static int
static_range_applies(struct pt_http_request *r, time_t mtime)
{
	const struct pt_http_header *ir = r->h.known[PT_H_IF_RANGE];
	time_t t;

	if (ir == NULL)
		return 1;
	if (ir->value.len > 0 && ir->value.data[0] == '"')
		return ir->value.len == r->out.etag.len &&
		       memcmp(ir->value.data, r->out.etag.data,
			      r->out.etag.len) == 0;
	t = pt_time_parse_http(ir->value.data, ir->value.len);
	return t != -1 && t == mtime;
}

static int
static_send_multipart(struct pt_http_request *r, int fd, off_t size,
		      const struct static_range *rg, int n, struct pt_str type,
		      int sendfile_on)
{
	struct pt_chain *head = NULL, **tail = &head, *cl;
	char boundary[24];
	int64_t total = 0;

	snprintf(boundary, sizeof(boundary), "%016llx",
		 ((uint64_t)pt_now.wall_ms * 2654435761u) ^
			 (unsigned long long)r->conn->number);
	for (int i = 0; i <= n; i++) {
		char *part = i < n
			? pt_psprintf(r->pool,
				      "\r\n--%s\r\nContent-Type: %.*s\r\n"
				      "Content-Range: bytes %lld-%lld/%lld\r\n\r\n",
				      boundary, (int)type.len, type.data,
				      (long long)rg[i].from, (long long)rg[i].to,
				      (long long)size)
			: pt_psprintf(r->pool, "\r\n--%s--\r\n", boundary);
		if (part == NULL || (cl = pt_chain_mem(r->pool, part,
						       strlen(part))) == NULL)
			return PT_ERROR;
		*tail = cl;
		tail = &cl->next;
		total += (int64_t)strlen(part);
		if (i == n)
			break;
		cl = pt_chain_file(r->pool, fd, rg[i].from, rg[i].to + 1);
		if (cl == NULL)
			return PT_ERROR;
		cl->buf->no_sendfile = !sendfile_on;
		*tail = cl;
		tail = &cl->next;
		total += rg[i].to + 1 - rg[i].from;
	}
	for (cl = head; cl->next != NULL; cl = cl->next)
		;
	cl->buf->last_buf = 1;
	r->out.status = 206;
	r->out.content_length = total;
	r->out.content_type.data = pt_psprintf(
		r->pool, "multipart/byteranges; boundary=%s", boundary);
	if (r->out.content_type.data == NULL)
		return PT_ERROR;
	r->out.content_type.len = strlen(r->out.content_type.data);
	if (pt_http_send_header(r) != PT_OK)
		return PT_ERROR;
	return pt_http_output(r, head);
}

/* ---- sending --------------------------------------------------------------- */

static void
static_close_fd(void *data)
{
	close((int)(intptr_t)data);
}

static int
static_body(struct pt_http_request *r, int fd, off_t from, off_t to,
	    int sendfile_on)
{
	struct pt_chain *cl;
	off_t len = to - from;

	if (len <= STATIC_SMALL_FILE) {
		/* small: one buffer, one system call with the head */
		char *p = pt_pnalloc(r->pool, (size_t)len + 1);
		ssize_t n = p ? pread(fd, p, (size_t)len, from) : -1;
		if (n != len) {
			pt_http_log(r, PT_LOG_ERR, n < 0 ? errno : 0,
				    "reading the file failed");
			return PT_ERROR;
		}
		cl = pt_chain_mem(r->pool, p, (size_t)len);
	} else {
		cl = pt_chain_file(r->pool, fd, from, to);
		if (cl != NULL)
			cl->buf->no_sendfile = !sendfile_on;
	}
	if (cl == NULL)
		return PT_ERROR;
	cl->buf->last_buf = 1;
	return pt_http_output(r, cl);
}

static int
static_file(struct pt_http_request *r, const struct static_loc_conf *sc,
	    int fd, const struct stat *st, struct pt_str ext)
{
	char etag[48];
	struct static_range rg[STATIC_MAX_RANGES];
	int n = -1, rc;

	snprintf(etag, sizeof(etag), "\"%llx-%llx\"",
		 (unsigned long long)st->st_mtime,
		 (unsigned long long)st->st_size);
	r->out.etag.data = pt_pstrdup(r->pool, etag);
	r->out.etag.len = strlen(etag);
	r->out.last_modified = st->st_mtime;
	r->out.content_type = pt_http_mime_type(r, ext);
	if (r->out.etag.data == NULL)
		return 500;
	rc = static_preconditions(r, st->st_mtime);
	if (rc == 412)
		return 412;
	if (rc == 304) {
		/* RFC 9110 section 15.4.5: no representation metadata
		 * beyond the validators */
		r->out.status = 304;
		r->out.content_type.len = 0;
		if (pt_http_send_header(r) != PT_OK)
			return PT_ERROR;
		return pt_http_output(r, NULL) == PT_ERROR ? PT_ERROR : PT_DONE;
	}
	if (pt_http_add_header(r, "Accept-Ranges", 13, "bytes", 5) != PT_OK)
		return 500;
	if (r->h.known[PT_H_RANGE] != NULL && static_range_applies(r, st->st_mtime))
		n = static_ranges(r->h.known[PT_H_RANGE]->value, st->st_size,
				  rg);
	if (n == 0) {
		r->out.content_length = st->st_size;
		return 416;
	}
	if (n > 1) {
		rc = static_send_multipart(r, fd, st->st_size, rg, n,
					   r->out.content_type, sc->sendfile);
		return rc == PT_ERROR ? PT_ERROR : PT_DONE;
	}
	if (n == 1) {
		char *cr = pt_psprintf(r->pool, "bytes %lld-%lld/%lld",
				       (long long)rg[0].from, (long long)rg[0].to,
				       (long long)st->st_size);
		if (cr == NULL)
			return 500;
		r->out.content_range.data = cr;
		r->out.content_range.len = strlen(cr);
		r->out.status = 206;
		r->out.content_length = rg[0].to + 1 - rg[0].from;
	} else {
		r->out.status = 200;
		r->out.content_length = st->st_size;
		rg[0].from = 0;
		rg[0].to = st->st_size - 1;
	}
	if (pt_http_send_header(r) != PT_OK)
		return PT_ERROR;
	if (r->header_only)
		return pt_http_output(r, NULL) == PT_ERROR ? PT_ERROR : PT_DONE;
	rc = static_body(r, fd, rg[0].from, rg[0].to + 1, sc->sendfile);
	return rc == PT_ERROR ? PT_ERROR : PT_DONE;
}

static int
static_errno_status(struct pt_http_request *r, const char *path, int err)
{
	switch (err) {
	case ENOENT:
	case ENOTDIR:
	case ENAMETOOLONG:
		pt_http_log(r, PT_LOG_INFO, err, "open(\"%s\")", path);
		return 404;
	case EACCES:
	case EPERM:
	case ELOOP:
		pt_http_log(r, PT_LOG_ERR, err, "open(\"%s\")", path);
		return 403;
	default:
		pt_http_log(r, PT_LOG_CRIT, err, "open(\"%s\")", path);
		return 500;
	}
}

/* Open path as a regular file; 0 and *fd set, or a status. */
static int
static_open(struct pt_http_request *r, const char *path, int *fd,
	    struct stat *st)
{
	*fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (*fd < 0)
		return static_errno_status(r, path, errno);
	if (pt_pool_cleanup_add(r->pool, static_close_fd,
				(void *)(intptr_t)*fd) != PT_OK) {
		close(*fd);
		return 500;
	}
	if (fstat(*fd, st) < 0)
		return static_errno_status(r, path, errno);
	return 0;
}

/*
 * 301 to the directory with a slash. The path is decoded: the bytes that
 * would change its meaning in a URI ('%', '?', '#') are encoded again
 * here; the core's header writer encodes those a URI cannot hold.
 */
static int
static_redirect_dir(struct pt_http_request *r)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t n = r->uri.len + 2 + r->args.len;
	char *loc, *p;

	for (size_t i = 0; i < r->uri.len; i++)
		n += strchr("%?#", r->uri.data[i]) != NULL ? 2 : 0;
	loc = p = pt_pnalloc(r->pool, n);
	if (loc == NULL)
		return 500;
	for (size_t i = 0; i < r->uri.len; i++) {
		unsigned char ch = (unsigned char)r->uri.data[i];
		if (ch == '%' || ch == '?' || ch == '#') {
			*p++ = '%';
			*p++ = hex[ch >> 4];
			*p++ = hex[ch & 15];
		} else {
			*p++ = (char)ch;
		}
	}
	*p++ = '/';
	if (r->h.has_query) {
		*p++ = '?';
		memcpy(p, r->args.data, r->args.len);
		p += r->args.len;
	}
	r->out.location.data = loc;
	r->out.location.len = (size_t)(p - loc);
	return 301;
}

static int
static_handler(struct pt_http_request *r)
{
	const struct static_loc_conf *sc = r->loc_conf[static_index];
	size_t rlen, maxidx = 0;
	struct pt_str ext = r->exten;
	struct stat st;
	char *path;
	int fd, rc;

	if (sc->root == NULL || r->uri.len == 0 || r->uri.data[0] != '/')
		return PT_DECLINED;
	if (!(r->h.method_id & (PT_HTTP_GET | PT_HTTP_HEAD))) {
		/* RFC 9110 section 15.5.6: a 405 lists what is allowed */
		if (pt_http_add_header(r, "Allow", 5, "GET, HEAD", 9) != PT_OK)
			return 500;
		return 405;
	}
	rc = pt_http_discard_body(r);
	if (rc != PT_OK)
		return rc;
	for (unsigned i = 0; i < sc->index.n; i++)
		maxidx = PT_MAX(maxidx, strlen(sc->index.items[i]));
	rlen = strlen(sc->root);
	path = pt_pnalloc(r->pool, rlen + r->uri.len + maxidx + 1);
	if (path == NULL)
		return 500;
	memcpy(path, sc->root, rlen);
	memcpy(path + rlen, r->uri.data, r->uri.len);
	path[rlen + r->uri.len] = '\0';

	if (r->uri.data[r->uri.len - 1] == '/') {
		char *name = path + rlen + r->uri.len;
		for (unsigned i = 0; i < sc->index.n; i++) {
			strcpy(name, sc->index.items[i]);
			fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
			if (fd < 0)
				continue;
			close(fd);
			rc = static_open(r, path, &fd, &st);
			if (rc != 0)
				return rc;
			if (!S_ISREG(st.st_mode))
				continue;
			const char *dot = strrchr(name, '.');
			ext.data = dot ? dot + 1 : "";
			ext.len = dot ? strlen(dot + 1) : 0;
			return static_file(r, sc, fd, &st, ext);
		}
		*name = '\0';
		if (access(path, F_OK) != 0)
			return static_errno_status(r, path, errno);
		pt_http_log(r, PT_LOG_ERR, 0, "directory index of \"%s\" is "
					      "forbidden",
			    path);
		return 403;
	}
	rc = static_open(r, path, &fd, &st);
	if (rc != 0)
		return rc;
	if (S_ISDIR(st.st_mode))
		return static_redirect_dir(r);
	if (!S_ISREG(st.st_mode)) {
		pt_http_log(r, PT_LOG_ERR, 0, "\"%s\" is not a regular file",
			    path);
		return 403;
	}
	return static_file(r, sc, fd, &st, ext);
}

static const struct pt_hook static_hooks[] = {
	{ PT_PHASE_CONTENT, 1000, static_handler, NULL, NULL },
	{ 0, 0, NULL, NULL, NULL }
};

const struct pt_module pt_mod_static = {
	.name = "static",
	.settings = static_settings,
	.create_loc = static_create_loc,
	.merge_loc = static_merge_loc,
	.postconfig = static_postconfig,
	.hooks = static_hooks,
};
