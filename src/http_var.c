/*
 * http_var.c: variables ($host, $arg_NAME, ...) and templates, the
 * strings with variables used by return, log formats and later headers,
 * rewrites and keys.
 *
 * A template is compiled once at load into literal parts and variable
 * references; an unknown variable is a config error. A variable is only
 * computed when a template using it is evaluated, and most getters return
 * slices of the request head without copying. "${...}" is not a variable:
 * it is expanded from the environment when the config is read.
 */
#include "core.h"
#include "conf.h"
#include "cycle.h"
#include "http.h"
#include "http_parse_int.h"
#include "pool.h"
#include "ptime.h"
#include "stats.h"

#include <sys/random.h>
#include <unistd.h>

#define TPL_STACK_PARTS 32

static int
var_is_name(int ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
	       (ch >= '0' && ch <= '9') || ch == '_';
}

/* ---- getters ------------------------------------------------------------- */

static int
var_host(struct pt_http_request *r, struct pt_str *v, struct pt_str arg)
{
	(void)arg;
	if (r->h.host.len) {
		*v = r->h.host;
	} else if (r->server && r->server->first_name) {
		v->data = r->server->first_name;
		v->len = strlen(v->data);
	} else {
		v->data = "";
		v->len = 0;
	}
	return PT_OK;
}

static int
var_text(struct pt_http_request *r, struct pt_str *v, const char *fmt, ...)
	PT_PRINTF(3, 4);

static int
var_text(struct pt_http_request *r, struct pt_str *v, const char *fmt, ...)
{
	char buf[128];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n < 0)
		return PT_ERROR;
	v->data = pt_pstrndup(r->pool, buf, PT_MIN((size_t)n, sizeof(buf) - 1));
	v->len = PT_MIN((size_t)n, sizeof(buf) - 1);
	return v->data ? PT_OK : PT_ERROR;
}

static int
var_remote_addr(struct pt_http_request *r, struct pt_str *v, struct pt_str a)
{
	char ip[64];

	(void)a;
	pt_addr_ip(&r->client->u.sa, ip, sizeof(ip));
	return var_text(r, v, "%s", ip);
}

static int
var_remote_port(struct pt_http_request *r, struct pt_str *v, struct pt_str a)
{
	(void)a;
	return var_text(r, v, "%u", pt_addr_port(&r->client->u.sa));
}

/* The source a PROXY protocol header gave; empty without one. */
static int
var_proxy_addr(struct pt_http_request *r, struct pt_str *v, struct pt_str a)
{
	char ip[64];

	(void)a;
	if (!r->conn->proxy_has_addr) {
		v->data = "";
		v->len = 0;
		return PT_OK;
	}
	pt_addr_ip(&r->conn->proxy_addr.u.sa, ip, sizeof(ip));
	return var_text(r, v, "%s", ip);
}

static int
var_proxy_port(struct pt_http_request *r, struct pt_str *v, struct pt_str a)
{
	(void)a;
	if (!r->conn->proxy_has_addr) {
		v->data = "";
		v->len = 0;
		return PT_OK;
	}
	return var_text(r, v, "%u", pt_addr_port(&r->conn->proxy_addr.u.sa));
}

static int
var_local(struct pt_http_request *r, struct pt_sockaddr *local)
{
	*local = r->conn->addr->addr;
	if (pt_addr_is_wildcard(local)) {
		local->len = sizeof(local->u);
		if (getsockname(r->conn->io.fd, &local->u.sa, &local->len) < 0)
			return PT_ERROR;
	}
	return PT_OK;
}

static int
var_server_addr(struct pt_http_request *r, struct pt_str *v, struct pt_str a)
{
	struct pt_sockaddr local;
	char ip[64];

	(void)a;
	if (var_local(r, &local) != PT_OK)
		return PT_ERROR;
	pt_addr_ip(&local.u.sa, ip, sizeof(ip));
	return var_text(r, v, "%s", ip);
}

