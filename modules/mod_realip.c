/*
 * mod_realip.c: the client's address as a trusted proxy in front states
 * it.
 *
 *   real_ip_from = [ "10.0.0.0/8", "2001:db8::/32", "unix:" ];
 *   real_ip_header = "X-Forwarded-For";   or "X-Real-IP", any field name,
 *                                         or "proxy_protocol"
 *
 * When the address a request comes from is in real_ip_from, the request's
 * client address (r->client: $remote_addr, the access log, ip_hash, the
 * X-Forwarded-For the proxy sends on) becomes the one in the field. The
 * field is read as a comma-separated list, all its lines in order, from
 * the right: the first address that is not trusted is the client (nginx's
 * real_ip_recursive on); when every one is trusted, the leftmost. An
 * element that is not an address stops the walk and changes nothing: the
 * list is then not what a trusted proxy wrote. An element may carry a
 * port ("192.0.2.1:4711", "[2001:db8::1]:4711"), which becomes
 * $remote_port; without one the port is 0.
 *
 * On a proxy_protocol listener the connection's client is already the
 * PROXY header's source, and the trust check applies to it. With
 * real_ip_header "proxy_protocol" that source is instead only believed
 * when the TCP peer itself is trusted; otherwise the client is the peer.
 *
 * It runs first thing after the server is chosen (SERVER_REWRITE, before
 * a server-level return), not in POST_READ: the settings are per server,
 * and the server is only known from the Host field. Nothing reads the
 * client address before that.
 * The original address stays in $realip_remote_addr/$realip_remote_port.
 */
#include "core.h"
#include "conf.h"
#include "http.h"
#include "log.h"
#include "pool.h"

#include <arpa/inet.h>

extern const struct pt_module pt_mod_realip;

enum { REALIP_XFF = 1, REALIP_FIELD, REALIP_PROXY_PROTOCOL };

struct realip_cidr {
	int family; /* AF_INET or AF_INET6 */
	uint8_t addr[16], mask[16];
};

struct realip_srv_conf {
	struct pt_strlist from_text;
	const struct realip_cidr *from; /* NULL: unset */
	unsigned nfrom;
	int from_unix; /* "unix:" trusts unix socket peers */
	const char *header;
	size_t header_len;
	int kind; /* REALIP_*, by header */
};

static unsigned realip_index;

/* ---- configuration ----------------------------------------------------- */

/* "a.b.c.d", "a.b.c.d/n", "v6", "v6/n" into c; PT_OK or PT_ERROR. */
static int
realip_parse_cidr(const char *s, struct realip_cidr *c)
{
	char ip[INET6_ADDRSTRLEN + 1], *end;
	const char *slash = strchr(s, '/');
	size_t iplen = slash ? (size_t)(slash - s) : strlen(s), len;
	long bits;

	if (iplen == 0 || iplen >= sizeof(ip))
		return PT_ERROR;
	memcpy(ip, s, iplen);
	ip[iplen] = '\0';
	memset(c, 0, sizeof(*c));
	if (inet_pton(AF_INET, ip, c->addr) == 1) {
		c->family = AF_INET;
		len = 4;
	} else if (inet_pton(AF_INET6, ip, c->addr) == 1) {
		c->family = AF_INET6;
		len = 16;
	} else {
		return PT_ERROR;
	}
	bits = (long)len * 8;
	if (slash != NULL) {
		if (slash[1] < '0' || slash[1] > '9')
			return PT_ERROR;
		bits = strtol(slash + 1, &end, 10);
		if (*end != '\0' || bits < 0 || bits > (long)len * 8)
			return PT_ERROR;
	}
	for (size_t i = 0; i < len; i++) {
		long b = PT_MIN(PT_MAX(bits - (long)i * 8, 0), 8);
		c->mask[i] = (uint8_t)(0xff00u >> b);
		c->addr[i] &= c->mask[i];
	}
	return PT_OK;
}

