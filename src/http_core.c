/*
 * http_core.c: the HTTP core module: its settings, the tree of servers and
 * locations, and what is built from them at load time: merged confs, the
 * location lookup tables, server-name tables per local address, and the
 * listeners.
 *
 * Location matching follows nginx: an exact match (=) wins at once;
 * otherwise the longest prefix is remembered, and unless it is a ^~
 * prefix the regex locations are tried in config order, the first match
 * winning; failing that the longest prefix is used; failing that the
 * server-level settings apply.
 */
#include "core.h"
#include "conf.h"
#include "cycle.h"
#include "http.h"
#include "listen.h"
#include "log.h"
#include "pool.h"
#include "regex.h"
#include "tls.h"

#include <errno.h>

enum { NAME_EXACT, NAME_LEADING, NAME_TRAILING, NAME_REGEX };

static const struct pt_range core_positive = { 1, INT64_MAX };
static const struct pt_range core_nonneg = { 0, INT64_MAX };
static const struct pt_range core_headers = { 1, 10000 };
static const struct pt_range core_hbuf = { 256, 1024 * 1024 };

static int core_set_servers(struct pt_conf *, const struct pt_setting *,
			    const config_setting_t *, void *);
static int core_set_locations(struct pt_conf *, const struct pt_setting *,
			      const config_setting_t *, void *);
static int core_set_path(struct pt_conf *, const struct pt_setting *,
			 const config_setting_t *, void *);
static int core_set_listen(struct pt_conf *, const struct pt_setting *,
			   const config_setting_t *, void *);
static int core_set_names(struct pt_conf *, const struct pt_setting *,
			  const config_setting_t *, void *);
static int core_set_mime_types(struct pt_conf *, const struct pt_setting *,
			       const config_setting_t *, void *);

#define SRV(f) offsetof(struct pt_http_srv_conf, f)
#define LOC(f) offsetof(struct pt_http_loc_conf, f)
#define MAIN(f) offsetof(struct pt_http_main_conf, f)
static const struct pt_setting core_settings[] = {
	{ "servers", PT_T_CUSTOM, PT_SCOPE_MAIN, PT_STORE_MAIN, 0,
	  core_set_servers, NULL },
	{ "mime_types", PT_T_STRING, PT_SCOPE_MAIN, PT_STORE_MAIN,
	  MAIN(mime_types), core_set_mime_types, NULL },
	{ "listen", PT_T_STRLIST, PT_SCOPE_SERVER, PT_STORE_SRV, SRV(listen),
	  core_set_listen, NULL },
	{ "server_name", PT_T_STRLIST, PT_SCOPE_SERVER, PT_STORE_SRV,
	  SRV(server_name), core_set_names, NULL },
	{ "locations", PT_T_CUSTOM, PT_SCOPE_SERVER, PT_STORE_SRV, 0,
	  core_set_locations, NULL },
	{ "path", PT_T_CUSTOM, PT_SCOPE_LOCATION, PT_STORE_LOC, 0,
	  core_set_path, NULL },
	{ "client_header_timeout", PT_T_DURATION,
	  PT_SCOPE_MAIN | PT_SCOPE_SERVER, PT_STORE_SRV,
	  SRV(client_header_timeout), NULL, &core_positive },
	{ "large_header_buffer", PT_T_SIZE, PT_SCOPE_MAIN | PT_SCOPE_SERVER,
	  PT_STORE_SRV, SRV(large_header_buffer), NULL, &core_hbuf },
	{ "max_headers", PT_T_INT, PT_SCOPE_MAIN | PT_SCOPE_SERVER,
	  PT_STORE_SRV, SRV(max_headers), NULL, &core_headers },
	{ "client_body_timeout", PT_T_DURATION, PT_SCOPE_HTTP, PT_STORE_LOC,
	  LOC(client_body_timeout), NULL, &core_positive },
	{ "send_timeout", PT_T_DURATION, PT_SCOPE_HTTP, PT_STORE_LOC,
	  LOC(send_timeout), NULL, &core_positive },
	{ "keepalive_timeout", PT_T_DURATION, PT_SCOPE_HTTP, PT_STORE_LOC,
	  LOC(keepalive_timeout), NULL, &core_nonneg },
	{ "keepalive_requests", PT_T_INT, PT_SCOPE_HTTP, PT_STORE_LOC,
	  LOC(keepalive_requests), NULL, &core_nonneg },
	{ "client_max_body_size", PT_T_SIZE, PT_SCOPE_HTTP, PT_STORE_LOC,
	  LOC(client_max_body_size), NULL, &core_nonneg },
	{ "default_type", PT_T_STRING, PT_SCOPE_HTTP, PT_STORE_LOC,
	  LOC(default_type), NULL, NULL },
	{ "server_tokens", PT_T_FLAG, PT_SCOPE_HTTP, PT_STORE_LOC,
	  LOC(server_tokens), NULL, NULL },
	{ NULL, 0, 0, 0, 0, NULL, NULL }
};

/* ---- conf structures --------------------------------------------------- */

static void *
core_create_main(struct pt_conf *cf)
{
	return pt_pcalloc(cf->pool, sizeof(struct pt_http_main_conf));
}

static void *
core_create_srv(struct pt_conf *cf)
{
	struct pt_http_srv_conf *sc = pt_pcalloc(cf->pool, sizeof(*sc));

	if (sc == NULL)
		return NULL;
	sc->client_header_timeout = PT_UNSET;
	sc->large_header_buffer = PT_UNSET;
	sc->max_headers = PT_UNSET;
	return sc;
}

