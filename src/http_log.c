/*
 * http_log.c: the access log (module "http_log").
 *
 *   access_log = "off";
 *   access_log = "/var/log/portier/access.log";      # combined format
 *   access_log = { path = "..."; format = "json"; buffer = "64k"; flush = "1s"; };
 *
 * Each distinct path is one log file of the cycle, opened by the master
 * (so it may be root-owned territory) and handed to the workers. Every
 * worker keeps its own buffer per file and writes whole lines with one
 * write(2): lines never interleave, and a buffered line reaches the file
 * at most `flush` later, on USR1, on reload and on exit.
 */
#include "core.h"
#include "conf.h"
#include "cycle.h"
#include "http.h"
#include "log.h"
#include "pool.h"
#include "ptime.h"
#include "worker.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#define LOG_LINE_MAX 8192

struct log_file {
	const char *path;
	int fd;
	size_t bufsize;     /* 0: unbuffered */
	int64_t flush_ms;
	char *buf;          /* per worker */
	size_t len;
	struct pt_timer timer;
	struct pt_cycle *cycle;
	struct log_file *next;
};

struct log_fmt {
	struct pt_tpl tpl;
	int json;
};

struct log_loc_conf {
	int set;   /* 0: inherit */
	int off;
	struct log_file *file;
	struct log_fmt *fmt;
};

struct log_main_conf {
	struct log_file *files;
	struct log_fmt *combined, *json;
};

static unsigned log_index;

static const char log_combined[] =
	"$remote_addr - $remote_user [$time_local] \"$request\" $status "
	"$body_bytes_sent \"$http_referer\" \"$http_user_agent\"";
static const char log_json[] =
	"{\"time\":\"$time_iso8601\",\"remote_addr\":\"$remote_addr\","
	"\"request_id\":\"$request_id\",\"host\":\"$host\","
	"\"request\":\"$request\",\"status\":$status,"
	"\"body_bytes_sent\":$body_bytes_sent,"
	"\"request_time\":$request_time,\"http_referer\":\"$http_referer\","
	"\"http_user_agent\":\"$http_user_agent\"}";

/* ---- escaping -------------------------------------------------------------- */

static size_t
log_escape_text(char *dst, const char *src, size_t len)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t n = 0;

	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)src[i];
		if (ch < 0x20 || ch >= 0x7f || ch == '"' || ch == '\\') {
			dst[n++] = '\\';
			dst[n++] = 'x';
			dst[n++] = hex[ch >> 4];
			dst[n++] = hex[ch & 15];
		} else {
			dst[n++] = (char)ch;
		}
	}
	return n;
}

/* Length of the valid UTF-8 sequence at s (RFC 3629: no overlongs, no
 * surrogates, nothing above U+10FFFF), or 0. */
static size_t
log_utf8_len(const unsigned char *s, size_t len)
{
	unsigned char c = s[0], lo = 0x80, hi = 0xbf;
	size_t n;

	if (c >= 0xc2 && c <= 0xdf)
		n = 2;
	else if (c >= 0xe0 && c <= 0xef)
		n = 3;
	else if (c >= 0xf0 && c <= 0xf4)
		n = 4;
	else
		return 0;
	if (n > len)
		return 0;
	if (c == 0xe0)
		lo = 0xa0;
	else if (c == 0xed)
		hi = 0x9f;
	else if (c == 0xf0)
		lo = 0x90;
	else if (c == 0xf4)
		hi = 0x8f;
	if (s[1] < lo || s[1] > hi)
		return 0;
	for (size_t i = 2; i < n; i++)
		if (s[i] < 0x80 || s[i] > 0xbf)
			return 0;
	return n;
}

/*
 * JSON text is UTF-8: valid sequences pass, and a byte that is not part
 * of one (a client may send any obs-text) is written as \u00XX, its
 * Latin-1 code point, so that every line stays valid JSON. At most 6
 * bytes out per byte in.
 */