static int
var_server_port(struct pt_http_request *r, struct pt_str *v, struct pt_str a)
{
	(void)a;
	return var_text(r, v, "%u", pt_addr_port(&r->conn->addr->addr.u.sa));
}

static int
var_scheme(struct pt_http_request *r, struct pt_str *v, struct pt_str a)
{
	(void)a;
	v->data = r->conn->ssl != NULL ? "https" : "http";
	v->len = r->conn->ssl != NULL ? 5 : 4;
	return PT_OK;
}

static int
var_method(struct pt_http_request *r, struct pt_str *v, struct pt_str a)
{
	(void)a;
	*v = r->h.method;
	return PT_OK;
}

static int
var_request_uri(struct pt_http_request *r, struct pt_str *v, struct pt_str a)
{
	(void)a;
	*v = r->h.target;
	return PT_OK;
}

static int
var_uri(struct pt_http_request *r, struct pt_str *v, struct pt_str a)
{
	(void)a;
	*v = r->uri;
	return PT_OK;
}

static int
var_args(struct pt_http_request *r, struct pt_str *v, struct pt_str a)
{
	(void)a;
	*v = r->args;
	return PT_OK;
}

static int
var_request(struct pt_http_request *r, struct pt_str *v, struct pt_str a)
{
	(void)a;
	*v = r->request_line;
	return PT_OK;
}

static int
var_protocol(struct pt_http_request *r, struct pt_str *v, struct pt_str a)
{
	(void)a;
	v->data = r->h.version == 10 ? "HTTP/1.0" : "HTTP/1.1";
	v->len = 8;
	if (r->h.version == 0)
		v->len = 0;
	return PT_OK;
}

static int
var_arg(struct pt_http_request *r, struct pt_str *v, struct pt_str name)
{
	const char *p = r->args.data, *end = p + r->args.len;

	v->data = "";
	v->len = 0;
	while (p != NULL && p < end) {
		const char *amp = memchr(p, '&', (size_t)(end - p));
		const char *stop = amp ? amp : end;
		if ((size_t)(stop - p) >= name.len &&
		    pt_strncasecmp(p, name.data, name.len) == 0 &&
		    (p + name.len == stop || p[name.len] == '=')) {
			v->data = p + name.len + (p + name.len < stop);
			v->len = (size_t)(stop - v->data);
			return PT_OK;
		}
		p = amp ? amp + 1 : NULL;
	}
	return PT_OK;
}

/* Field-name match where '_' in the variable stands for '-'. */
static int
var_header_eq(struct pt_str field, struct pt_str name)
{
	if (field.len != name.len)
		return 0;
	for (size_t i = 0; i < name.len; i++) {
		unsigned char a = pt_tolower((unsigned char)field.data[i]);
		unsigned char b = pt_tolower((unsigned char)name.data[i]);
		if (b == '_')
			b = '-';
		if (a != b)
			return 0;
	}
	return 1;
}

static int
var_http(struct pt_http_request *r, struct pt_str *v, struct pt_str name)
{
	v->data = "";
	v->len = 0;
	for (unsigned i = 0; i < r->h.nheaders; i++) {
		if (var_header_eq(r->h.headers[i].name, name)) {
			*v = r->h.headers[i].value;
			return PT_OK;
		}
	}
	return PT_OK;
}

static int
var_cookie(struct pt_http_request *r, struct pt_str *v, struct pt_str name)
{
	v->data = "";
	v->len = 0;
	for (unsigned i = 0; i < r->h.nheaders; i++) {
		const struct pt_http_header *h = &r->h.headers[i];
		const char *p = h->value.data, *end = p + h->value.len;
		if (h->id != PT_H_COOKIE)
			continue;
		while (p < end) {
			const char *semi = memchr(p, ';', (size_t)(end - p));
			const char *stop = semi ? semi : end;
			while (p < stop && (*p == ' ' || *p == '\t'))
				p++;
			if ((size_t)(stop - p) > name.len &&
			    memcmp(p, name.data, name.len) == 0 &&
			    p[name.len] == '=') {
				v->data = p + name.len + 1;
				v->len = (size_t)(stop - v->data);
				return PT_OK;
			}
			p = stop + 1;
		}
	}
	return PT_OK;
}