static int
core_merge_srv(struct pt_conf *cf, void *parent, void *child)
{
	struct pt_http_srv_conf *p = parent, *c = child;

	(void)cf;
	PT_MERGE_I64(c->client_header_timeout, p->client_header_timeout,
		     60000);
	PT_MERGE_I64(c->large_header_buffer, p->large_header_buffer, 8192);
	PT_MERGE_I64(c->max_headers, p->max_headers, 100);
	return PT_OK;
}

static void *
core_create_loc(struct pt_conf *cf)
{
	struct pt_http_loc_conf *lc = pt_pcalloc(cf->pool, sizeof(*lc));

	if (lc == NULL)
		return NULL;
	lc->client_body_timeout = PT_UNSET;
	lc->send_timeout = PT_UNSET;
	lc->keepalive_timeout = PT_UNSET;
	lc->keepalive_requests = PT_UNSET;
	lc->client_max_body_size = PT_UNSET;
	lc->server_tokens = PT_UNSET;
	return lc;
}

static int
core_merge_loc(struct pt_conf *cf, void *parent, void *child)
{
	struct pt_http_loc_conf *p = parent, *c = child;

	(void)cf;
	PT_MERGE_I64(c->client_body_timeout, p->client_body_timeout, 60000);
	PT_MERGE_I64(c->send_timeout, p->send_timeout, 60000);
	PT_MERGE_I64(c->keepalive_timeout, p->keepalive_timeout, 75000);
	PT_MERGE_I64(c->keepalive_requests, p->keepalive_requests, 1000);
	PT_MERGE_I64(c->client_max_body_size, p->client_max_body_size,
		     1024 * 1024);
	PT_MERGE_PTR(c->default_type, p->default_type, "text/plain");
	PT_MERGE_INT(c->server_tokens, p->server_tokens, 0);
	return PT_OK;
}

/* ---- servers and locations --------------------------------------------- */

static int
core_set_servers(struct pt_conf *cf, const struct pt_setting *s,
		 const config_setting_t *node, void *conf)
{
	struct pt_http_main_conf *mc = conf;
	unsigned n = (unsigned)config_setting_length(node);
	struct pt_conf saved = *cf;
	int rc = PT_OK;

	if (!config_setting_is_list(node) && !config_setting_is_array(node)) {
		pt_conf_error(cf, node,
			      "\"%s\" expects a list of groups: ( { ... } )",
			      s->name);
		return PT_ERROR;
	}
	mc->servers = pt_pcalloc(cf->pool, (n ? n : 1) * sizeof(void *));
	if (mc->servers == NULL)
		return PT_ERROR;
	for (unsigned i = 0; i < n; i++) {
		const config_setting_t *g = config_setting_get_elem(node, i);
		struct pt_http_server *srv;

		if (!config_setting_is_group(g)) {
			pt_conf_error(cf, g, "a server must be a group { ... }");
			rc = PT_ERROR;
			continue;
		}
		srv = pt_pcalloc(cf->pool, sizeof(*srv));
		if (srv == NULL)
			return PT_ERROR;
		srv->file = pt_pstrdup(cf->pool, config_setting_source_file(g)
							 ? config_setting_source_file(g)
							 : cf->cycle->conf_file);
		srv->line = config_setting_source_line(g);
		srv->srv_conf = pt_conf_create(cf, PT_STORE_SRV);
		srv->loc_conf = pt_conf_create(cf, PT_STORE_LOC);
		if (srv->srv_conf == NULL || srv->loc_conf == NULL)
			return PT_ERROR;
		((struct pt_http_srv_conf *)srv->srv_conf[PT_HTTP_CORE_INDEX])
			->server = srv;
		cf->scope = PT_SCOPE_SERVER;
		cf->srv_conf = srv->srv_conf;
		cf->loc_conf = srv->loc_conf;
		cf->ctx = srv;
		if (pt_conf_walk(cf, g) != PT_OK)
			rc = PT_ERROR;
		*cf = (struct pt_conf){ .cycle = saved.cycle,
					.pool = saved.pool,
					.scope = saved.scope,
					.main_conf = saved.main_conf,
					.srv_conf = saved.srv_conf,
					.loc_conf = saved.loc_conf,
					.ctx = saved.ctx,
					.to_stderr = saved.to_stderr,
					.errors = cf->errors };
		mc->servers[mc->nservers++] = srv;
	}
	return rc;
}