static size_t
log_escape_json(char *dst, const char *src, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *s = (const unsigned char *)src;
	size_t n = 0;

	for (size_t i = 0; i < len; i++) {
		unsigned char ch = s[i];
		size_t u;
		if (ch == '"' || ch == '\\') {
			dst[n++] = '\\';
			dst[n++] = (char)ch;
		} else if (ch >= 0x80 &&
			   (u = log_utf8_len(s + i, len - i)) > 0) {
			memcpy(dst + n, s + i, u);
			n += u;
			i += u - 1;
		} else if (ch < 0x20 || ch >= 0x7f) {
			memcpy(dst + n, "\\u00", 4);
			n += 4;
			dst[n++] = hex[ch >> 4];
			dst[n++] = hex[ch & 15];
		} else {
			dst[n++] = (char)ch;
		}
	}
	return n;
}

/* ---- configuration ------------------------------------------------------- */

static void *
log_create_main(struct pt_conf *cf)
{
	return pt_pcalloc(cf->pool, sizeof(struct log_main_conf));
}

static void *
log_create_loc(struct pt_conf *cf)
{
	return pt_pcalloc(cf->pool, sizeof(struct log_loc_conf));
}

static int
log_merge_loc(struct pt_conf *cf, void *parent, void *child)
{
	struct log_loc_conf *p = parent, *c = child;

	(void)cf;
	if (!c->set && p != c)
		*c = *p;
	if (!c->set) {
		c->set = 1;
		c->off = 1;
	}
	return PT_OK;
}

static struct log_main_conf *
log_main(struct pt_conf *cf)
{
	return cf->main_conf[pt_module_index(&pt_http_log_module)];
}

static struct log_fmt *
log_format(struct pt_conf *cf, const config_setting_t *node, const char *f)
{
	struct log_main_conf *mc = log_main(cf);
	struct log_fmt **cache = NULL, *fmt;

	if (strcmp(f, "combined") == 0) {
		cache = &mc->combined;
		f = log_combined;
	} else if (strcmp(f, "json") == 0) {
		cache = &mc->json;
		f = log_json;
	}
	if (cache != NULL && *cache != NULL)
		return *cache;
	fmt = pt_pcalloc(cf->pool, sizeof(*fmt));
	if (fmt == NULL || pt_tpl_compile(cf, node, f, &fmt->tpl) != PT_OK)
		return NULL;
	fmt->json = cache == &mc->json;
	if (cache != NULL)
		*cache = fmt;
	return fmt;
}

static struct log_file *
log_file(struct pt_conf *cf, const config_setting_t *node, const char *path,
	 int64_t bufsize, int64_t flush_ms)
{
	struct log_main_conf *mc = log_main(cf);
	const char *full = pt_conf_prefix_path(cf, path);
	struct log_file *f;

	if (full == NULL)
		return NULL;
	for (f = mc->files; f != NULL; f = f->next) {
		if (strcmp(f->path, full) != 0)
			continue;
		if ((size_t)bufsize != f->bufsize || flush_ms != f->flush_ms)
			pt_conf_warn(cf, node,
				     "\"access_log\": %s is used with other "
				     "buffer/flush settings before; the "
				     "first ones apply",
				     full);
		return f;
	}
	f = pt_pcalloc(cf->pool, sizeof(*f));
	if (f == NULL)
		return NULL;
	f->path = full;
	f->fd = -1;
	f->bufsize = (size_t)bufsize;
	f->flush_ms = flush_ms;
	f->next = mc->files;
	mc->files = f;
	return f;
}

static int
log_set_group(struct pt_conf *cf, const config_setting_t *node,
	      struct log_loc_conf *lc)
{
	static const struct pt_range bufr = { 0, 16 * 1024 * 1024 };
	static const struct pt_range flr = { 1, 3600000 };
	static const struct pt_setting sub[] = {
		{ "buffer", PT_T_SIZE, 0, 0, 0, NULL, &bufr },
		{ "flush", PT_T_DURATION, 0, 0, sizeof(int64_t), NULL, &flr },
	};
	int64_t vals[2] = { 0, 1000 };
	const char *path = NULL, *format = "combined";
	int n = config_setting_length(node);