static int
realip_set_from(struct pt_conf *cf, const struct pt_setting *s,
		const config_setting_t *node, void *conf)
{
	struct realip_srv_conf *sc = conf;
	struct realip_cidr *c;
	unsigned n = 0;

	if (pt_conf_set_generic(cf, s, node, conf) != PT_OK)
		return PT_ERROR;
	c = pt_pcalloc(cf->pool,
		       (sc->from_text.n ? sc->from_text.n : 1) * sizeof(*c));
	if (c == NULL)
		return PT_ERROR;
	sc->from_unix = 0;
	for (unsigned i = 0; i < sc->from_text.n; i++) {
		const char *t = sc->from_text.items[i];
		if (strcmp(t, "unix:") == 0) {
			sc->from_unix = 1;
			continue;
		}
		if (realip_parse_cidr(t, &c[n]) != PT_OK) {
			pt_conf_error(cf, node,
				      "\"%s\": \"%s\" is not an address or "
				      "CIDR (\"192.0.2.0/24\", \"2001:db8::/32\","
				      " \"unix:\")",
				      s->name, t);
			return PT_ERROR;
		}
		n++;
	}
	sc->from = c;
	sc->nfrom = n;
	return PT_OK;
}

static int
realip_set_header(struct pt_conf *cf, const struct pt_setting *s,
		  const config_setting_t *node, void *conf)
{
	struct realip_srv_conf *sc = conf;

	if (pt_conf_set_generic(cf, s, node, conf) != PT_OK)
		return PT_ERROR;
	if (sc->header[0] == '\0' || strpbrk(sc->header, " \t:\r\n") != NULL) {
		pt_conf_error(cf, node,
			      "\"%s\": \"%s\" is not a field name", s->name,
			      sc->header);
		return PT_ERROR;
	}
	return PT_OK;
}

#define ROFF(f) offsetof(struct realip_srv_conf, f)
static const struct pt_setting realip_settings[] = {
	{ "real_ip_from", PT_T_STRLIST, PT_SCOPE_MAIN | PT_SCOPE_SERVER,
	  PT_STORE_SRV, ROFF(from_text), realip_set_from, NULL },
	{ "real_ip_header", PT_T_STRING, PT_SCOPE_MAIN | PT_SCOPE_SERVER,
	  PT_STORE_SRV, ROFF(header), realip_set_header, NULL },
	{ NULL, 0, 0, 0, 0, NULL, NULL }
};
#undef ROFF

static void *
realip_create_srv(struct pt_conf *cf)
{
	return pt_pcalloc(cf->pool, sizeof(struct realip_srv_conf));
}

static int
realip_merge_srv(struct pt_conf *cf, void *parent, void *child)
{
	struct realip_srv_conf *p = parent, *c = child;

	(void)cf;
	if (c->from == NULL) {
		c->from = p->from;
		c->nfrom = p->nfrom;
		c->from_unix = p->from_unix;
	}
	PT_MERGE_PTR(c->header, p->header, "X-Forwarded-For");
	c->header_len = strlen(c->header);
	if (strcmp(c->header, "proxy_protocol") == 0)
		c->kind = REALIP_PROXY_PROTOCOL;
	else if (pt_strncasecmp(c->header, "X-Forwarded-For", 16) == 0)
		c->kind = REALIP_XFF;
	else
		c->kind = REALIP_FIELD;
	return PT_OK;
}

static int
realip_postconfig(struct pt_conf *cf)
{
	(void)cf;
	realip_index = pt_module_index(&pt_mod_realip);
	return PT_OK;
}

/* ---- requests ------------------------------------------------------------ */