static int
core_set_locations(struct pt_conf *cf, const struct pt_setting *s,
		   const config_setting_t *node, void *conf)
{
	struct pt_http_server *srv = cf->ctx;
	unsigned n = (unsigned)config_setting_length(node);
	void **outer = cf->loc_conf;
	int rc = PT_OK;

	(void)conf;
	if (!config_setting_is_list(node) && !config_setting_is_array(node)) {
		pt_conf_error(cf, node,
			      "\"%s\" expects a list of groups: ( { ... } )",
			      s->name);
		return PT_ERROR;
	}
	/* sorted into exact/prefix/regex by core_postconfig; keep the
	 * config order in "regex" for now */
	srv->regex = pt_pcalloc(cf->pool, (n ? n : 1) * sizeof(void *));
	if (srv->regex == NULL)
		return PT_ERROR;
	for (unsigned i = 0; i < n; i++) {
		const config_setting_t *g = config_setting_get_elem(node, i);
		struct pt_http_location *loc;
		struct pt_http_loc_conf *lc;

		if (!config_setting_is_group(g)) {
			pt_conf_error(cf, g,
				      "a location must be a group { ... }");
			rc = PT_ERROR;
			continue;
		}
		loc = pt_pcalloc(cf->pool, sizeof(*loc));
		if (loc == NULL)
			return PT_ERROR;
		/* its own file: it may come from an @include */
		loc->file = config_setting_source_file(g)
				    ? pt_pstrdup(cf->pool,
						 config_setting_source_file(g))
				    : srv->file;
		if (loc->file == NULL)
			return PT_ERROR;
		loc->line = config_setting_source_line(g);
		loc->loc_conf = pt_conf_create(cf, PT_STORE_LOC);
		if (loc->loc_conf == NULL)
			return PT_ERROR;
		lc = loc->loc_conf[PT_HTTP_CORE_INDEX];
		lc->location = loc;
		cf->scope = PT_SCOPE_LOCATION;
		cf->loc_conf = loc->loc_conf;
		cf->ctx = loc;
		if (pt_conf_walk(cf, g) != PT_OK)
			rc = PT_ERROR;
		cf->scope = PT_SCOPE_SERVER;
		cf->loc_conf = outer;
		cf->ctx = srv;
		if (loc->name == NULL) {
			pt_conf_error(cf, g, "location without \"path\"");
			rc = PT_ERROR;
			continue;
		}
		srv->regex[srv->nregex++] = loc;
	}
	return rc;
}

static int
core_set_path(struct pt_conf *cf, const struct pt_setting *s,
	      const config_setting_t *node, void *conf)
{
	struct pt_http_location *loc = cf->ctx;
	const char *v, *p;
	char err[256];

	(void)conf;
	if (config_setting_type(node) != CONFIG_TYPE_STRING) {
		pt_conf_error(cf, node, "\"%s\" expects a string", s->name);
		return PT_ERROR;
	}
	v = config_setting_get_string(node);
	loc->name = pt_pstrdup(cf->pool, v);
	if (loc->name == NULL)
		return PT_ERROR;
	if (strncmp(v, "= ", 2) == 0) {
		loc->match = PT_LOC_EXACT;
		p = v + 2;
	} else if (strncmp(v, "^~ ", 3) == 0) {
		loc->match = PT_LOC_PREFIX_STOP;
		p = v + 3;
	} else if (strncmp(v, "~* ", 3) == 0) {
		loc->match = PT_LOC_REGEX_CASE;
		p = v + 3;
	} else if (strncmp(v, "~ ", 2) == 0) {
		loc->match = PT_LOC_REGEX;
		p = v + 2;
	} else {
		loc->match = PT_LOC_PREFIX;
		p = v;
	}
	while (*p == ' ')
		p++;
	if (loc->match == PT_LOC_REGEX || loc->match == PT_LOC_REGEX_CASE) {
		if (*p == '\0' ||
		    pt_regex_compile(cf->pool, p,
				     loc->match == PT_LOC_REGEX_CASE, &loc->re,
				     err, sizeof(err)) != PT_OK) {
			pt_conf_error(cf, node, "\"path\": %s",
				      *p ? err : "empty regex");
			return PT_ERROR;
		}
		return PT_OK;
	}
	if (*p != '/') {
		pt_conf_error(cf, node,
			      "\"path\": \"%s\" must start with \"/\" (or a "
			      "modifier: \"= \", \"^~ \", \"~ \", \"~* \")",
			      v);
		return PT_ERROR;
	}
	loc->prefix.data = pt_pstrdup(cf->pool, p);
	loc->prefix.len = strlen(p);
	return loc->prefix.data ? PT_OK : PT_ERROR;
}

static int
core_set_listen(struct pt_conf *cf, const struct pt_setting *s,
		const config_setting_t *node, void *conf)
{
	struct pt_http_srv_conf *sc = conf;

	sc->listen_node = node;
	return pt_conf_set_generic(cf, s, node, conf);
}

static int
core_set_mime_types(struct pt_conf *cf, const struct pt_setting *s,
		    const config_setting_t *node, void *conf)
{
	struct pt_http_main_conf *mc = conf;

	mc->mime_types_node = node; /* for errors found when it is read */
	return pt_conf_set_generic(cf, s, node, conf);
}

static int
core_set_names(struct pt_conf *cf, const struct pt_setting *s,
	       const config_setting_t *node, void *conf)
{
	struct pt_http_srv_conf *sc = conf;

	sc->names_node = node;
	return pt_conf_set_generic(cf, s, node, conf);
}

/* ---- location tables ---------------------------------------------------- */

static int
core_prefix_cmp(const void *a, const void *b)
{
	const struct pt_http_location *x = *(void *const *)a;
	const struct pt_http_location *y = *(void *const *)b;

	/* longest first; equal lengths by text for a stable order */
	if (x->prefix.len != y->prefix.len)
		return x->prefix.len < y->prefix.len ? 1 : -1;
	return strcmp(x->prefix.data, y->prefix.data);
}