	for (int i = 0; i < n; i++) {
		const config_setting_t *e =
			config_setting_get_elem(node, (unsigned)i);
		const char *name = config_setting_name(e);
		if (strcmp(name, "path") == 0 || strcmp(name, "format") == 0) {
			if (config_setting_type(e) != CONFIG_TYPE_STRING) {
				pt_conf_error(cf, e,
					      "\"access_log.%s\" expects a "
					      "string",
					      name);
				return PT_ERROR;
			}
			*(name[0] == 'p' ? &path : &format) =
				config_setting_get_string(e);
		} else if (strcmp(name, "buffer") == 0) {
			if (pt_conf_set_generic(cf, &sub[0], e, vals) != PT_OK)
				return PT_ERROR;
		} else if (strcmp(name, "flush") == 0) {
			if (pt_conf_set_generic(cf, &sub[1], e, vals) != PT_OK)
				return PT_ERROR;
		} else {
			pt_conf_error(cf, e,
				      "unknown setting \"access_log.%s\" "
				      "(known: path, format, buffer, flush)",
				      name);
			return PT_ERROR;
		}
	}
	if (path == NULL) {
		pt_conf_error(cf, node, "\"access_log\" group without \"path\"");
		return PT_ERROR;
	}
	lc->fmt = log_format(cf, node, format);
	lc->file = log_file(cf, node, path, vals[0], vals[1]);
	return lc->fmt && lc->file ? PT_OK : PT_ERROR;
}

static int
log_set(struct pt_conf *cf, const struct pt_setting *s,
	const config_setting_t *node, void *conf)
{
	struct log_loc_conf *lc = conf;
	const char *v;

	lc->set = 1;
	if (config_setting_is_group(node))
		return log_set_group(cf, node, lc);
	if (config_setting_type(node) != CONFIG_TYPE_STRING) {
		pt_conf_error(cf, node,
			      "\"%s\" expects \"off\", a path, or a group "
			      "{ path; format; buffer; flush; }",
			      s->name);
		return PT_ERROR;
	}
	v = config_setting_get_string(node);
	if (strcmp(v, "off") == 0) {
		lc->off = 1;
		return PT_OK;
	}
	lc->fmt = log_format(cf, node, "combined");
	lc->file = log_file(cf, node, v, 0, 1000);
	return lc->fmt && lc->file ? PT_OK : PT_ERROR;
}

static const struct pt_setting log_settings[] = {
	{ "access_log", PT_T_CUSTOM, PT_SCOPE_HTTP, PT_STORE_LOC, 0, log_set,
	  NULL },
	{ NULL, 0, 0, 0, 0, NULL, NULL }
};

static int
log_postconfig(struct pt_conf *cf)
{
	(void)cf;
	log_index = pt_module_index(&pt_http_log_module);
	return PT_OK;
}

/* ---- files ------------------------------------------------------------------ */

static int
log_open(struct pt_cycle *c, struct log_file *f)
{
	/* owned by the worker user, but never through a symbolic link */
	int fd = pt_log_open_owned(f->path, c->core->switch_user
						    ? c->core->uid
						    : (uid_t)-1);

	if (fd < 0) {
		pt_log(PT_LOG_CRIT, errno, "cannot open access log \"%s\"",
		       f->path);
		return PT_ERROR;
	}
	if (f->fd < 0) {
		f->fd = fd;
	} else {
		/* dup3, not dup2: the fd must stay close-on-exec, or it
		 * leaks into the binary an upgrade executes */
		if (dup3(fd, f->fd, O_CLOEXEC) < 0)
			pt_log(PT_LOG_ERR, errno, "reopening \"%s\"", f->path);
		close(fd);
	}
	return PT_OK;
}

static void
log_close_files(void *data)
{
	struct log_main_conf *mc = data;

	for (struct log_file *f = mc->files; f != NULL; f = f->next) {
		if (f->fd >= 0)
			close(f->fd);
		f->fd = -1;
		free(f->buf);
		f->buf = NULL;
	}
}