/* Per-process generator for request ids (xorshift128+), seeded from the
 * kernel in each worker: not for secrets, only unique and unguessable
 * enough for tracing. */
static uint64_t var_rng[2];

void
pt_http_seed_random(void)
{
	if (getrandom(var_rng, sizeof(var_rng), 0) != sizeof(var_rng)) {
		var_rng[0] = (uint64_t)pt_now.wall_ms ^ (uint64_t)getpid();
		var_rng[1] = (uint64_t)pt_now.mono_ms * 0x9E3779B97F4A7C15ull;
	}
	var_rng[0] |= 1;
}

static uint64_t
var_random(void)
{
	uint64_t s1 = var_rng[0];
	const uint64_t s0 = var_rng[1];

	var_rng[0] = s0;
	s1 ^= s1 << 23;
	var_rng[1] = s1 ^ s0 ^ (s1 >> 18) ^ (s0 >> 5);
	return var_rng[1] + s0;
}

static int
var_request_id(struct pt_http_request *r, struct pt_str *v, struct pt_str a)
{
	static const char hex[] = "0123456789abcdef";

	(void)a;
	if (r->request_id[0] == '\0') {
		uint64_t x[2] = { var_random(), var_random() };
		const unsigned char *b = (const unsigned char *)x;
		for (int i = 0; i < 16; i++) {
			r->request_id[2 * i] = hex[b[i] >> 4];
			r->request_id[2 * i + 1] = hex[b[i] & 15];
		}
		r->request_id[32] = '\0';
	}
	v->data = r->request_id;
	v->len = 32;
	return PT_OK;
}

static int
var_status(struct pt_http_request *r, struct pt_str *v, struct pt_str a)
{
	(void)a;
	return var_text(r, v, "%03d", r->out.status);
}

static int
var_body_bytes(struct pt_http_request *r, struct pt_str *v, struct pt_str a)
{
	off_t n = r->bytes_sent - r->head_bytes;

	(void)a;
	return var_text(r, v, "%lld", (long long)(n > 0 ? n : 0));
}

static int
var_bytes_sent(struct pt_http_request *r, struct pt_str *v, struct pt_str a)
{
	(void)a;
	return var_text(r, v, "%lld", (long long)r->bytes_sent);
}

static int
var_request_time(struct pt_http_request *r, struct pt_str *v,
		 struct pt_str a)
{
	int64_t ms = pt_now.mono_ms - r->start_ms;

	(void)a;
	return var_text(r, v, "%lld.%03lld", (long long)(ms / 1000),
			(long long)(ms % 1000));
}

static int
var_msec(struct pt_http_request *r, struct pt_str *v, struct pt_str a)
{
	(void)a;
	return var_text(r, v, "%lld.%03lld", (long long)(pt_now.wall_ms / 1000),
			(long long)(pt_now.wall_ms % 1000));
}

static int
var_time_iso8601(struct pt_http_request *r, struct pt_str *v,
		 struct pt_str a)
{
	(void)r;
	(void)a;
	v->data = pt_now.iso8601;
	v->len = strlen(pt_now.iso8601);
	return PT_OK;
}

static int
var_time_local(struct pt_http_request *r, struct pt_str *v, struct pt_str a)
{
	(void)r;
	(void)a;
	v->data = pt_now.clf_time;
	v->len = strlen(pt_now.clf_time);
	return PT_OK;
}