static int
core_sort_locations(struct pt_conf *cf, struct pt_http_server *srv)
{
	struct pt_http_location **all = srv->regex;
	unsigned n = srv->nregex;

	srv->exact = pt_pcalloc(cf->pool, (n ? n : 1) * sizeof(void *));
	srv->prefix = pt_pcalloc(cf->pool, (n ? n : 1) * sizeof(void *));
	srv->regex = pt_pcalloc(cf->pool, (n ? n : 1) * sizeof(void *));
	if (srv->exact == NULL || srv->prefix == NULL || srv->regex == NULL)
		return PT_ERROR;
	srv->nregex = 0;
	for (unsigned i = 0; i < n; i++) {
		struct pt_http_location *l = all[i];
		switch (l->match) {
		case PT_LOC_EXACT: srv->exact[srv->nexact++] = l; break;
		case PT_LOC_PREFIX:
		case PT_LOC_PREFIX_STOP: srv->prefix[srv->nprefix++] = l; break;
		default: srv->regex[srv->nregex++] = l; break;
		}
	}
	qsort(srv->prefix, srv->nprefix, sizeof(void *), core_prefix_cmp);
	for (unsigned i = 1; i < srv->nprefix; i++) {
		if (srv->prefix[i]->prefix.len ==
			    srv->prefix[i - 1]->prefix.len &&
		    strcmp(srv->prefix[i]->prefix.data,
			   srv->prefix[i - 1]->prefix.data) == 0) {
			pt_conf_error(cf, NULL,
				      "%s:%u: duplicate location \"%s\"",
				      srv->prefix[i]->file, srv->prefix[i]->line,
				      srv->prefix[i]->prefix.data);
			return PT_ERROR;
		}
	}
	for (unsigned i = 0; i < srv->nexact; i++)
		for (unsigned j = 0; j < i; j++)
			if (strcmp(srv->exact[i]->prefix.data,
				   srv->exact[j]->prefix.data) == 0) {
				pt_conf_error(cf, NULL,
					      "%s:%u: duplicate location \"%s\"",
					      srv->exact[i]->file,
					      srv->exact[i]->line,
					      srv->exact[i]->name);
				return PT_ERROR;
			}
	return PT_OK;
}

int
pt_http_find_location(struct pt_http_request *r)
{
	const struct pt_http_server *srv = r->server;
	const struct pt_str u = r->uri;
	struct pt_http_location *found = NULL;

	for (unsigned i = 0; i < srv->nexact; i++) {
		struct pt_http_location *l = srv->exact[i];
		if (l->prefix.len == u.len &&
		    memcmp(l->prefix.data, u.data, u.len) == 0) {
			found = l;
			goto done;
		}
	}
	for (unsigned i = 0; i < srv->nprefix; i++) {
		struct pt_http_location *l = srv->prefix[i];
		if (l->prefix.len <= u.len &&
		    memcmp(l->prefix.data, u.data, l->prefix.len) == 0) {
			found = l;
			break;
		}
	}
	if (found != NULL && found->match == PT_LOC_PREFIX_STOP)
		goto done;
	for (unsigned i = 0; i < srv->nregex; i++) {
		int m = pt_regex_match(srv->regex[i]->re, u.data, u.len);
		if (m == 1) {
			found = srv->regex[i];
			break;
		}
		if (m < 0) {
			pt_http_log(r, PT_LOG_ERR, 0,
				    "regex \"%s\" failed to match",
				    srv->regex[i]->re->pattern);
			return 500;
		}
	}
done:
	r->location = found;
	r->loc_conf = found ? found->loc_conf : srv->loc_conf;
	return PT_OK;
}

/* ---- addresses, names and listeners ------------------------------------ */

struct core_addr {
	struct pt_sockaddr addr;
	char text[PT_ADDR_TEXT];
	struct pt_http_server **servers;
	unsigned nservers;
	struct pt_http_server *default_server;
	int backlog; /* -1: not given */
	int reuseport;
	int proxy_protocol;
	int ssl, plain; /* listened on with and without "ssl" */
	const config_setting_t *node;
	struct pt_http_port *port;
};

struct core_build {
	struct core_addr *addrs;
	unsigned naddrs, cap;
	unsigned max_servers; /* room in each address's server list */
};

struct core_listen_opts {
	int def, reuseport, backlog, proxy_protocol, ssl;
};

static int
core_listen_flags(struct pt_conf *cf, const config_setting_t *node,
		  const char *spec, char *addr, size_t alen,
		  struct core_listen_opts *o)
{
	const char *sp = strchr(spec, ' ');
	char flag[64];

	o->def = 0;
	o->reuseport = 0;
	o->backlog = -1;
	o->proxy_protocol = 0;
	o->ssl = 0;
	snprintf(addr, alen, "%.*s", sp ? (int)(sp - spec) : (int)strlen(spec),
		 spec);
	while (sp != NULL) {
		const char *start = sp + 1, *end;
		while (*start == ' ')
			start++;
		if (*start == '\0')
			break;
		end = strchr(start, ' ');
		snprintf(flag, sizeof(flag), "%.*s",
			 end ? (int)(end - start) : (int)strlen(start), start);
		sp = end;
		if (strcmp(flag, "default_server") == 0) {
			o->def = 1;
		} else if (strcmp(flag, "reuseport") == 0) {
			o->reuseport = 1;
		} else if (strcmp(flag, "proxy_protocol") == 0) {
			o->proxy_protocol = 1;
		} else if (strcmp(flag, "ssl") == 0) {
			o->ssl = 1;
		} else if (strncmp(flag, "backlog=", 8) == 0) {
			char *e;
			long v = strtol(flag + 8, &e, 10);
			if (*e != '\0' || v < 1 || v > 65535) {
				pt_conf_error(cf, node,
					      "\"listen\": invalid \"%s\"", flag);
				return PT_ERROR;
			}
			o->backlog = (int)v;
		} else {
			pt_conf_error(cf, node,
				      "\"listen\": unknown flag \"%s\" (known: "
				      "default_server, reuseport, backlog=N, "
				      "proxy_protocol, ssl)",
				      flag);
			return PT_ERROR;
		}
	}
	return PT_OK;
}