static int
log_init_master(struct pt_cycle *c)
{
	struct log_main_conf *mc = c->main_conf[log_index];

	if (pt_pool_cleanup_add(c->pool, log_close_files, mc) != PT_OK)
		return PT_ERROR;
	for (struct log_file *f = mc->files; f != NULL; f = f->next)
		if (log_open(c, f) != PT_OK)
			return PT_ERROR;
	return PT_OK;
}

static void
log_flush(struct log_file *f)
{
	size_t off = 0;

	while (off < f->len) {
		ssize_t n = write(f->fd, f->buf + off, f->len - off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			pt_log(PT_LOG_ERR, errno, "writing access log \"%s\"",
			       f->path);
			break;
		}
		off += (size_t)n;
	}
	f->len = 0;
}

static void
log_flush_timer(struct pt_timer *t)
{
	log_flush(pt_container_of(t, struct log_file, timer));
}

static int
log_init_worker(struct pt_cycle *c)
{
	struct log_main_conf *mc = c->main_conf[log_index];

	for (struct log_file *f = mc->files; f != NULL; f = f->next) {
		f->cycle = c;
		f->timer.fn = log_flush_timer;
		if (f->bufsize == 0)
			continue;
		f->buf = malloc(f->bufsize);
		if (f->buf == NULL) {
			pt_log(PT_LOG_CRIT, ENOMEM, "access log buffer");
			return PT_ERROR;
		}
	}
	return PT_OK;
}

static void
log_exit_worker(struct pt_cycle *c)
{
	struct log_main_conf *mc = c->main_conf[log_index];

	for (struct log_file *f = mc->files; f != NULL; f = f->next)
		if (f->len > 0)
			log_flush(f);
}

static void
log_reopen(struct pt_cycle *c)
{
	struct log_main_conf *mc = c->main_conf[log_index];

	for (struct log_file *f = mc->files; f != NULL; f = f->next) {
		if (f->len > 0)
			log_flush(f);
		log_open(c, f);
	}
}

/* ---- the log phase ------------------------------------------------------ */

static int
log_handler(struct pt_http_request *r)
{
	struct log_loc_conf *lc = r->loc_conf[log_index];
	struct log_file *f;
	char line[LOG_LINE_MAX];
	size_t n;

	if (lc == NULL || lc->off || lc->file == NULL)
		return PT_OK;
	f = lc->file;
	n = pt_tpl_eval_into(r, &lc->fmt->tpl, line, sizeof(line) - 1,
			     lc->fmt->json ? log_escape_json : log_escape_text,
			     lc->fmt->json ? 6 : 4);
	line[n++] = '\n';
	if (f->buf == NULL) {
		ssize_t w = write(f->fd, line, n);
		if (w < 0)
			pt_log(PT_LOG_ERR, errno, "writing access log \"%s\"",
			       f->path);
		return PT_OK;
	}
	if (f->len + n > f->bufsize)
		log_flush(f);
	if (n > f->bufsize) {
		ssize_t w = write(f->fd, line, n);
		(void)w;
		return PT_OK;
	}
	memcpy(f->buf + f->len, line, n);
	if (f->len == 0)
		pt_timer_add(&f->cycle->worker_ctx->loop, &f->timer,
			     f->flush_ms);
	f->len += n;
	return PT_OK;
}

static const struct pt_hook log_hooks[] = {
	{ PT_PHASE_LOG, 100, log_handler, NULL, NULL },
	{ 0, 0, NULL, NULL, NULL }
};

const struct pt_module pt_http_log_module = {
	.name = "http_log",
	.settings = log_settings,
	.create_main = log_create_main,
	.create_loc = log_create_loc,
	.merge_loc = log_merge_loc,
	.postconfig = log_postconfig,
	.hooks = log_hooks,
	.init_master = log_init_master,
	.init_worker = log_init_worker,
	.exit_worker = log_exit_worker,
	.reopen = log_reopen,
};