static int
var_remote_user(struct pt_http_request *r, struct pt_str *v, struct pt_str a)
{
	const struct pt_http_header *h = r->h.known[PT_H_AUTHORIZATION];
	static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnop"
				  "qrstuvwxyz0123456789+/";
	char *out;
	size_t n = 0;
	unsigned acc = 0, bits = 0;

	(void)a;
	v->data = "";
	v->len = 0;
	if (h == NULL || h->value.len < 7 ||
	    pt_strncasecmp(h->value.data, "Basic ", 6) != 0)
		return PT_OK;
	out = pt_pnalloc(r->pool, h->value.len);
	if (out == NULL)
		return PT_ERROR;
	for (size_t i = 6; i < h->value.len && h->value.data[i] != '='; i++) {
		const char *q = memchr(b64, h->value.data[i], 64);
		if (q == NULL)
			return PT_OK; /* not base64: no user */
		acc = (acc << 6) | (unsigned)(q - b64);
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[n++] = (char)((acc >> bits) & 0xff);
		}
	}
	for (size_t i = 0; i < n; i++) {
		if (out[i] == ':') {
			v->data = out;
			v->len = i;
			break;
		}
	}
	return PT_OK;
}

static int
var_connection(struct pt_http_request *r, struct pt_str *v, struct pt_str a)
{
	(void)a;
	return var_text(r, v, "%llu", (unsigned long long)r->conn->number);
}

static int
var_conn_requests(struct pt_http_request *r, struct pt_str *v,
		  struct pt_str a)
{
	(void)a;
	return var_text(r, v, "%u", r->conn->nrequests + 1);
}

static int
var_server_name(struct pt_http_request *r, struct pt_str *v, struct pt_str a)
{
	(void)a;
	v->data = r->server && r->server->first_name ? r->server->first_name
						     : "";
	v->len = strlen(v->data);
	return PT_OK;
}

static int
var_stats(struct pt_http_request *r, struct pt_str *v, struct pt_str a,
	  int which)
{
	struct pt_stats_total t;

	(void)a;
	pt_stats_sum(r->conn->ls->cycle, &t);
	switch (which) {
	case 0: return var_text(r, v, "%lld", (long long)t.active);
	case 1: return var_text(r, v, "%lld", (long long)t.waiting);
	case 2: return var_text(r, v, "%llu", (unsigned long long)t.accepted);
	default: return var_text(r, v, "%llu", (unsigned long long)t.requests);
	}
}

static int
var_conns_active(struct pt_http_request *r, struct pt_str *v, struct pt_str a)
{
	return var_stats(r, v, a, 0);
}

static int
var_conns_waiting(struct pt_http_request *r, struct pt_str *v,
		  struct pt_str a)
{
	return var_stats(r, v, a, 1);
}

static int
var_conns_accepted(struct pt_http_request *r, struct pt_str *v,
		   struct pt_str a)
{
	return var_stats(r, v, a, 2);
}

static int
var_requests_total(struct pt_http_request *r, struct pt_str *v,
		   struct pt_str a)
{
	return var_stats(r, v, a, 3);
}

const struct pt_http_var pt_http_core_vars[] = {
	{ "host", 0, var_host },
	{ "remote_addr", 0, var_remote_addr },
	{ "remote_port", 0, var_remote_port },
	{ "remote_user", 0, var_remote_user },
	{ "proxy_protocol_addr", 0, var_proxy_addr },
	{ "proxy_protocol_port", 0, var_proxy_port },
	{ "server_addr", 0, var_server_addr },
	{ "server_port", 0, var_server_port },
	{ "server_name", 0, var_server_name },
	{ "server_protocol", 0, var_protocol },
	{ "scheme", 0, var_scheme },
	{ "request", 0, var_request },
	{ "request_method", 0, var_method },
	{ "request_uri", 0, var_request_uri },
	{ "uri", 0, var_uri },
	{ "args", 0, var_args },
	{ "query_string", 0, var_args },
	{ "request_id", 0, var_request_id },
	{ "status", 0, var_status },
	{ "body_bytes_sent", 0, var_body_bytes },
	{ "bytes_sent", 0, var_bytes_sent },
	{ "request_time", 0, var_request_time },
	{ "msec", 0, var_msec },
	{ "time_iso8601", 0, var_time_iso8601 },
	{ "time_local", 0, var_time_local },
	{ "connection", 0, var_connection },
	{ "connection_requests", 0, var_conn_requests },
	{ "connections_active", 0, var_conns_active },
	{ "connections_waiting", 0, var_conns_waiting },
	{ "connections_accepted", 0, var_conns_accepted },
	{ "requests_total", 0, var_requests_total },
	{ "arg_", PT_VAR_PREFIX, var_arg },
	{ "http_", PT_VAR_PREFIX, var_http },
	{ "cookie_", PT_VAR_PREFIX, var_cookie },
	{ NULL, 0, NULL }
};