static struct core_addr *
core_addr_get(struct pt_conf *cf, struct core_build *b,
	      const struct pt_sockaddr *a, const char *text)
{
	for (unsigned i = 0; i < b->naddrs; i++)
		if (pt_addr_equal(&b->addrs[i].addr, a))
			return &b->addrs[i];
	if (b->naddrs == b->cap) {
		unsigned cap = b->cap ? b->cap * 2 : 8;
		struct core_addr *n = pt_pcalloc(cf->pool, cap * sizeof(*n));
		if (n == NULL)
			return NULL;
		if (b->naddrs)
			memcpy(n, b->addrs, b->naddrs * sizeof(*n));
		b->addrs = n;
		b->cap = cap;
	}
	struct core_addr *ca = &b->addrs[b->naddrs++];
	memset(ca, 0, sizeof(*ca));
	ca->addr = *a;
	snprintf(ca->text, sizeof(ca->text), "%s", text);
	ca->backlog = -1;
	ca->servers = pt_pcalloc(cf->pool, b->max_servers * sizeof(void *));
	return ca->servers ? ca : NULL;
}

static void
core_addr_add_server(struct core_addr *ca, struct pt_http_server *srv)
{
	for (unsigned i = 0; i < ca->nservers; i++)
		if (ca->servers[i] == srv)
			return;
	ca->servers[ca->nservers++] = srv;
}

static int
core_collect_listen(struct pt_conf *cf, struct core_build *b,
		    struct pt_http_server *srv)
{
	struct pt_http_srv_conf *sc = srv->srv_conf[PT_HTTP_CORE_INDEX];
	const config_setting_t *node = sc->listen_node;

	if (sc->listen.n == 0) {
		pt_conf_error(cf, NULL, "%s:%u: server without \"listen\"",
			      srv->file, srv->line);
		return PT_ERROR;
	}
	for (unsigned i = 0; i < sc->listen.n; i++) {
		char addr[PT_ADDR_TEXT], text[PT_ADDR_TEXT], err[256];
		struct pt_sockaddr sa;
		struct core_addr *ca;
		struct core_listen_opts o;
		int def, reuseport, backlog;

		if (core_listen_flags(cf, node, sc->listen.items[i], addr,
				      sizeof(addr), &o) != PT_OK)
			return PT_ERROR;
		def = o.def;
		reuseport = o.reuseport;
		backlog = o.backlog;
		if (pt_addr_parse(addr, &sa, text, sizeof(text), err,
				  sizeof(err)) != PT_OK) {
			pt_conf_error(cf, node, "\"listen\": %s", err);
			return PT_ERROR;
		}
		/* a path is bound once: a second socket on it fails, and
		 * SO_REUSEPORT is refused on AF_UNIX (EOPNOTSUPP) */
		if (reuseport && sa.u.sa.sa_family == AF_UNIX) {
			pt_conf_error(cf, node,
				      "\"listen\": %s: \"reuseport\" is for "
				      "TCP addresses",
				      text);
			return PT_ERROR;
		}
		ca = core_addr_get(cf, b, &sa, text);
		if (ca == NULL)
			return PT_ERROR;
		core_addr_add_server(ca, srv);
		if ((def && ca->default_server != NULL) ||
		    ((reuseport || backlog >= 0) &&
		     (ca->reuseport || ca->backlog >= 0))) {
			pt_conf_error(cf, node,
				      "\"listen\": %s: \"%s\" given on more "
				      "than one server (give listen flags on "
				      "one server only)",
				      text, def ? "default_server"
						: "reuseport/backlog");
			return PT_ERROR;
		}
		if (def)
			ca->default_server = srv;
		if (reuseport)
			ca->reuseport = 1;
		if (backlog >= 0)
			ca->backlog = backlog;
		/* a property of the address, not of its socket: any server
		 * may give it, as nginx's proxy_protocol */
		if (o.proxy_protocol)
			ca->proxy_protocol = 1;
		/* one socket speaks one protocol: every server on it must
		 * agree on TLS (the first byte would not tell a server) */
		if (o.ssl)
			ca->ssl = 1;
		else
			ca->plain = 1;
		if (ca->ssl && ca->plain) {
			pt_conf_error(cf, node,
				      "\"listen\": %s: listened on both with "
				      "and without \"ssl\"",
				      text);
			return PT_ERROR;
		}
		ca->node = node;
	}
	return PT_OK;
}

static int
core_name_kind(const char *n, struct pt_str *key)
{
	size_t len = strlen(n);

	if (n[0] == '~') {
		key->data = n + 1;
		key->len = len - 1;
		return NAME_REGEX;
	}
	if (n[0] == '*' && n[1] == '.') {
		key->data = n + 1; /* ".example.com" */
		key->len = len - 1;
		return NAME_LEADING;
	}
	if (len > 2 && n[len - 1] == '*' && n[len - 2] == '.') {
		key->data = n;     /* "www.example." */
		key->len = len - 1;
		return NAME_TRAILING;
	}
	key->data = n;
	key->len = len;
	return strchr(n, '*') ? -1 : NAME_EXACT;
}

static int
core_name_cmp(const void *a, const void *b)
{
	const struct pt_http_name *x = a, *y = b;

	if (x->kind != y->kind)
		return (int)x->kind - (int)y->kind;
	if (x->kind == NAME_REGEX)
		return 0; /* qsort is not stable: see core_build_names */
	return x->name.len < y->name.len ? 1 : x->name.len > y->name.len ? -1 : 0;
}

static int
core_add_name(struct pt_conf *cf, struct pt_http_addr *ha, unsigned *cap,
	      struct pt_http_server *srv, const char *name)
{
	struct pt_http_srv_conf *sc = srv->srv_conf[PT_HTTP_CORE_INDEX];
	struct pt_http_name *nm;
	char *lower = pt_pstrdup(cf->pool, name), err[256];
	int kind;