static int
realip_match(const struct realip_srv_conf *sc, int family, const uint8_t *a)
{
	size_t len = family == AF_INET ? 4 : 16;

	for (unsigned i = 0; i < sc->nfrom; i++) {
		const struct realip_cidr *c = &sc->from[i];
		size_t k = 0;
		if (c->family != family)
			continue;
		while (k < len && (a[k] & c->mask[k]) == c->addr[k])
			k++;
		if (k == len)
			return 1;
	}
	return 0;
}

static int
realip_trusted(const struct realip_srv_conf *sc, const struct pt_sockaddr *a)
{
	const uint8_t *b;

	switch (a->u.sa.sa_family) {
	case AF_INET:
		return realip_match(sc, AF_INET,
				    (const uint8_t *)&a->u.sin.sin_addr);
	case AF_INET6:
		b = (const uint8_t *)&a->u.sin6.sin6_addr;
		/* a dual-stack socket shows IPv4 peers as ::ffff:a.b.c.d */
		if (IN6_IS_ADDR_V4MAPPED(&a->u.sin6.sin6_addr) &&
		    realip_match(sc, AF_INET, b + 12))
			return 1;
		return realip_match(sc, AF_INET6, b);
	case AF_UNIX:
		return sc->from_unix;
	default:
		return 0;
	}
}

/* Digits of a port at p..end into *port; PT_OK or PT_ERROR. */
static int
realip_port(const char *p, const char *end, unsigned *port)
{
	unsigned v = 0;

	if (p == end || end - p > 5)
		return PT_ERROR;
	for (; p < end; p++) {
		if (*p < '0' || *p > '9')
			return PT_ERROR;
		v = v * 10 + (unsigned)(*p - '0');
	}
	if (v > 65535)
		return PT_ERROR;
	*port = v;
	return PT_OK;
}

/*
 * One element of the list: "v4", "v4:port", "v6", "[v6]", "[v6]:port".
 * PT_OK with *out filled, or PT_ERROR.
 */
static int
realip_parse_addr(const char *s, size_t len, struct pt_sockaddr *out)
{
	char ip[INET6_ADDRSTRLEN + 1];
	const char *end = s + len, *host = s, *hend = end, *colon;
	unsigned port = 0;
	int family = 0; /* 0: whichever parses */

	if (s[0] == '[') {
		const char *rb = memchr(s, ']', len);
		if (rb == NULL || (rb + 1 < end && rb[1] != ':') ||
		    (rb + 1 < end && realip_port(rb + 2, end, &port) != PT_OK))
			return PT_ERROR;
		host = s + 1;
		hend = rb;
		family = AF_INET6;
	} else if ((colon = memchr(s, ':', len)) != NULL &&
		   memchr(colon + 1, ':', (size_t)(end - colon - 1)) == NULL) {
		/* a single colon: an IPv4 address and a port */
		if (realip_port(colon + 1, end, &port) != PT_OK)
			return PT_ERROR;
		hend = colon;
		family = AF_INET;
	}
	if (hend <= host || (size_t)(hend - host) >= sizeof(ip))
		return PT_ERROR;
	memcpy(ip, host, (size_t)(hend - host));
	ip[hend - host] = '\0';
	memset(out, 0, sizeof(*out));
	if (family != AF_INET6 &&
	    inet_pton(AF_INET, ip, &out->u.sin.sin_addr) == 1) {
		out->u.sin.sin_family = AF_INET;
		out->u.sin.sin_port = htons((uint16_t)port);
		out->len = sizeof(out->u.sin);
		return PT_OK;
	}
	if (family != AF_INET &&
	    inet_pton(AF_INET6, ip, &out->u.sin6.sin6_addr) == 1) {
		out->u.sin6.sin6_family = AF_INET6;
		out->u.sin6.sin6_port = htons((uint16_t)port);
		out->len = sizeof(out->u.sin6);
		return PT_OK;
	}
	return PT_ERROR;
}