/* ---- lookup and templates ------------------------------------------------ */

const struct pt_http_var *
pt_http_var_find(const char *name, size_t len, struct pt_str *arg)
{
	for (unsigned i = 0; pt_modules[i] != NULL; i++) {
		const struct pt_http_var *v = pt_modules[i]->vars;
		for (; v != NULL && v->name != NULL; v++) {
			size_t vl = strlen(v->name);
			if (v->flags & PT_VAR_PREFIX) {
				if (len > vl && memcmp(name, v->name, vl) == 0) {
					arg->data = name + vl;
					arg->len = len - vl;
					return v;
				}
			} else if (vl == len && memcmp(name, v->name, len) == 0) {
				arg->data = NULL;
				arg->len = 0;
				return v;
			}
		}
	}
	return NULL;
}

int
pt_tpl_compile(struct pt_conf *cf, const config_setting_t *node,
	       const char *s, struct pt_tpl *out)
{
	unsigned nparts = 0, k = 0;
	const char *p, *lit;

	memset(out, 0, sizeof(*out));
	/* parts end at a variable or at "$$", which stands for one '$' */
	for (p = s; *p; p++) {
		if (p[0] == '$' && (p[1] == '$' || var_is_name((unsigned char)p[1]))) {
			nparts++;
			p += p[1] == '$';
		}
	}
	out->text.data = pt_pstrdup(cf->pool, s);
	out->text.len = strlen(s);
	if (out->text.data == NULL)
		return PT_ERROR;
	if (nparts == 0)
		return PT_OK;
	out->parts = pt_pcalloc(cf->pool, (nparts + 1) * sizeof(*out->parts));
	if (out->parts == NULL)
		return PT_ERROR;
	s = out->text.data;
	for (p = lit = s; *p;) {
		const char *name;
		struct pt_tpl_part *part;

		if (p[0] == '$' && p[1] == '$') {
			part = &out->parts[k++];
			part->lit.data = lit;
			part->lit.len = (size_t)(p + 1 - lit); /* keep one '$' */
			p += 2;
			lit = p;
			continue;
		}
		if (!(p[0] == '$' && var_is_name((unsigned char)p[1]))) {
			p++;
			continue;
		}
		name = ++p;
		while (var_is_name((unsigned char)*p))
			p++;
		part = &out->parts[k++];
		part->lit.data = lit;
		part->lit.len = (size_t)(name - 1 - lit);
		part->var = pt_http_var_find(name, (size_t)(p - name),
					     &part->arg);
		if (part->var == NULL) {
			pt_conf_error(cf, node,
				      "unknown variable \"$%.*s\" (write $$ "
				      "for a literal '$')",
				      (int)(p - name), name);
			return PT_ERROR;
		}
		lit = p;
	}
	if (*lit != '\0') {
		out->parts[k].lit.data = lit;
		out->parts[k].lit.len = strlen(lit);
		k++;
	}
	out->nparts = k;
	return PT_OK;
}

int
pt_tpl_eval(struct pt_http_request *r, const struct pt_tpl *t,
	    struct pt_str *out)
{
	struct pt_str stack[TPL_STACK_PARTS], *vals = stack;
	size_t len = 0;
	char *p;