	if (lower == NULL)
		return PT_ERROR;
	if (name[0] != '~')
		for (char *p = lower; *p; p++)
			*p = (char)pt_tolower((unsigned char)*p);
	if (ha->nnames == *cap) {
		unsigned ncap = *cap ? *cap * 2 : 8;
		struct pt_http_name *n = pt_pcalloc(cf->pool, ncap * sizeof(*n));
		if (n == NULL)
			return PT_ERROR;
		if (ha->nnames)
			memcpy(n, ha->names, ha->nnames * sizeof(*n));
		ha->names = n;
		*cap = ncap;
	}
	nm = &ha->names[ha->nnames];
	kind = core_name_kind(lower, &nm->name);
	if (kind < 0) {
		pt_conf_error(cf, sc->names_node,
			      "\"server_name\": invalid wildcard \"%s\" (use "
			      "\"*.example.com\" or \"www.example.*\")",
			      name);
		return PT_ERROR;
	}
	if (kind == NAME_REGEX &&
	    pt_regex_compile(cf->pool, nm->name.data, 1, &nm->re, err,
			     sizeof(err)) != PT_OK) {
		pt_conf_error(cf, sc->names_node, "\"server_name\": %s", err);
		return PT_ERROR;
	}
	for (unsigned i = 0; kind != NAME_REGEX && i < ha->nnames; i++) {
		if (ha->names[i].kind == (unsigned)kind &&
		    ha->names[i].name.len == nm->name.len &&
		    memcmp(ha->names[i].name.data, nm->name.data,
			   nm->name.len) == 0) {
			if (ha->names[i].server != srv)
				pt_conf_warn(cf, sc->names_node,
					     "conflicting server name \"%s\" "
					     "on %s, ignored",
					     name, "this address");
			return PT_OK;
		}
	}
	nm->kind = (unsigned)kind;
	nm->server = srv;
	ha->nnames++;
	return PT_OK;
}

static int
core_build_names(struct pt_conf *cf, struct core_addr *ca,
		 struct pt_http_addr *ha)
{
	unsigned cap = 0, nregex = 0;
	struct pt_http_name *regex;

	ha->addr = ca->addr;
	ha->proxy_protocol = ca->proxy_protocol ? 1 : 0;
	ha->ssl = ca->ssl ? 1 : 0;
	ha->servers = ca->servers;
	ha->nservers = ca->nservers;
	ha->default_server = ca->default_server ? ca->default_server
						: ca->servers[0];
	for (unsigned i = 0; i < ca->nservers; i++) {
		struct pt_http_server *srv = ca->servers[i];
		struct pt_http_srv_conf *sc =
			srv->srv_conf[PT_HTTP_CORE_INDEX];
		for (unsigned j = 0; j < sc->server_name.n; j++)
			if (core_add_name(cf, ha, &cap, srv,
					  sc->server_name.items[j]) != PT_OK)
				return PT_ERROR;
	}
	/* regexes keep config order: move them out before sorting */
	regex = pt_pcalloc(cf->pool, (ha->nnames + 1) * sizeof(*regex));
	if (regex == NULL)
		return PT_ERROR;
	for (unsigned i = 0, j = 0; i < ha->nnames; i++) {
		if (ha->names[i].kind == NAME_REGEX)
			regex[nregex++] = ha->names[i];
		else
			ha->names[j++] = ha->names[i];
	}
	if (ha->nnames > nregex)
		qsort(ha->names, ha->nnames - nregex, sizeof(*ha->names),
	      core_name_cmp);
	if (nregex)
		memcpy(ha->names + ha->nnames - nregex, regex,
		       nregex * sizeof(*regex));
	return PT_OK;
}

/* The wildcard address that serves a, if any (same family and port). */
static struct core_addr *
core_wildcard_of(struct core_build *b, const struct core_addr *a)
{
	if (a->addr.u.sa.sa_family == AF_UNIX || pt_addr_is_wildcard(&a->addr))
		return NULL;
	for (unsigned i = 0; i < b->naddrs; i++) {
		struct core_addr *w = &b->addrs[i];
		if (w->addr.u.sa.sa_family == a->addr.u.sa.sa_family &&
		    pt_addr_is_wildcard(&w->addr) &&
		    pt_addr_port(&w->addr.u.sa) == pt_addr_port(&a->addr.u.sa))
			return w;
	}
	return NULL;
}