static int
realip_is_field(const struct realip_srv_conf *sc,
		const struct pt_http_header *h)
{
	if (sc->kind == REALIP_XFF)
		return h->id == PT_H_X_FORWARDED_FOR;
	return h->name.len == sc->header_len &&
	       pt_strncasecmp(h->name.data, sc->header, sc->header_len) == 0;
}

/*
 * Walk the field's elements from the right. 1 with *out set to the
 * client, 0 when there is nothing to take (no field, an invalid
 * element).
 */
static int
realip_walk(struct pt_http_request *r, const struct realip_srv_conf *sc,
	    struct pt_sockaddr *out)
{
	int found = 0;

	for (unsigned i = r->h.nheaders; i-- > 0;) {
		const struct pt_http_header *h = &r->h.headers[i];
		const char *start = h->value.data, *p;

		if (!realip_is_field(sc, h))
			continue;
		p = start + h->value.len;
		while (p > start) {
			const char *e = p, *b;
			while (e > start && (e[-1] == ' ' || e[-1] == '\t'))
				e--;
			b = e;
			while (b > start && b[-1] != ',')
				b--;
			p = b > start ? b - 1 : start;
			while (b < e && (*b == ' ' || *b == '\t'))
				b++;
			if (b == e)
				continue; /* an empty element */
			if (realip_parse_addr(b, (size_t)(e - b), out) != PT_OK)
				return 0;
			found = 1;
			if (!realip_trusted(sc, out))
				return 1;
		}
	}
	return found;
}

static int
realip_handler(struct pt_http_request *r)
{
	const struct realip_srv_conf *sc = r->srv_conf[realip_index];
	struct pt_sockaddr addr, *a;

	if (sc->kind == REALIP_PROXY_PROTOCOL) {
		if (r->conn->proxy_has_addr &&
		    !realip_trusted(sc, &r->conn->peer))
			r->client = &r->conn->peer;
		return PT_DECLINED;
	}
	if (sc->nfrom == 0 && !sc->from_unix)
		return PT_DECLINED;
	if (!realip_trusted(sc, r->client) || !realip_walk(r, sc, &addr))
		return PT_DECLINED;
	a = pt_palloc(r->pool, sizeof(*a));
	if (a == NULL)
		return 500;
	*a = addr;
	r->client = a;
	return PT_DECLINED;
}

/* ---- variables ------------------------------------------------------------ */

static int
realip_var_addr(struct pt_http_request *r, struct pt_str *v, struct pt_str a)
{
	char ip[PT_ADDR_TEXT];
	size_t n = pt_addr_ip(&r->conn->client->u.sa, ip, sizeof(ip));

	(void)a;
	v->data = pt_pstrndup(r->pool, ip, n);
	v->len = n;
	return v->data ? PT_OK : PT_ERROR;
}

static int
realip_var_port(struct pt_http_request *r, struct pt_str *v, struct pt_str a)
{
	char *p = pt_pnalloc(r->pool, 6);

	(void)a;
	if (p == NULL)
		return PT_ERROR;
	v->len = (size_t)snprintf(p, 6, "%u",
				  pt_addr_port(&r->conn->client->u.sa));
	v->data = p;
	return PT_OK;
}

static const struct pt_http_var realip_vars[] = {
	{ "realip_remote_addr", 0, realip_var_addr },
	{ "realip_remote_port", 0, realip_var_port },
	{ NULL, 0, NULL }
};

/* The server is chosen: the settings are its. Before mod_rewrite's
 * server-level return (order 100), which may log or use the address. */
static const struct pt_hook realip_hooks[] = {
	{ PT_PHASE_SERVER_REWRITE, 0, realip_handler, NULL, NULL },
	{ 0, 0, NULL, NULL, NULL }
};

const struct pt_module pt_mod_realip = {
	.name = "realip",
	.settings = realip_settings,
	.create_srv = realip_create_srv,
	.merge_srv = realip_merge_srv,
	.postconfig = realip_postconfig,
	.hooks = realip_hooks,
	.vars = realip_vars,
};