	if (t->nparts == 0) {
		*out = t->text;
		return PT_OK;
	}
	if (t->nparts > TPL_STACK_PARTS) {
		vals = pt_palloc(r->pool, t->nparts * sizeof(*vals));
		if (vals == NULL)
			return PT_ERROR;
	}
	for (unsigned i = 0; i < t->nparts; i++) {
		const struct pt_tpl_part *part = &t->parts[i];
		vals[i].data = NULL;
		vals[i].len = 0;
		if (part->var != NULL &&
		    part->var->get(r, &vals[i], part->arg) != PT_OK)
			return PT_ERROR;
		len += part->lit.len + vals[i].len;
	}
	p = pt_pnalloc(r->pool, len + 1);
	if (p == NULL)
		return PT_ERROR;
	out->data = p;
	out->len = len;
	for (unsigned i = 0; i < t->nparts; i++) {
		memcpy(p, t->parts[i].lit.data, t->parts[i].lit.len);
		p += t->parts[i].lit.len;
		if (vals[i].len)
			memcpy(p, vals[i].data, vals[i].len);
		p += vals[i].len;
	}
	*p = '\0';
	return PT_OK;
}

/*
 * Values too long for dst are cut, never the literal text of the
 * template: room is kept for every literal part still to come and for a
 * '-' per variable, so that a line cut short still has its quotes and
 * braces (a JSON log line stays valid JSON).
 */
size_t
pt_tpl_eval_into(struct pt_http_request *r, const struct pt_tpl *t,
		 char *dst, size_t cap, pt_escape_fn esc, size_t max_expand)
{
	size_t n = 0, rest = 0;

	if (t->nparts == 0) {
		n = PT_MIN(t->text.len, cap);
		memcpy(dst, t->text.data, n);
		return n;
	}
	for (unsigned i = 0; i < t->nparts; i++)
		rest += t->parts[i].lit.len + (t->parts[i].var != NULL);
	for (unsigned i = 0; i < t->nparts; i++) {
		const struct pt_tpl_part *part = &t->parts[i];
		struct pt_str v = { NULL, 0 };
		size_t room;

		rest -= part->lit.len + (part->var != NULL);
		if (n + part->lit.len > cap)
			break;
		memcpy(dst + n, part->lit.data, part->lit.len);
		n += part->lit.len;
		if (part->var == NULL || part->var->get(r, &v, part->arg) != PT_OK)
			continue;
		if (v.len == 0 && esc != NULL) {
			if (n < cap)
				dst[n++] = '-';
			continue;
		}
		room = cap - n > rest ? cap - n - rest : 0;
		if (esc == NULL) {
			size_t m = PT_MIN(v.len, room);
			memcpy(dst + n, v.data, m);
			n += m;
			continue;
		}
		/* escaping grows text at most max_expand times */
		v.len = PT_MIN(v.len, room / max_expand);
		n += esc(dst + n, v.data, v.len);
	}
	return n;
}

int
pt_http_field_tpl(struct pt_conf *cf, const struct pt_setting *s,
		  const config_setting_t *e, struct pt_str *name,
		  struct pt_tpl *value)
{
	const char *n = config_setting_name(e);
	const char *v = config_setting_get_string(e);
	unsigned id;

	if (v == NULL || n == NULL ||
	    !pt_http_is_token((struct pt_str){ n, strlen(n) })) {
		pt_conf_error(cf, e,
			      "\"%s\": \"%s\" must be a field name set to a "
			      "string",
			      s->name, n ? n : "?");
		return PT_ERROR;
	}
	if (strpbrk(v, "\r\n") != NULL) {
		pt_conf_error(cf, e, "\"%s\": value of \"%s\" has a line break",
			      s->name, n);
		return PT_ERROR;
	}
	id = pt_http_header_id(n, strlen(n));
	if (id == PT_H_CONTENT_LENGTH || id == PT_H_TRANSFER_ENCODING ||
	    id == PT_H_CONNECTION || id == PT_H_UPGRADE) {
		pt_conf_error(cf, e,
			      "\"%s\": \"%s\" frames the message and is set "
			      "by the server itself",
			      s->name, n);
		return PT_ERROR;
	}
	/* the names live in libconfig's tree, freed after the load */
	name->data = pt_pstrdup(cf->pool, n);
	name->len = strlen(n);
	if (name->data == NULL)
		return PT_ERROR;
	return pt_tpl_compile(cf, e, v, value);
}