static int
core_build_ports(struct pt_conf *cf, struct core_build *b)
{
	struct pt_cycle *cycle = cf->cycle;
	unsigned workers = pt_cycle_workers(cycle), nls = 0, k = 0;

	/* one port per socket; a specific address under a wildcard shares
	 * the wildcard's socket and is told apart by getsockname() */
	for (unsigned i = 0; i < b->naddrs; i++) {
		struct core_addr *ca = &b->addrs[i];
		if (core_wildcard_of(b, ca) != NULL) {
			if (ca->reuseport || ca->backlog >= 0) {
				pt_conf_error(cf, ca->node,
					      "\"listen\": %s shares the socket "
					      "of a wildcard address: give "
					      "reuseport/backlog there",
					      ca->text);
				return PT_ERROR;
			}
			continue;
		}
		ca->port = pt_pcalloc(cf->pool, sizeof(*ca->port));
		if (ca->port == NULL)
			return PT_ERROR;
		ca->port->addrs =
			pt_pcalloc(cf->pool, b->naddrs * sizeof(struct pt_http_addr));
		if (ca->port->addrs == NULL)
			return PT_ERROR;
		nls += ca->reuseport ? workers : 1;
	}
	for (unsigned i = 0; i < b->naddrs; i++) {
		struct core_addr *ca = &b->addrs[i];
		struct core_addr *w = core_wildcard_of(b, ca);
		struct pt_http_port *port = w ? w->port : ca->port;
		if (core_build_names(cf, ca, &port->addrs[port->naddrs++]) !=
		    PT_OK)
			return PT_ERROR;
	}
	cycle->listeners = pt_pcalloc(cf->pool, (nls ? nls : 1) *
							 sizeof(struct pt_listener));
	if (cycle->listeners == NULL)
		return PT_ERROR;
	for (unsigned i = 0; i < b->naddrs; i++) {
		struct core_addr *ca = &b->addrs[i];
		unsigned copies = ca->reuseport ? workers : 1;
		if (ca->port == NULL)
			continue;
		/* the wildcard address itself is looked up last */
		for (unsigned c = 0; c < copies; c++) {
			struct pt_listener *ls = &cycle->listeners[k++];
			ls->io.fd = -1;
			ls->addr = ca->addr;
			memcpy(ls->text, ca->text, sizeof(ls->text));
			ls->backlog = ca->backlog >= 0 ? ca->backlog : 511;
			ls->reuseport = ca->reuseport ? 1 : 0;
			ls->slot = ca->reuseport ? (int)c : -1;
			ls->wildcard = pt_addr_is_wildcard(&ca->addr) ? 1 : 0;
			ls->unix_path = ca->addr.u.sa.sa_family == AF_UNIX;
			ls->ctx = ca->port;
			ls->handler = pt_http_init_conn;
			ls->cycle = cycle;
		}
	}
	cycle->nlisteners = k;
	return PT_OK;
}

static int
core_build_listeners(struct pt_conf *cf, struct pt_http_main_conf *mc)
{
	struct core_build b = { NULL, 0, 0, mc->nservers };

	for (unsigned i = 0; i < mc->nservers; i++)
		if (core_collect_listen(cf, &b, mc->servers[i]) != PT_OK)
			return PT_ERROR;
	return core_build_ports(cf, &b);
}

/* ---- postconfig --------------------------------------------------------- */

/* $server_name, and $host of a request without one: the first name as
 * written, in lower case as names are compared (a regex keeps its case). */
static int
core_first_name(struct pt_conf *cf, struct pt_http_server *srv)
{
	struct pt_http_srv_conf *sc = srv->srv_conf[PT_HTTP_CORE_INDEX];
	char *name;

	if (sc->server_name.n == 0)
		return PT_OK;
	name = pt_pstrdup(cf->pool, sc->server_name.items[0]);
	if (name == NULL)
		return PT_ERROR;
	if (name[0] != '~')
		for (char *p = name; *p; p++)
			*p = (char)pt_tolower((unsigned char)*p);
	srv->first_name = name;
	return PT_OK;
}

static int
core_postconfig(struct pt_conf *cf)
{
	struct pt_http_main_conf *mc =
		cf->main_conf[PT_HTTP_CORE_INDEX];
	struct pt_cycle *c = cf->cycle;

	if (mc->nservers == 0) {
		pt_conf_error(cf, NULL, "%s: no \"servers\" configured",
			      c->conf_file);
		return PT_ERROR;
	}
	if (pt_conf_merge(cf, PT_STORE_SRV, c->srv_conf, c->srv_conf) !=
	    PT_OK)
		return PT_ERROR;
	/* main level first (parent == child fills defaults), then down */
	if (pt_conf_merge(cf, PT_STORE_LOC, c->loc_conf, c->loc_conf) != PT_OK)
		return PT_ERROR;
	for (unsigned i = 0; i < mc->nservers; i++) {
		struct pt_http_server *srv = mc->servers[i];
		struct pt_http_location **locs = srv->regex;
		if (pt_conf_merge(cf, PT_STORE_SRV, c->srv_conf,
				  srv->srv_conf) != PT_OK ||
		    pt_conf_merge(cf, PT_STORE_LOC, c->loc_conf,
				  srv->loc_conf) != PT_OK)
			return PT_ERROR;
		for (unsigned j = 0; j < srv->nregex; j++)
			if (pt_conf_merge(cf, PT_STORE_LOC, srv->loc_conf,
					  locs[j]->loc_conf) != PT_OK)
				return PT_ERROR;
		if (core_sort_locations(cf, srv) != PT_OK ||
		    core_first_name(cf, srv) != PT_OK)
			return PT_ERROR;
	}
	if (pt_http_mime_load(cf, mc) != PT_OK ||
	    pt_http_build_engine(cf, mc) != PT_OK)
		return PT_ERROR;
	return core_build_listeners(cf, mc);
}

static int core_find_location_phase(struct pt_http_request *r);
static int core_select_server_phase(struct pt_http_request *r);
static int core_write_header(struct pt_http_request *r, unsigned next);
static int core_write_body(struct pt_http_request *r, struct pt_chain *in,
			   unsigned next);

static const struct pt_hook core_hooks[] = {
	{ PT_PHASE_SERVER_SELECT, 0, core_select_server_phase, NULL, NULL },
	{ PT_PHASE_FIND_LOCATION, 0, core_find_location_phase, NULL, NULL },
	{ PT_FILTER_HEADER, 1000000, NULL, core_write_header, NULL },
	{ PT_FILTER_BODY, 1000000, NULL, NULL, core_write_body },
	{ 0, 0, NULL, NULL, NULL }
};

extern const struct pt_http_var pt_http_core_vars[];

static int
core_init_worker(struct pt_cycle *cycle)
{
	(void)cycle;
	pt_http_seed_random();
	return PT_OK;
}

const struct pt_module pt_http_core_module = {
	.name = "http_core",
	.settings = core_settings,
	.create_main = core_create_main,
	.create_srv = core_create_srv,
	.merge_srv = core_merge_srv,
	.create_loc = core_create_loc,
	.merge_loc = core_merge_loc,
	.postconfig = core_postconfig,
	.hooks = core_hooks,
	.vars = pt_http_core_vars,
	.init_worker = core_init_worker,
};

/* ---- request-time lookups ---------------------------------------------- */

struct pt_http_server *
pt_http_find_server(const struct pt_http_addr *ha, struct pt_str host)
{
	for (unsigned i = 0; i < ha->nnames; i++) {
		const struct pt_http_name *n = &ha->names[i];
		switch (n->kind) {
		case NAME_EXACT:
			if (n->name.len == host.len &&
			    memcmp(n->name.data, host.data, host.len) == 0)
				return n->server;
			break;
		case NAME_LEADING:
			if (host.len > n->name.len &&
			    memcmp(host.data + host.len - n->name.len,
				   n->name.data, n->name.len) == 0)
				return n->server;
			break;
		case NAME_TRAILING:
			if (host.len > n->name.len &&
			    memcmp(host.data, n->name.data, n->name.len) == 0)
				return n->server;
			break;
		default:
			if (pt_regex_match(n->re, host.data, host.len) == 1)
				return n->server;
			break;
		}
	}
	return ha->default_server;
}

static int
core_select_server_phase(struct pt_http_request *r)
{
	struct pt_conn *c = r->conn;
	struct pt_http_server *srv;

	/* without Host, a TLS request belongs to the server SNI chose */
	if (r->h.host.len == 0 && c->tls_server != NULL)
		srv = c->tls_server;
	else
		srv = pt_http_find_server(c->addr, r->h.host);
	r->server = srv;
	r->srv_conf = srv->srv_conf;
	r->loc_conf = srv->loc_conf;
	if (c->ssl != NULL && pt_tls_check_server(c, srv) != PT_OK) {
		pt_http_log(r, PT_LOG_INFO, 0,
			    "Host \"%.*s\" names a server that verifies "
			    "clients unlike the one SNI chose",
			    (int)PT_MIN(r->h.host.len, 256), r->h.host.data);
		return 421;
	}
	return PT_OK;
}

static int
core_find_location_phase(struct pt_http_request *r)
{
	int rc = pt_http_find_location(r);

	/* the location's limit applies as soon as it is known */
	return rc != PT_OK ? rc : pt_http_body_declared_ok(r);
}

/*
 * The head is the one place where request data may end up in response
 * fields, and a field value must never hold CR, LF or NUL: a decoded $uri
 * can (from "%0d%0a"), and would split the head. Location is written as
 * a URI: the bytes a URI-reference cannot hold (controls, space, DEL,
 * non-ASCII) are percent-encoded; '%' is left alone, so an encoded target
 * goes out unchanged. Any other field with CR, LF or NUL is a bug of the
 * module that made it: the response fails (500) rather than go out split.
 */
static int
core_uri_byte(unsigned char ch)
{
	return ch > 0x20 && ch < 0x7f;
}

static int
core_escape_location(struct pt_http_request *r)
{
	static const char hex[] = "0123456789ABCDEF";
	const struct pt_str l = r->out.location;
	size_t n = 0;
	char *p;

	for (size_t i = 0; i < l.len; i++)
		n += !core_uri_byte((unsigned char)l.data[i]);
	if (n == 0)
		return PT_OK;
	p = pt_pnalloc(r->pool, l.len + 2 * n);
	if (p == NULL)
		return PT_ERROR;
	r->out.location.data = p;
	for (size_t i = 0; i < l.len; i++) {
		unsigned char ch = (unsigned char)l.data[i];
		if (core_uri_byte(ch)) {
			*p++ = (char)ch;
			continue;
		}
		*p++ = '%';
		*p++ = hex[ch >> 4];
		*p++ = hex[ch & 15];
	}
	r->out.location.len = l.len + 2 * n;
	return PT_OK;
}

static int
core_field_safe(struct pt_str s)
{
	for (size_t i = 0; i < s.len; i++)
		if (s.data[i] == '\r' || s.data[i] == '\n' || s.data[i] == '\0')
			return 0;
	return 1;
}

static int
core_write_header(struct pt_http_request *r, unsigned next)
{
	(void)next;
	if (core_escape_location(r) != PT_OK)
		return PT_ERROR;
	if (!core_field_safe(r->out.content_type) ||
	    !core_field_safe(r->out.etag) ||
	    !core_field_safe(r->out.content_range)) {
		pt_http_log(r, PT_LOG_ERR, 0,
			    "CR, LF or NUL in a response field");
		return PT_ERROR;
	}
	for (const struct pt_http_out_header *h = r->out.headers; h != NULL;
	     h = h->next) {
		if (!core_field_safe(h->name) || !core_field_safe(h->value)) {
			pt_http_log(r, PT_LOG_ERR, 0,
				    "CR, LF or NUL in response field \"%.*s\"",
				    (int)PT_MIN(h->name.len, 64), h->name.data);
			return PT_ERROR;
		}
	}
	return pt_http_queue_header(r);
}

static int
core_write_body(struct pt_http_request *r, struct pt_chain *in,
		unsigned next)
{
	(void)next;
	return pt_http_queue_body(r, in);
}
